import { BitReader, removeEmulationPrevention } from '../bits.ts';
import { ByteReader } from '../bytes.ts';
import { MediaParseError } from '../errors.ts';

/** HEVCDecoderConfigurationRecord, ISO/IEC 14496-15 §8.3.3.1. NAL units are views into the record. */
export interface HevcDecoderConfig {
  generalProfileSpace: number;
  generalTierFlag: number;
  generalProfileIdc: number;
  generalProfileCompatibilityFlags: number;
  /** The 48 bits of general constraint indicator flags, as 6 bytes. */
  generalConstraintIndicatorFlags: Uint8Array;
  generalLevelIdc: number;
  chromaFormat: number;
  bitDepthLuma: number;
  bitDepthChroma: number;
  lengthSize: number;
  /** Parameter set arrays by NAL unit type (32 VPS, 33 SPS, 34 PPS, 39/40 SEI). */
  arrays: { nalUnitType: number; completeness: boolean; nalus: Uint8Array[] }[];
}

export const HEVC_NAL_VPS = 32;
export const HEVC_NAL_SPS = 33;
export const HEVC_NAL_PPS = 34;

export function parseHevcDecoderConfig(record: Uint8Array): HevcDecoderConfig {
  const r = new ByteReader(record, 'hvcC');
  const version = r.u8('configurationVersion');
  if (version !== 1) r.fail(`configurationVersion is ${version}, expected 1`, 0);
  const b1 = r.u8('general_profile_space/tier/profile_idc');
  const generalProfileCompatibilityFlags = r.u32('general_profile_compatibility_flags');
  const generalConstraintIndicatorFlags = r.bytes(6, 'general_constraint_indicator_flags');
  const generalLevelIdc = r.u8('general_level_idc');
  r.skip(2 + 1, 'min_spatial_segmentation_idc, parallelismType');
  const chromaFormat = r.u8('chromaFormat') & 0x03;
  const bitDepthLuma = (r.u8('bitDepthLumaMinus8') & 0x07) + 8;
  const bitDepthChroma = (r.u8('bitDepthChromaMinus8') & 0x07) + 8;
  r.skip(2, 'avgFrameRate');
  const lengthSize = (r.u8('lengthSizeMinusOne') & 0x03) + 1;
  if (lengthSize === 3) r.fail('lengthSizeMinusOne is 2, only 0, 1 and 3 are allowed', 21);
  const numArrays = r.u8('numOfArrays');
  const arrays: HevcDecoderConfig['arrays'] = [];
  for (let i = 0; i < numArrays; i++) {
    const b = r.u8(`array[${i}] NAL_unit_type`);
    const count = r.u16(`array[${i}] numNalus`);
    const nalus: Uint8Array[] = [];
    for (let j = 0; j < count; j++) {
      const len = r.u16(`array[${i}] nalUnitLength[${j}]`);
      nalus.push(r.bytes(len, `array[${i}] nalUnit[${j}] of ${len} bytes`));
    }
    arrays.push({ nalUnitType: b & 0x3f, completeness: (b & 0x80) !== 0, nalus });
  }
  return {
    generalProfileSpace: b1 >> 6,
    generalTierFlag: (b1 >> 5) & 1,
    generalProfileIdc: b1 & 0x1f,
    generalProfileCompatibilityFlags,
    generalConstraintIndicatorFlags,
    generalLevelIdc,
    chromaFormat,
    bitDepthLuma,
    bitDepthChroma,
    lengthSize,
    arrays,
  };
}

/**
 * Codecs parameter for 'hvc1' sample entries, ISO/IEC 14496-15 Annex E.3: profile space letter and profile,
 * the compatibility flags bit-reversed in hex, tier letter and level, then the constraint bytes with trailing
 * zero bytes left out. E.g. `hvc1.1.6.L93.B0` for Main at level 3.1.
 */
