import { BitReader } from '../bits.ts';
import { ByteReader } from '../bytes.ts';
import { MediaParseError } from '../errors.ts';

/**
 * VPCodecConfigurationRecord, "VP Codec ISO Media File Format Binding" §2.3: the vpcC body after its FullBox
 * header.
 */
export interface VpCodecConfig {
  profile: number;
  level: number;
  bitDepth: number;
  chromaSubsampling: number;
  videoFullRangeFlag: number;
  colourPrimaries: number;
  transferCharacteristics: number;
  matrixCoefficients: number;
}

export function parseVpCodecConfig(vpcC: Uint8Array): VpCodecConfig {
  const r = new ByteReader(vpcC, 'vpcC');
  const profile = r.u8('profile');
  const level = r.u8('level');
  const b = r.u8('bitDepth/chromaSubsampling/videoFullRangeFlag');
  const config: VpCodecConfig = {
    profile,
    level,
    bitDepth: b >> 4,
    chromaSubsampling: (b >> 1) & 0x07,
    videoFullRangeFlag: b & 1,
    colourPrimaries: r.u8('colourPrimaries'),
    transferCharacteristics: r.u8('transferCharacteristics'),
    matrixCoefficients: r.u8('matrixCoefficients'),
  };
  const initSize = r.u16('codecIntializationDataSize');
  r.skip(initSize, 'codecIntializationData');
  if (config.bitDepth !== 8 && config.bitDepth !== 10 && config.bitDepth !== 12) {
    r.fail(`bitDepth ${config.bitDepth} is not 8, 10 or 12`, 2);
  }
  return config;
}

/**
 * Short codecs parameter of the VP binding ("Codecs Parameter String"): `vp09.<profile>.<level>.<bitDepth>`,
 * two digits each, e.g. `vp09.00.10.08`. The optional colour fields are left out, which every browser accepts.
 */
export function vp9CodecString(config: VpCodecConfig): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `vp09.${two(config.profile)}.${two(config.level)}.${two(config.bitDepth)}`;
}

export interface Vp9TrackInfo {
  codecString: string;
  width?: number;
  height?: number;
}

/** The vpcC carries no picture size; it comes from the keyframe header, which is not parsed here. */
export function vp9TrackInfo(vpcC: Uint8Array): Vp9TrackInfo {
  return { codecString: vp9CodecString(parseVpCodecConfig(vpcC)) };
}

const VP9_SYNC_CODE = 0x498342;
const CS_RGB = 7;

/**
 * Picture size from the uncompressed header of a VP9 keyframe (VP9 bitstream spec §6.2), e.g. to fill a Track
 * from the first keyframe. Undefined for inter frames and shown-existing frames, which carry no size.
 */
export function vp9FrameSize(frame: Uint8Array): { width: number; height: number } | undefined {
  const r = new BitReader(frame, 'VP9 frame header');
  if (r.readBits(2) !== 2) throw new MediaParseError('VP9 frame header: frame_marker is not 2', 0);
  const profile = r.readBit() | (r.readBit() << 1);
  if (profile === 3) r.skipBits(1); // reserved_zero
  if (r.readFlag()) return undefined; // show_existing_frame
  if (r.readBit() !== 0) return undefined; // frame_type: not a KEY_FRAME
  r.skipBits(2); // show_frame, error_resilient_mode
  const sync = r.readBits(24);
  if (sync !== VP9_SYNC_CODE) {
    throw new MediaParseError(`VP9 frame header: sync code 0x${sync.toString(16)}, expected 0x498342`, 1);
  }
  // color_config(), §6.2.2
  if (profile >= 2) r.skipBits(1); // ten_or_twelve_bit
  const colorSpace = r.readBits(3);
  if (colorSpace !== CS_RGB) {
    r.skipBits(1); // color_range
    if (profile === 1 || profile === 3) r.skipBits(3); // subsampling_x, subsampling_y, reserved_zero
  } else if (profile === 1 || profile === 3) {
    r.skipBits(1); // reserved_zero
  }
  return { width: r.readBits(16) + 1, height: r.readBits(16) + 1 };
}
