import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MediaParseError } from './errors.ts';
import { annexBToAvcc, avccRelength, forEachAvccNalu, nalusToAvcc, splitAnnexB, splitAvcc } from './nalu.ts';

const u8 = (...b: number[]) => new Uint8Array(b);

describe('splitAnnexB', () => {
  it('splits at 3- and 4-byte start codes, ignoring leading bytes and trailing zeros', () => {
    const buf = u8(0xaa, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 0, 0, 4, 0, 0);
    const nalus = splitAnnexB(buf);
    assert.deepEqual(nalus, [u8(0x67, 1, 2), u8(0x68, 3), u8(0x65, 0, 0, 4)]);
  });

  it('returns views into the input, not copies', () => {
    const buf = u8(0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x67, 0x42);
    const nalus = splitAnnexB(buf);
    assert.equal(nalus.length, 2);
    for (const n of nalus) assert.equal(n.buffer, buf.buffer);
    assert.equal(nalus[1].byteOffset, 8);
  });

  it('keeps emulation-prevented sequences inside a NAL unit and drops empty ones', () => {
    assert.deepEqual(splitAnnexB(u8(0, 0, 1, 0x67, 0, 0, 3, 1, 0, 0, 1, 0, 0, 1, 0x68)), [
      u8(0x67, 0, 0, 3, 1),
      u8(0x68),
    ]);
    assert.deepEqual(splitAnnexB(u8(1, 2, 3)), []);
    assert.deepEqual(splitAnnexB(u8()), []);
  });

  it('finds start codes at every alignment of the fast skip', () => {
    for (let pad = 0; pad < 7; pad++) {
      const buf = u8(...Array(pad).fill(7), 0, 0, 1, 0x41, ...Array(pad).fill(9), 0, 0, 1, 0x01);
      assert.deepEqual(splitAnnexB(buf), [u8(0x41, ...Array(pad).fill(9)), u8(0x01)], `pad ${pad}`);
    }
  });
});

describe('length-prefixed NAL units', () => {
  const nalus = [u8(0x67, 1, 2, 3), u8(0x68, 4), u8(0x65, ...Array(300).fill(5))];

  it('nalusToAvcc and splitAvcc round-trip, splitAvcc returning views', () => {
    const avcc = nalusToAvcc(nalus);
    assert.equal(avcc.length, 3 * 4 + 4 + 2 + 301);
    assert.deepEqual([...avcc.subarray(0, 4)], [0, 0, 0, 4]);
    const back = splitAvcc(avcc);
    assert.deepEqual(back, nalus);
    for (const n of back) assert.equal(n.buffer, avcc.buffer);
  });

  it('annexBToAvcc converts an Annex B access unit', () => {
    assert.deepEqual(
      annexBToAvcc(u8(0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x65, 0x88)),
      u8(0, 0, 0, 2, 9, 0xf0, 0, 0, 0, 2, 0x65, 0x88),
    );
  });

  it('avccRelength rewrites 1- and 2-byte lengths to 4 bytes in one pass', () => {
    const two = u8(0, 4, 0x67, 1, 2, 3, 0, 2, 0x68, 4);
    assert.deepEqual(avccRelength(two, 2), nalusToAvcc(nalus.slice(0, 2)));
    const one = u8(4, 0x67, 1, 2, 3, 2, 0x68, 4);
    assert.deepEqual(avccRelength(one, 1), nalusToAvcc(nalus.slice(0, 2)));
    assert.deepEqual(splitAvcc(two, 2), nalus.slice(0, 2));
    const four = nalusToAvcc(nalus);
    assert.equal(avccRelength(four, 4), four, '4-byte input is returned as is');
  });

  it('throws MediaParseError on a length past the end or a truncated length field', () => {
    const bad = u8(0, 0, 0, 9, 0x65, 1, 2);
    assert.throws(
      () => splitAvcc(bad),
      (e: unknown) =>
        e instanceof MediaParseError && /NAL length 9 runs past the end/.test(e.message) && e.offset === 0,
    );
    assert.throws(() => splitAvcc(u8(0, 0, 0, 1, 0x65, 0, 0)), /truncated 4-byte length field/);
    assert.throws(() => avccRelength(u8(0, 5, 1), 2), MediaParseError);
    assert.throws(() => forEachAvccNalu(u8(1), 5, () => {}), RangeError);
  });

  it('skips zero-length NAL units', () => {
    assert.deepEqual(splitAvcc(u8(0, 0, 0, 0, 0, 0, 0, 1, 0x09)), [u8(0x09)]);
  });
});
