import { BitReader, removeEmulationPrevention } from '../bits.ts';
import { MediaParseError } from '../errors.ts';

/** The parts of an H.264 sequence parameter set (ITU-T H.264 §7.3.2.1.1) that a server needs. */
export interface H264Sps {
  profileIdc: number;
  /** constraint_set0_flag … constraint_set5_flag and two reserved bits: the byte between profile and level. */
  constraintFlags: number;
  levelIdc: number;
  spsId: number;
  /** 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4 (Table 6-1); 1 for profiles that cannot signal it. */
  chromaFormatIdc: number;
  bitDepthLuma: number;
  bitDepthChroma: number;
  /** False for streams that may code fields (interlaced); the height below is then the frame height. */
  frameMbsOnly: boolean;
  /** Displayed size: the decoded size minus the frame cropping rectangle (§7.4.2.1.1). */
  width: number;
  height: number;
  /** Sample aspect ratio from the VUI (E.2.1), when signalled. */
  sarWidth?: number;
  sarHeight?: number;
  /** Frames per second from VUI timing_info (time_scale / (2 · num_units_in_tick), E.2.1), when present. */
  frameRate?: number;
}

/** Profiles whose SPS carries chroma_format_idc, bit depths and scaling matrices (§7.3.2.1.1). */
const HIGH_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]);

const EXTENDED_SAR = 255;
/** Table E-1, indexed by aspect_ratio_idc. */
const SAR_TABLE: readonly (readonly [number, number])[] = [
  [0, 0],
  [1, 1],
  [12, 11],
  [10, 11],
  [16, 11],
  [40, 33],
  [24, 11],
  [20, 11],
  [32, 11],
  [80, 33],
  [18, 11],
  [15, 11],
  [64, 33],
  [160, 99],
  [4, 3],
  [3, 2],
  [2, 1],
];

/** Parses an SPS NAL unit, including its 1-byte NAL header (nal_unit_type 7). */
export function parseH264Sps(nal: Uint8Array): H264Sps {
  if (nal.length < 4) throw new MediaParseError(`H.264 SPS: ${nal.length} bytes is too short`);
  const nalType = nal[0] & 0x1f;
  if (nalType !== 7) throw new MediaParseError(`H.264 SPS: NAL unit type is ${nalType}, expected 7`, 0);
  const r = new BitReader(removeEmulationPrevention(nal.subarray(1)), 'H.264 SPS');
  const profileIdc = r.readBits(8);
  const constraintFlags = r.readBits(8);
  const levelIdc = r.readBits(8);
  const spsId = r.readUE();
  if (spsId > 31) throw new MediaParseError(`H.264 SPS: seq_parameter_set_id ${spsId} exceeds 31`);

  let chromaFormatIdc = 1;
  let separateColourPlane = false;
  let bitDepthLuma = 8;
  let bitDepthChroma = 8;
  if (HIGH_PROFILES.has(profileIdc)) {
    chromaFormatIdc = r.readUE();
    if (chromaFormatIdc > 3)
      throw new MediaParseError(`H.264 SPS: chroma_format_idc ${chromaFormatIdc} exceeds 3`);
    if (chromaFormatIdc === 3) separateColourPlane = r.readFlag();
    bitDepthLuma = 8 + r.readUE();
    bitDepthChroma = 8 + r.readUE();
    if (bitDepthLuma > 14 || bitDepthChroma > 14) {
      throw new MediaParseError(`H.264 SPS: bit depth ${bitDepthLuma}/${bitDepthChroma} exceeds 14`);
    }
    r.skipBits(1); // qpprime_y_zero_transform_bypass_flag
    if (r.readFlag()) {
      // seq_scaling_matrix_present_flag: 6 4x4 lists, then 2 (or 6 for 4:4:4) 8x8 lists.
      const lists = chromaFormatIdc === 3 ? 12 : 8;
      for (let i = 0; i < lists; i++) {
        if (r.readFlag()) skipScalingList(r, i < 6 ? 16 : 64);
      }
    }
  }

  r.readUE(); // log2_max_frame_num_minus4
  const picOrderCntType = r.readUE();
  if (picOrderCntType === 0) {
    r.readUE(); // log2_max_pic_order_cnt_lsb_minus4
  } else if (picOrderCntType === 1) {
    r.skipBits(1); // delta_pic_order_always_zero_flag
    r.readSE(); // offset_for_non_ref_pic
    r.readSE(); // offset_for_top_to_bottom_field
    const cycle = r.readUE();
    if (cycle > 255)
      throw new MediaParseError(`H.264 SPS: num_ref_frames_in_pic_order_cnt_cycle ${cycle} exceeds 255`);
    for (let i = 0; i < cycle; i++) r.readSE();
  } else if (picOrderCntType !== 2) {
    throw new MediaParseError(`H.264 SPS: pic_order_cnt_type ${picOrderCntType} exceeds 2`);
  }
  r.readUE(); // max_num_ref_frames
  r.skipBits(1); // gaps_in_frame_num_value_allowed_flag
  const widthMbs = r.readUE() + 1;
  const heightMapUnits = r.readUE() + 1;
  const frameMbsOnly = r.readFlag();
  if (!frameMbsOnly) r.skipBits(1); // mb_adaptive_frame_field_flag
  r.skipBits(1); // direct_8x8_inference_flag

  // §7.4.2.1.1: crop offsets count in chroma sample units, doubled vertically when fields may be coded.
  const chromaArrayType = separateColourPlane ? 0 : chromaFormatIdc;
  const subWidthC = chromaArrayType === 1 || chromaArrayType === 2 ? 2 : 1;
  const subHeightC = chromaArrayType === 1 ? 2 : 1;
  const fieldFactor = frameMbsOnly ? 1 : 2;
  const cropUnitX = chromaArrayType === 0 ? 1 : subWidthC;
  const cropUnitY = (chromaArrayType === 0 ? 1 : subHeightC) * fieldFactor;
  const codedWidth = widthMbs * 16;
  const codedHeight = heightMapUnits * 16 * fieldFactor;
  let width = codedWidth;
  let height = codedHeight;
  if (r.readFlag()) {
    const left = r.readUE();
    const right = r.readUE();
    const top = r.readUE();
    const bottom = r.readUE();
    width -= cropUnitX * (left + right);
    height -= cropUnitY * (top + bottom);
    if (width <= 0 || height <= 0) {
      throw new MediaParseError(
        `H.264 SPS: frame cropping (${left},${right},${top},${bottom}) leaves nothing of ${codedWidth}x${codedHeight}`,
      );
    }
  }

  const sps: H264Sps = {
    profileIdc,
    constraintFlags,
    levelIdc,
    spsId,
    chromaFormatIdc,
    bitDepthLuma,
    bitDepthChroma,
    frameMbsOnly,
    width,
    height,
  };
  if (r.readFlag()) parseVui(r, sps);
  return sps;
}

