import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BitReader, BitWriter, removeEmulationPrevention } from './bits.ts';
import { MediaParseError } from './errors.ts';

/** Packs a string of '0'/'1' (spaces ignored) MSB-first, zero-padded. */
function bits(s: string): Uint8Array {
  const clean = s.replaceAll(' ', '');
  const out = new Uint8Array(Math.ceil(clean.length / 8));
  for (let i = 0; i < clean.length; i++) if (clean[i] === '1') out[i >> 3] |= 0x80 >> (i & 7);
  return out;
}

describe('BitReader', () => {
  it('reads fixed-width fields across byte boundaries, including 32-bit unsigned', () => {
    const r = new BitReader(new Uint8Array([0b1011_0011, 0xff, 0xff, 0xff, 0xff, 0x80]));
    assert.equal(r.readBit(), 1);
    assert.equal(r.readBits(3), 0b011);
    assert.equal(r.readBits(4), 0b0011);
    assert.equal(r.readBits(32), 0xffffffff);
    assert.equal(r.readFlag(), true);
    assert.equal(r.position, 41);
    assert.equal(r.bitsLeft, 7);
    assert.equal(r.readBits(0), 0);
  });

  it('decodes ue(v) and se(v) per H.264 §9.1 tables 9-2 and 9-3', () => {
    // codeNum 0..6: 1, 010, 011, 00100, 00101, 00110, 00111
    const r = new BitReader(bits('1 010 011 00100 00101 00110 00111'));
    assert.deepEqual(
      Array.from({ length: 7 }, () => r.readUE()),
      [0, 1, 2, 3, 4, 5, 6],
    );
    const s = new BitReader(bits('1 010 011 00100 00101 00110 00111'));
    assert.deepEqual(
      Array.from({ length: 7 }, () => s.readSE()),
      [0, 1, -1, 2, -2, 3, -3],
    );
  });

  it('decodes the largest 32-bit ue(v) code', () => {
    // 31 zeros, a one, 31 ones: 2^31 - 1 + 2^31 - 1
    const r = new BitReader(bits(`${'0'.repeat(31)}1${'1'.repeat(31)}`));
    assert.equal(r.readUE(), 2 ** 32 - 2);
  });

  it('throws MediaParseError when reading past the end, never inventing bits', () => {
    const r = new BitReader(new Uint8Array([0xff]), 'test SPS');
    r.readBits(7);
    assert.throws(
      () => r.readBits(2),
      (e: unknown) => e instanceof MediaParseError && /test SPS.*truncated/.test(e.message),
    );
    assert.throws(() => new BitReader(new Uint8Array([0, 0])).readUE(), MediaParseError);
    assert.throws(() => new BitReader(new Uint8Array(8)).readUE(), /more than 31 leading zero/);
    assert.throws(() => new BitReader(new Uint8Array(1)).skipBits(9), MediaParseError);
  });
});

describe('BitWriter', () => {
  it('round-trips through BitReader', () => {
    const w = new BitWriter(8);
    w.writeBits(5, 31);
    w.writeBits(6, 10);
    w.writeBits(24, 0xabcdef);
    w.writeBits(1, 1);
    const out = w.finish();
    assert.equal(out.length, 5);
    const r = new BitReader(out);
    assert.deepEqual([r.readBits(5), r.readBits(6), r.readBits(24), r.readBits(1)], [31, 10, 0xabcdef, 1]);
    assert.throws(() => w.writeBits(3, 8), RangeError);
  });
});

describe('removeEmulationPrevention', () => {
  it('drops every 0x03 that follows two zero bytes', () => {
    assert.deepEqual(
      removeEmulationPrevention(new Uint8Array([0x67, 0, 0, 3, 1, 0, 0, 3, 0, 0, 3])),
      new Uint8Array([0x67, 0, 0, 1, 0, 0, 0, 0]),
    );
  });

  it('restarts the zero count after a removed byte (00 00 03 00 00 03 → 00 00 00 00)', () => {
    assert.deepEqual(
      removeEmulationPrevention(new Uint8Array([0, 0, 3, 0, 0, 3])),
      new Uint8Array([0, 0, 0, 0]),
    );
  });

  it('keeps 0x03 not preceded by two zeros, and returns the input itself when nothing is removed', () => {
    const input = new Uint8Array([0, 3, 0, 1, 3, 3, 0, 0, 4]);
    assert.equal(removeEmulationPrevention(input), input);
  });

  it('handles a 00 00 03 that starts right after the first removed byte', () => {
    assert.deepEqual(
      removeEmulationPrevention(new Uint8Array([9, 0, 0, 3, 3, 0, 0, 3, 2])),
      new Uint8Array([9, 0, 0, 3, 0, 0, 2]),
    );
  });
});
