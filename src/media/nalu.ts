import { readU32, writeU32 } from './bytes.ts';
import { MediaParseError } from './errors.ts';

/*
 * NAL unit framing shared by H.264 and H.265: the Annex B byte stream (start codes, ITU-T H.264 Annex B /
 * H.265 Annex B) and the length-prefixed form MP4 and RTMP carry (ISO/IEC 14496-15 §5.3.2, "AVCC").
 */

/**
 * Splits an Annex B byte stream at its 3- and 4-byte start codes. Returns views into `buf` (no copies).
 * Bytes before the first start code are ignored, and trailing zero bytes are trimmed from each NAL unit:
 * a NAL unit never ends in 0x00 (H.264 §7.4.1), so they are trailing_zero_8bits or the next 4-byte start code.
 */
export function splitAnnexB(buf: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  const n = buf.length;
  let start = -1;
  let i = 0;
  while (i + 2 < n) {
    // No start code can begin at i, i+1 or i+2 when buf[i+2] > 1, so skip all three.
    if (buf[i + 2] > 1) {
      i += 3;
      continue;
    }
    if (buf[i + 2] === 1 && buf[i + 1] === 0 && buf[i] === 0) {
      if (start >= 0) pushTrimmed(out, buf, start, i);
      start = i + 3;
      i += 3;
      continue;
    }
    i++;
  }
  if (start >= 0) pushTrimmed(out, buf, start, n);
  return out;
}

function pushTrimmed(out: Uint8Array[], buf: Uint8Array, start: number, end: number): void {
  while (end > start && buf[end - 1] === 0) end--;
  if (end > start) out.push(buf.subarray(start, end));
}

/** Joins NAL units with 4-byte big-endian lengths: one allocation, each NAL copied once. */
export function nalusToAvcc(nalus: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const nal of nalus) total += 4 + nal.length;
  const out = new Uint8Array(total);
  let p = 0;
  for (const nal of nalus) {
    writeU32(out, p, nal.length);
    out.set(nal, p + 4);
    p += 4 + nal.length;
  }
  return out;
}

/** Annex B to 4-byte length-prefixed NAL units, dropping nothing. */
export function annexBToAvcc(buf: Uint8Array): Uint8Array {
  return nalusToAvcc(splitAnnexB(buf));
}

function readLength(data: Uint8Array, p: number, lengthSize: number): number {
  switch (lengthSize) {
    case 4:
      return readU32(data, p);
    case 2:
      return (data[p] << 8) | data[p + 1];
    case 1:
      return data[p];
    default:
      return (data[p] << 16) | (data[p + 1] << 8) | data[p + 2];
  }
}

/**
 * Walks length-prefixed NAL units, calling `visit` with a view of each; zero-length units are skipped.
 * Throws MediaParseError when a length field or a NAL unit runs past the end.
 */
export function forEachAvccNalu(
  data: Uint8Array,
  lengthSize: number,
  visit: (nal: Uint8Array) => void,
): void {
  if (lengthSize < 1 || lengthSize > 4 || !Number.isInteger(lengthSize)) {
    throw new RangeError(`NAL length size must be 1..4, got ${lengthSize}`);
  }
  let p = 0;
  while (p < data.length) {
    if (p + lengthSize > data.length) {
      throw new MediaParseError(
        `length-prefixed NAL units: truncated ${lengthSize}-byte length field, ${data.length - p} bytes left`,
        p,
      );
    }
    const len = readLength(data, p, lengthSize);
    p += lengthSize;
    if (p + len > data.length) {
      throw new MediaParseError(
        `length-prefixed NAL units: NAL length ${len} runs past the end, ${data.length - p} bytes left`,
        p - lengthSize,
      );
    }
    if (len > 0) visit(data.subarray(p, p + len));
    p += len;
  }
}

/** Splits length-prefixed NAL units into views of `data` (no copies). */
export function splitAvcc(data: Uint8Array, lengthSize = 4): Uint8Array[] {
  const out: Uint8Array[] = [];
  forEachAvccNalu(data, lengthSize, (nal) => out.push(nal));
  return out;
}

/**
 * Rewrites length-prefixed NAL units to 4-byte lengths, the only size Frame.data uses (an avcC may declare
 * 1 or 2). Returns `data` itself when it already uses 4-byte lengths; otherwise one allocation.
 */
export function avccRelength(data: Uint8Array, fromLengthSize: number): Uint8Array {
  if (fromLengthSize === 4) return data;
  let count = 0;
  let payload = 0;
  forEachAvccNalu(data, fromLengthSize, (nal) => {
    count++;
    payload += nal.length;
  });
  const out = new Uint8Array(payload + 4 * count);
  let p = 0;
  forEachAvccNalu(data, fromLengthSize, (nal) => {
    writeU32(out, p, nal.length);
    out.set(nal, p + 4);
    p += 4 + nal.length;
  });
  return out;
}
