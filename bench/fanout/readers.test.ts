import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  FlvTagReader,
  Fmp4FrameReader,
  type FrameSink,
  type TrackIndex,
  WireFormatError,
} from './readers.ts';

class Frames implements FrameSink {
  readonly seen: [TrackIndex, number, number][] = [];
  frame(track: TrackIndex, dts: number, samples: number): void {
    this.seen.push([track, dts, samples]);
  }
}

function u32(n: number): number[] {
  return [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

function box(type: string, ...payload: number[][]): number[] {
  const body = payload.flat();
  return [...u32(8 + body.length), ...[...type].map((c) => c.charCodeAt(0)), ...body];
}

function fullBox(type: string, version: number, ...payload: number[][]): number[] {
  return box(type, [version, 0, 0, 0], ...payload);
}

function trak(id: number, timescale: number, handler: string): number[] {
  const tkhd = fullBox('tkhd', 0, u32(0), u32(0), u32(id), new Array(68).fill(0));
  const mdhd = fullBox('mdhd', 0, u32(0), u32(0), u32(timescale), u32(0), [0x55, 0xc4, 0, 0]);
  const hdlr = fullBox(
    'hdlr',
    0,
    u32(0),
    [...handler].map((c) => c.charCodeAt(0)),
    new Array(13).fill(0),
  );
  return box('trak', tkhd, box('mdia', mdhd, hdlr));
}

function fragment(id: number, dts: number, payload: number): number[] {
  const tfhd = box('tfhd', [0, 2, 0, 0], u32(id));
  const tfdt = fullBox('tfdt', 1, u32(0), u32(dts));
  const trun = fullBox('trun', 1, u32(1), u32(0), u32(0), u32(payload), u32(0), u32(0));
  return [
    ...box('moof', fullBox('mfhd', 0, u32(1)), box('traf', tfhd, tfdt, trun)),
    ...box('mdat', new Array(payload).fill(7)),
  ];
}

describe('Fmp4FrameReader', () => {
  const init = new Uint8Array([
    ...box(
      'ftyp',
      [...'iso6'].map((c) => c.charCodeAt(0)),
      u32(0),
    ),
    ...box(
      'moov',
      fullBox('mvhd', 0, new Array(96).fill(0)),
      trak(1, 90_000, 'vide'),
      trak(2, 48_000, 'soun'),
    ),
  ]);

  it('learns track kinds and timescales from the init segment', () => {
    const reader = new Fmp4FrameReader(new Frames());
    reader.readInit(init);
    assert.equal(reader.timescale(0), 90_000);
    assert.equal(reader.timescale(1), 48_000);
  });

  it('reports one frame per moof, several moofs in one message too', () => {
    const frames = new Frames();
    const reader = new Fmp4FrameReader(frames);
    reader.readInit(init);
    reader.readFragments(new Uint8Array(fragment(1, 3000, 20)));
    reader.readFragments(new Uint8Array([...fragment(2, 1024, 5), ...fragment(1, 6000, 9)]));
    assert.deepEqual(frames.seen, [
      [0, 3000, 1],
      [1, 1024, 1],
      [0, 6000, 1],
    ]);
  });

  it('throws a typed error on a box that overruns the message', () => {
    const reader = new Fmp4FrameReader(new Frames());
    reader.readInit(init);
    const bytes = fragment(1, 0, 4);
    assert.throws(
      () => reader.readFragments(new Uint8Array(bytes.slice(0, bytes.length - 2))),
      WireFormatError,
    );
  });
});

function tag(type: number, dts: number, body: number[]): number[] {
  const size = body.length;
  const header = [
    type,
    size >> 16,
    (size >> 8) & 0xff,
    size & 0xff,
    (dts >> 16) & 0xff,
    (dts >> 8) & 0xff,
    dts & 0xff,
  ];
  return [...header, (dts >>> 24) & 0xff, 0, 0, 0, ...body, ...u32(11 + size)];
}

describe('FlvTagReader', () => {
  const stream = [
    ...[0x46, 0x4c, 0x56, 1, 5, ...u32(9), ...u32(0)],
    ...tag(18, 0, [2, 0, 10, ...new Array(20).fill(1)]),
    ...tag(8, 0, [0xaf, 0, 0x11, 0x90]), // AAC AudioSpecificConfig
    ...tag(9, 0, [0x17, 0, 0, 0, 0, 1, 0x64]), // AVC sequence header
    ...tag(9, 0, [0x17, 1, 0, 0, 0, 9, 9, 9]),
    ...tag(8, 21, [0xaf, 1, 5, 5]),
    ...tag(9, 33, [0x27, 1, 0, 0, 0, 9]),
    ...tag(9, 0x01000010, [0x27, 1, 0, 0, 0]),
  ];
  const expected = [
    [0, 0, 1],
    [1, 21, 1],
    [0, 33, 1],
    [0, 0x01000010, 1],
  ];

  it('reports media tags, not configuration, from one chunk', () => {
    const frames = new Frames();
    new FlvTagReader(frames).push(new Uint8Array(stream));
    assert.deepEqual(frames.seen, expected);
  });

  it('reads the same from a stream cut into single bytes', () => {
    const frames = new Frames();
    const reader = new FlvTagReader(frames);
    for (const byte of stream) reader.push(new Uint8Array([byte]));
    assert.deepEqual(frames.seen, expected);
  });

  it('refuses a stream that is not FLV', () => {
    assert.throws(() => new FlvTagReader(new Frames()).push(new Uint8Array(13)), WireFormatError);
  });
});
