import { ByteReader } from '../bytes.ts';
import { MediaParseError } from '../errors.ts';
import { h264CodecString, parseH264Sps } from './sps.ts';

/** AVCDecoderConfigurationRecord, ISO/IEC 14496-15 §5.3.3.1. NAL units are views into the parsed record. */
export interface AvcDecoderConfig {
  profileIdc: number;
  profileCompatibility: number;
  levelIdc: number;
  /** Bytes of each NAL unit length prefix in samples: 1, 2 or 4. */
  lengthSize: number;
  sps: Uint8Array[];
  pps: Uint8Array[];
  /** The high-profile extension (§5.3.3.1.2), when the record carries a well-formed one. */
  chromaFormat?: number;
  bitDepthLuma?: number;
  bitDepthChroma?: number;
  spsExt?: Uint8Array[];
}

/** Profiles for which §5.3.3.1.2 appends chroma_format, bit depths and SPS extensions. */
const EXTENDED_PROFILES = new Set([100, 110, 122, 144]);

export function parseAvcDecoderConfig(record: Uint8Array): AvcDecoderConfig {
  const r = new ByteReader(record, 'avcC');
  const version = r.u8('configurationVersion');
  if (version !== 1) r.fail(`configurationVersion is ${version}, expected 1`, 0);
  const profileIdc = r.u8('AVCProfileIndication');
  const profileCompatibility = r.u8('profile_compatibility');
  const levelIdc = r.u8('AVCLevelIndication');
  const lengthSize = (r.u8('lengthSizeMinusOne') & 0x03) + 1;
  if (lengthSize === 3) r.fail('lengthSizeMinusOne is 2, only 0, 1 and 3 are allowed', 4);
  const sps = readNalArray(r, r.u8('numOfSequenceParameterSets') & 0x1f, 'sequenceParameterSet');
  const pps = readNalArray(r, r.u8('numOfPictureParameterSets'), 'pictureParameterSet');
  const config: AvcDecoderConfig = { profileIdc, profileCompatibility, levelIdc, lengthSize, sps, pps };
  if (EXTENDED_PROFILES.has(profileIdc) && r.remaining >= 4) {
    // Many encoders omit or garble this extension, and decoders take the same values from the SPS, so a bad
    // one is dropped rather than rejecting an otherwise playable stream.
    try {
      const chromaFormat = r.u8('chroma_format') & 0x03;
      const bitDepthLuma = (r.u8('bit_depth_luma_minus8') & 0x07) + 8;
      const bitDepthChroma = (r.u8('bit_depth_chroma_minus8') & 0x07) + 8;
      const spsExt = readNalArray(r, r.u8('numOfSequenceParameterSetExt'), 'sequenceParameterSetExt');
      Object.assign(config, { chromaFormat, bitDepthLuma, bitDepthChroma, spsExt });
    } catch (err) {
      if (!(err instanceof MediaParseError)) throw err;
    }
  }
  return config;
}

function readNalArray(r: ByteReader, count: number, field: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const len = r.u16(`${field}Length[${i}]`);
    out.push(r.bytes(len, `${field}[${i}] of ${len} bytes`));
  }
  return out;
}

/**
 * Builds an AVCDecoderConfigurationRecord with 4-byte NAL lengths (what Frame.data uses). Profile, compatibility
 * and level come from the first SPS; the high-profile extension is written for profiles 100, 110, 122 and 144.
 */
export function buildAvcDecoderConfig(sps: readonly Uint8Array[], pps: readonly Uint8Array[]): Uint8Array {
  if (sps.length === 0 || sps.length > 31) throw new RangeError(`avcC needs 1..31 SPS, got ${sps.length}`);
  if (pps.length > 255) throw new RangeError(`avcC holds at most 255 PPS, got ${pps.length}`);
  for (const nal of [...sps, ...pps]) {
    if (nal.length === 0 || nal.length > 0xffff)
      throw new RangeError(`avcC parameter set of ${nal.length} bytes`);
  }
  const first = parseH264Sps(sps[0]);
  const extended = EXTENDED_PROFILES.has(first.profileIdc);
  let size = 7;
  for (const nal of sps) size += 2 + nal.length;
  for (const nal of pps) size += 2 + nal.length;
  if (extended) size += 4;
  const out = new Uint8Array(size);
  out[0] = 1;
  out[1] = sps[0][1];
  out[2] = sps[0][2];
  out[3] = sps[0][3];
  out[4] = 0xfc | 3;
  out[5] = 0xe0 | sps.length;
  let p = writeNalArray(out, 6, sps);
  out[p++] = pps.length;
  p = writeNalArray(out, p, pps);
  if (extended) {
    out[p++] = 0xfc | first.chromaFormatIdc;
    out[p++] = 0xf8 | (first.bitDepthLuma - 8);
    out[p++] = 0xf8 | (first.bitDepthChroma - 8);
    out[p++] = 0; // numOfSequenceParameterSetExt
  }
  return out;
}

function writeNalArray(out: Uint8Array, p: number, nalus: readonly Uint8Array[]): number {
  for (const nal of nalus) {
    out[p] = nal.length >>> 8;
    out[p + 1] = nal.length;
    out.set(nal, p + 2);
    p += 2 + nal.length;
  }
  return p;
}

export interface H264TrackInfo {
  codecString: string;
  width: number;
  height: number;
  frameRate?: number;
}

/** What a Track needs from an avcC: the codecs parameter and the displayed size of its first SPS. */
export function h264TrackInfo(avcC: Uint8Array): H264TrackInfo {
  const config = parseAvcDecoderConfig(avcC);
  if (config.sps.length === 0) throw new MediaParseError('avcC: holds no SPS, cannot describe the track');
  const sps = parseH264Sps(config.sps[0]);
  const info: H264TrackInfo = {
    codecString: h264CodecString(config.sps[0]),
    width: sps.width,
    height: sps.height,
  };
  if (sps.frameRate !== undefined) info.frameRate = sps.frameRate;
  return info;
}
