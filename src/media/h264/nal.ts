import { readU32 } from '../bytes.ts';
import { MediaParseError } from '../errors.ts';

/** nal_unit_type values, ITU-T H.264 Table 7-1, that a server acts on. */
export const H264_NAL_SLICE = 1;
export const H264_NAL_IDR = 5;
export const H264_NAL_SEI = 6;
export const H264_NAL_SPS = 7;
export const H264_NAL_PPS = 8;
export const H264_NAL_AUD = 9;

export function h264NalType(nal: Uint8Array): number {
  return nal[0] & 0x1f;
}

/**
 * True when an access unit in 4-byte length-prefixed form holds an IDR slice, i.e. is a random access point.
 * Walks the length fields without allocating; a length past the end throws MediaParseError.
 */
export function isH264Keyframe(avccData: Uint8Array): boolean {
  let p = 0;
  while (p + 4 <= avccData.length) {
    const len = readU32(avccData, p);
    p += 4;
    if (p + len > avccData.length) {
      throw new MediaParseError(
        `H.264 access unit: NAL length ${len} runs past the end, ${avccData.length - p} bytes left`,
        p - 4,
      );
    }
    if (len > 0 && (avccData[p] & 0x1f) === H264_NAL_IDR) return true;
    p += len;
  }
  if (p !== avccData.length) {
    throw new MediaParseError(
      `H.264 access unit: ${avccData.length - p} trailing bytes after the last NAL unit`,
      p,
    );
  }
  return false;
}