/** scaling_list() syntax, §7.3.2.1.1.1: only the delta_scale codes need consuming. */
function skipScalingList(r: BitReader, size: number): void {
  let lastScale = 8;
  let nextScale = 8;
  for (let j = 0; j < size; j++) {
    if (nextScale !== 0) {
      const delta = r.readSE();
      if (delta < -128 || delta > 127)
        throw new MediaParseError(`H.264 SPS: delta_scale ${delta} out of range`);
      nextScale = (lastScale + delta + 256) % 256;
    }
    lastScale = nextScale === 0 ? lastScale : nextScale;
  }
}

/** vui_parameters(), Annex E.1.1, up to timing_info: the HRD and restrictions that follow are not needed. */
function parseVui(r: BitReader, sps: H264Sps): void {
  if (r.readFlag()) {
    const idc = r.readBits(8);
    if (idc === EXTENDED_SAR) {
      sps.sarWidth = r.readBits(16);
      sps.sarHeight = r.readBits(16);
    } else if (idc > 0 && idc < SAR_TABLE.length) {
      [sps.sarWidth, sps.sarHeight] = SAR_TABLE[idc];
    }
  }
  if (r.readFlag()) r.skipBits(1); // overscan_appropriate_flag
  if (r.readFlag()) {
    r.skipBits(4); // video_format, video_full_range_flag
    if (r.readFlag()) r.skipBits(24); // colour_primaries, transfer_characteristics, matrix_coefficients
  }
  if (r.readFlag()) {
    r.readUE(); // chroma_sample_loc_type_top_field
    r.readUE(); // chroma_sample_loc_type_bottom_field
  }
  if (r.readFlag()) {
    const numUnitsInTick = r.readBits(32);
    const timeScale = r.readBits(32);
    // One frame is two ticks (E.2.1, with field-based timing); zero values mean "not signalled".
    if (numUnitsInTick > 0 && timeScale > 0) sps.frameRate = timeScale / (2 * numUnitsInTick);
  }
}

/**
 * RFC 6381 §3.3 codecs parameter: `avc1.` and the three bytes profile_idc, constraint flags, level_idc in hex,
 * straight from the SPS (NAL header included).
 */
export function h264CodecString(sps: Uint8Array): string {
  if (sps.length < 4)
    throw new MediaParseError(`H.264 SPS: ${sps.length} bytes is too short for a codec string`);
  if ((sps[0] & 0x1f) !== 7)
    throw new MediaParseError(`H.264 SPS: NAL unit type is ${sps[0] & 0x1f}, expected 7`, 0);
  return `avc1.${hex2(sps[1])}${hex2(sps[2])}${hex2(sps[3])}`;
}

function hex2(b: number): string {
  return b.toString(16).padStart(2, '0');
}
