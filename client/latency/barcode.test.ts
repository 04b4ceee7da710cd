import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bandHeight, CELLS, cellLeft, decodeCells, encodeCells, sampleCells } from './barcode.ts';

/** Paints the band into a luma plane, the way the Node source does. */
function paint(timeMs: number, width: number, height: number): Uint8Array {
  const plane = new Uint8Array(width * height);
  const cells = encodeCells(timeMs);
  for (let cell = 0; cell < CELLS; cell++) {
    const value = cells[cell] ? 235 : 16;
    for (let y = 0; y < height; y++)
      plane.fill(value, y * width + cellLeft(width, cell), y * width + cellLeft(width, cell + 1));
  }
  return plane;
}

/** A box blur of radius r, then a level shift and seeded noise: what a codec and a scaler do to edges and levels. */
function degrade(plane: Uint8Array, width: number, height: number, r: number, seed: number): Uint8Array {
  const out = new Uint8Array(plane.length);
  let s = seed;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let sum = 0;
      let n = 0;
      for (let dx = -r; dx <= r; dx++) {
        const xx = Math.min(width - 1, Math.max(0, x + dx));
        sum += plane[y * width + xx];
        n++;
      }
      s = (s * 1103515245 + 12345) & 0x7fffffff;
      const noise = (s % 41) - 20;
      out[y * width + x] = Math.max(0, Math.min(255, Math.round((sum / n) * 0.7 + 30 + noise)));
    }
  }
  return out;
}

const read = (plane: Uint8Array, width: number, height: number) =>
  decodeCells(sampleCells(width, height, (x, y) => plane[y * width + x]));

test('time stamps round-trip exactly at several frame sizes', () => {
  for (const [width, height] of [
    [1280, 720],
    [854, 480],
    [320, 180],
    [1920, 1080],
  ]) {
    const h = bandHeight(height);
    for (const time of [0, 1, 1_764_620_000_123, 2 ** 44 - 1, 1_000_000_007]) {
      assert.deepEqual(
        read(paint(time, width, h), width, h),
        { ok: true, timeMs: time },
        `${time} at ${width}x${height}`,
      );
    }
  }
});

test('blur, dimming and noise do not change what is read', () => {
  const [width, height] = [854, bandHeight(480)];
  for (let i = 0; i < 20; i++) {
    const time = 1_764_620_000_000 + i * 33_337;
    const degraded = degrade(paint(time, width, height), width, height, 4, i + 1);
    assert.deepEqual(read(degraded, width, height), { ok: true, timeMs: time });
  }
});

test('a corrupted code is rejected by its check, a picture without a band by its contrast', () => {
  const [width, height] = [1280, bandHeight(720)];
  const time = 1_764_620_000_123;
  let rejected = 0;
  for (let cell = 2; cell < CELLS - 2; cell++) {
    const plane = paint(time, width, height);
    // Flip one data or check cell.
    const left = cellLeft(width, cell);
    const right = cellLeft(width, cell + 1);
    for (let y = 0; y < height; y++) {
      for (let x = left; x < right; x++) plane[y * width + x] = plane[y * width + x] > 128 ? 16 : 235;
    }
    const result = read(plane, width, height);
    assert.equal(result.ok, false, `flipped cell ${cell} must not decode`);
    if (!result.ok && result.reason === 'check') rejected++;
  }
  assert.equal(rejected, CELLS - 4);
  assert.deepEqual(read(new Uint8Array(width * height).fill(128), width, height), {
    ok: false,
    reason: 'contrast',
  });
  assert.throws(() => encodeCells(2 ** 44), /does not fit/);
  assert.throws(() => encodeCells(-1), /does not fit/);
});