export function hevcCodecString(config: HevcDecoderConfig): string {
  const space = ['', 'A', 'B', 'C'][config.generalProfileSpace];
  let reversed = 0;
  for (let i = 0; i < 32; i++) {
    if (config.generalProfileCompatibilityFlags & (1 << i)) reversed |= 1 << (31 - i);
  }
  const parts = [
    'hvc1',
    `${space}${config.generalProfileIdc}`,
    (reversed >>> 0).toString(16).toUpperCase(),
    `${config.generalTierFlag ? 'H' : 'L'}${config.generalLevelIdc}`,
  ];
  const c = config.generalConstraintIndicatorFlags;
  let last = c.length - 1;
  while (last >= 0 && c[last] === 0) last--;
  for (let i = 0; i <= last; i++) parts.push(c[i].toString(16).toUpperCase().padStart(2, '0'));
  return parts.join('.');
}

export interface HevcSps {
  width: number;
  height: number;
  chromaFormatIdc: number;
}

/** Displayed size from an H.265 SPS NAL unit (2-byte header included), H.265 §7.3.2.2.1 and §7.4.3.2.1. */
export function parseHevcSps(nal: Uint8Array): HevcSps {
  if (nal.length < 3) throw new MediaParseError(`H.265 SPS: ${nal.length} bytes is too short`);
  const type = (nal[0] >> 1) & 0x3f;
  if (type !== HEVC_NAL_SPS) throw new MediaParseError(`H.265 SPS: NAL unit type is ${type}, expected 33`, 0);
  const r = new BitReader(removeEmulationPrevention(nal.subarray(2)), 'H.265 SPS');
  r.skipBits(4); // sps_video_parameter_set_id
  const maxSubLayersMinus1 = r.readBits(3);
  r.skipBits(1); // sps_temporal_id_nesting_flag
  skipProfileTierLevel(r, maxSubLayersMinus1);
  r.readUE(); // sps_seq_parameter_set_id
  const chromaFormatIdc = r.readUE();
  if (chromaFormatIdc > 3)
    throw new MediaParseError(`H.265 SPS: chroma_format_idc ${chromaFormatIdc} exceeds 3`);
  const separateColourPlane = chromaFormatIdc === 3 && r.readFlag();
  let width = r.readUE();
  let height = r.readUE();
  if (r.readFlag()) {
    // Conformance window offsets count in chroma samples (Table 6-1).
    const chromaArrayType = separateColourPlane ? 0 : chromaFormatIdc;
    const subWidthC = chromaArrayType === 1 || chromaArrayType === 2 ? 2 : 1;
    const subHeightC = chromaArrayType === 1 ? 2 : 1;
    width -= subWidthC * (r.readUE() + r.readUE());
    height -= subHeightC * (r.readUE() + r.readUE());
  }
  if (width <= 0 || height <= 0)
    throw new MediaParseError(`H.265 SPS: picture size ${width}x${height} is empty`);
  return { width, height, chromaFormatIdc };
}

/** profile_tier_level(1, maxNumSubLayersMinus1), H.265 §7.3.3. */
function skipProfileTierLevel(r: BitReader, maxSubLayersMinus1: number): void {
  r.skipBits(2 + 1 + 5 + 32 + 48 + 8); // general profile, compatibility, constraints, level
  const profilePresent: boolean[] = [];
  const levelPresent: boolean[] = [];
  for (let i = 0; i < maxSubLayersMinus1; i++) {
    profilePresent.push(r.readFlag());
    levelPresent.push(r.readFlag());
  }
  if (maxSubLayersMinus1 > 0) r.skipBits(2 * (8 - maxSubLayersMinus1)); // reserved_zero_2bits
  for (let i = 0; i < maxSubLayersMinus1; i++) {
    if (profilePresent[i]) r.skipBits(88);
    if (levelPresent[i]) r.skipBits(8);
  }
}

export interface HevcTrackInfo {
  codecString: string;
  width?: number;
  height?: number;
}

export function hevcTrackInfo(hvcC: Uint8Array): HevcTrackInfo {
  const config = parseHevcDecoderConfig(hvcC);
  const info: HevcTrackInfo = { codecString: hevcCodecString(config) };
  const sps = config.arrays.find((a) => a.nalUnitType === HEVC_NAL_SPS)?.nalus[0];
  if (sps) {
    const parsed = parseHevcSps(sps);
    info.width = parsed.width;
    info.height = parsed.height;
  }
  return info;
}
