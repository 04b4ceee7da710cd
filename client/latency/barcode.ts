/**
 * The time stamp a latency source paints into every frame and a viewer reads back from the decoded picture.
 *
 * A band across the top of the frame holds 64 cells of equal width, each black or white:
 *   white, black | 44 bits of wall-clock milliseconds, most significant first | CRC-16 of those bits | black, white
 * The two pairs at the ends calibrate the threshold (a blurred or dimmed picture moves both levels), so the
 * reader needs no fixed brightness. Cells are 1/64 of the width (20 px at 1280) and the band 8 % of the
 * height: coarse enough to survive a 2.5 Mbit/s encode, scaling and blur; a bit error is caught by the CRC.
 *
 * Pure and DOM-free: the browser pages paint with a canvas and read ImageData, the Node source paints into the
 * luma plane of raw frames, both through the two functions below.
 */

export const CELLS = 64;
const TIME_BITS = 44;
const CRC_BITS = 16;
const DATA_START = 2;
/** Band height as a share of the frame height. */
export const BAND_SHARE = 0.08;

export function bandHeight(frameHeight: number): number {
  return Math.max(8, Math.round(frameHeight * BAND_SHARE));
}

/** Cell `i` spans x from cellLeft(width, i) (inclusive) to cellLeft(width, i + 1). */
export function cellLeft(width: number, cell: number): number {
  return Math.round((cell * width) / CELLS);
}

/** CRC-16/CCITT-FALSE over the bits, most significant first. */
function crc16(bits: readonly number[]): number {
  let crc = 0xffff;
  for (const bit of bits) {
    const top = (crc >> 15) & 1;
    crc = (crc << 1) & 0xffff;
    if (top ^ bit) crc ^= 0x1021;
  }
  return crc;
}

function toBits(value: number, count: number): number[] {
  const bits: number[] = [];
  for (let i = count - 1; i >= 0; i--) bits.push(Math.floor(value / 2 ** i) % 2);
  return bits;
}

/** The 64 cells (1 white, 0 black) for a time in milliseconds (an integer below 2^44). */
export function encodeCells(timeMs: number): number[] {
  const t = Math.floor(timeMs);
  if (!(t >= 0 && t < 2 ** TIME_BITS))
    throw new RangeError(`time ${timeMs} ms does not fit in ${TIME_BITS} bits`);
  const data = toBits(t, TIME_BITS);
  return [1, 0, ...data, ...toBits(crc16(data), CRC_BITS), 0, 1];
}

export type DecodeResult = { ok: true; timeMs: number } | { ok: false; reason: 'contrast' | 'check' };

/**
 * Reads the band from cell luminances (0–255, one average per cell, e.g. over each cell's middle half).
 * Fails with `contrast` when the calibration cells do not differ enough to tell black from white (no band in
 * this picture) and with `check` when the CRC does not match (a corrupted or partial code).
 */
export function decodeCells(levels: readonly number[]): DecodeResult {
  if (levels.length !== CELLS) throw new RangeError(`expected ${CELLS} cell levels, got ${levels.length}`);
  const white = (levels[0] + levels[CELLS - 1]) / 2;
  const black = (levels[1] + levels[CELLS - 2]) / 2;
  if (white - black < 48) return { ok: false, reason: 'contrast' };
  const threshold = (white + black) / 2;
  const bits = levels
    .slice(DATA_START, DATA_START + TIME_BITS + CRC_BITS)
    .map((l) => (l > threshold ? 1 : 0));
  const data = bits.slice(0, TIME_BITS);
  let check = 0;
  for (const bit of bits.slice(TIME_BITS)) check = check * 2 + bit;
  if (crc16(data) !== check) return { ok: false, reason: 'check' };
  let time = 0;
  for (const bit of data) time = time * 2 + bit;
  return { ok: true, timeMs: time };
}

/**
 * The average luminance of the middle half of each cell (both axes), from any pixel reader: the middle avoids
 * the cell edges a codec blurs into its neighbours. `luma(x, y)` returns 0–255.
 */
export function sampleCells(width: number, height: number, luma: (x: number, y: number) => number): number[] {
  const levels: number[] = [];
  const y0 = Math.floor(height * 0.25);
  const y1 = Math.max(y0 + 1, Math.ceil(height * 0.75));
  const yStep = Math.max(1, Math.floor((y1 - y0) / 4));
  for (let cell = 0; cell < CELLS; cell++) {
    const left = cellLeft(width, cell);
    const w = cellLeft(width, cell + 1) - left;
    const x0 = left + Math.floor(w * 0.25);
    const x1 = Math.max(x0 + 1, left + Math.ceil(w * 0.75));
    let sum = 0;
    let n = 0;
    for (let y = y0; y < y1; y += yStep) {
      for (let x = x0; x < x1; x++) {
        sum += luma(x, y);
        n++;
      }
    }
    levels.push(sum / n);
  }
  return levels;
}

/** Reads the band out of RGBA pixels (canvas ImageData) whose first rows are the band. */
export function decodeRgba(
  data: Uint8ClampedArray | Uint8Array,
  width: number,
  height: number,
): DecodeResult {
  return decodeCells(
    sampleCells(width, height, (x, y) => {
      const i = (y * width + x) * 4;
      // BT.601 luma, in integers.
      return (data[i] * 77 + data[i + 1] * 150 + data[i + 2] * 29) >> 8;
    }),
  );
}
