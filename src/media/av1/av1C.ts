import { BitReader } from '../bits.ts';
import { MediaParseError } from '../errors.ts';

/** AV1CodecConfigurationRecord, "AV1 Codec ISO Media File Format Binding" §2.3. */
export interface Av1CodecConfig {
  seqProfile: number;
  seqLevelIdx0: number;
  seqTier0: number;
  bitDepth: number;
  monochrome: boolean;
  chromaSubsamplingX: number;
  chromaSubsamplingY: number;
  chromaSamplePosition: number;
  /** configOBUs: normally the sequence header OBU (a view into the record). */
  configObus: Uint8Array;
}

export function parseAv1CodecConfig(av1C: Uint8Array): Av1CodecConfig {
  if (av1C.length < 4) throw new MediaParseError(`av1C: ${av1C.length} bytes, at least 4 needed`);
  const marker = av1C[0] >> 7;
  const version = av1C[0] & 0x7f;
  if (marker !== 1 || version !== 1) {
    throw new MediaParseError(`av1C: marker ${marker} and version ${version}, expected 1 and 1`, 0);
  }
  const b2 = av1C[2];
  const highBitdepth = (b2 >> 6) & 1;
  const twelveBit = (b2 >> 5) & 1;
  return {
    seqProfile: av1C[1] >> 5,
    seqLevelIdx0: av1C[1] & 0x1f,
    seqTier0: b2 >> 7,
    bitDepth: highBitdepth ? (twelveBit ? 12 : 10) : 8,
    monochrome: ((b2 >> 4) & 1) === 1,
    chromaSubsamplingX: (b2 >> 3) & 1,
    chromaSubsamplingY: (b2 >> 2) & 1,
    chromaSamplePosition: b2 & 0x03,
    configObus: av1C.subarray(4),
  };
}

/**
 * Codecs parameter of the AV1 ISOBMFF binding ("Codecs Parameter String"):
 * `av01.<profile>.<level><tier>.<bitDepth>`, e.g. `av01.0.04M.08`.
 */
export function av1CodecString(config: Av1CodecConfig): string {
  const level = String(config.seqLevelIdx0).padStart(2, '0');
  const depth = String(config.bitDepth).padStart(2, '0');
  return `av01.${config.seqProfile}.${level}${config.seqTier0 ? 'H' : 'M'}.${depth}`;
}

const OBU_SEQUENCE_HEADER = 1;

/** max_frame_width/height from a sequence header OBU among `obus` (AV1 spec §5.3, §5.5.1), if there is one. */
export function av1FrameSize(obus: Uint8Array): { width: number; height: number } | undefined {
  let p = 0;
  while (p < obus.length) {
    const header = obus[p];
    if (header & 0x80) throw new MediaParseError('AV1 OBU: forbidden bit set', p);
    const type = (header >> 3) & 0x0f;
    const hasExtension = (header & 0x04) !== 0;
    const hasSize = (header & 0x02) !== 0;
    let q = p + 1 + (hasExtension ? 1 : 0);
    let size: number;
    if (hasSize) {
      [size, q] = readLeb128(obus, q);
    } else {
      size = obus.length - q;
    }
    if (q > obus.length || q + size > obus.length) {
      throw new MediaParseError(`AV1 OBU: size ${size} runs past the end, ${obus.length - q} bytes left`, p);
    }
    if (type === OBU_SEQUENCE_HEADER) return sequenceHeaderFrameSize(obus.subarray(q, q + size));
    p = q + size;
  }
  return undefined;
}

/** leb128(), AV1 spec §4.10.5: at most 8 bytes, value below 2^32. */
function readLeb128(buf: Uint8Array, p: number): [number, number] {
  let value = 0;
  for (let i = 0; i < 8; i++) {
    if (p + i >= buf.length) throw new MediaParseError('AV1 OBU: truncated leb128 size', p);
    const b = buf[p + i];
    value += (b & 0x7f) * 2 ** (7 * i);
    if (!(b & 0x80)) {
      if (value > 0xffffffff) throw new MediaParseError(`AV1 OBU: leb128 size ${value} exceeds 2^32 - 1`, p);
      return [value, p + i + 1];
    }
  }
  throw new MediaParseError('AV1 OBU: leb128 size longer than 8 bytes', p);
}

/** sequence_header_obu(), AV1 spec §5.5.1, read as far as max_frame_height_minus_1. */
function sequenceHeaderFrameSize(body: Uint8Array): { width: number; height: number } {
  const r = new BitReader(body, 'AV1 sequence header');
  r.skipBits(3); // seq_profile
  r.skipBits(1); // still_picture
  const reduced = r.readFlag();
  if (reduced) {
    r.skipBits(5); // seq_level_idx[0]
  } else {
    let bufferDelayLength = 0;
    let decoderModelInfoPresent = false;
    if (r.readFlag()) {
      // timing_info()
      r.skipBits(64); // num_units_in_display_tick, time_scale
      if (r.readFlag()) readUvlc(r); // equal_picture_interval → num_ticks_per_picture_minus_1
      decoderModelInfoPresent = r.readFlag();
      if (decoderModelInfoPresent) {
        bufferDelayLength = r.readBits(5) + 1;
        // num_units_in_decoding_tick, buffer_removal_time_length_minus_1, frame_presentation_time_length_minus_1
        r.skipBits(32 + 5 + 5);
      }
    }
    const initialDisplayDelayPresent = r.readFlag();
    const operatingPoints = r.readBits(5) + 1;
    for (let i = 0; i < operatingPoints; i++) {
      r.skipBits(12); // operating_point_idc
      const level = r.readBits(5);
      if (level > 7) r.skipBits(1); // seq_tier
      if (decoderModelInfoPresent && r.readFlag()) r.skipBits(2 * bufferDelayLength + 1);
      if (initialDisplayDelayPresent && r.readFlag()) r.skipBits(4);
    }
  }
  const widthBits = r.readBits(4) + 1;
  const heightBits = r.readBits(4) + 1;
  return { width: r.readBits(widthBits) + 1, height: r.readBits(heightBits) + 1 };
}

/** uvlc(), AV1 spec §4.10.3. */
function readUvlc(r: BitReader): number {
  let leadingZeros = 0;
  while (!r.readFlag()) {
    leadingZeros++;
    if (leadingZeros >= 32) return 0xffffffff;
  }
  return leadingZeros === 0 ? 0 : r.readBits(leadingZeros) + 2 ** leadingZeros - 1;
}

export interface Av1TrackInfo {
  codecString: string;
  width?: number;
  height?: number;
}

export function av1TrackInfo(av1C: Uint8Array): Av1TrackInfo {
  const config = parseAv1CodecConfig(av1C);
  const info: Av1TrackInfo = { codecString: av1CodecString(config) };
  const size = av1FrameSize(config.configObus);
  if (size) {
    info.width = size.width;
    info.height = size.height;
  }
  return info;
}
