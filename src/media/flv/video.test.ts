import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MediaParseError } from '../errors.ts';
import type { Track } from '../Frame.ts';
import { parseVideoTag, stripVpcCHeader, videoFrameTagHeader, videoSequenceStartTag } from './video.ts';

const AVCC = Uint8Array.from([1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1f, 1, 0, 2, 0x68, 0xee]);

function fourCc(s: string): number[] {
  return [...s].map((c) => c.charCodeAt(0));
}

test('legacy AVC: sequence header, NALU with a negative composition time, end of sequence', () => {
  assert.deepStrictEqual(parseVideoTag(Uint8Array.from([0x17, 0, 0, 0, 0, ...AVCC])), {
    kind: 'config',
    codec: 'h264',
    config: AVCC,
  });
  // Inter frame, NALU, composition time -33 ms (0xffffdf as SI24).
  const nalu = Uint8Array.from([0, 0, 0, 2, 0x41, 0x9a]);
  assert.deepStrictEqual(parseVideoTag(Uint8Array.from([0x27, 1, 0xff, 0xff, 0xdf, ...nalu])), {
    kind: 'frame',
    codec: 'h264',
    keyframe: false,
    compositionTime: -33,
    data: nalu,
  });
  const key = parseVideoTag(Uint8Array.from([0x17, 1, 0, 0, 0x42, ...nalu]));
  assert.equal(key.kind === 'frame' && key.keyframe && key.compositionTime, 66);
  assert.deepStrictEqual(parseVideoTag(Uint8Array.from([0x17, 2, 0, 0, 0])), { kind: 'end', codec: 'h264' });
});

test('legacy codecs we do not carry are reported, not thrown', () => {
  const r = parseVideoTag(Uint8Array.from([0x22, 0, 0, 0]));
  assert.deepStrictEqual(r, {
    kind: 'unsupported',
    reason: 'FLV video codec id 2 (Sorenson H.263) is not supported',
  });
});

test('Enhanced RTMP: HEVC sequence start, coded frames with and without composition time', () => {
  // A hand-made hvcC prefix: configurationVersion 1, general profile Main, level 93... (not parsed here).
  const hvcC = Uint8Array.from([
    1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 0x5d, 0xf0, 0, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0, 0x0f, 0,
  ]);
  assert.deepStrictEqual(parseVideoTag(Uint8Array.from([0x90, ...fourCc('hvc1'), ...hvcC])), {
    kind: 'config',
    codec: 'h265',
    config: hvcC,
  });
  const data = Uint8Array.from([0, 0, 0, 3, 0x26, 0x01, 0xaf]);
  // CodedFrames (1) carries SI24 composition time for HEVC; keyframe (frame type 1).
  assert.deepStrictEqual(parseVideoTag(Uint8Array.from([0x91, ...fourCc('hvc1'), 0, 0, 40, ...data])), {
    kind: 'frame',
    codec: 'h265',
    keyframe: true,
    compositionTime: 40,
    data,
  });
  // CodedFramesX (3): composition time implicitly 0; inter frame (frame type 2).
  assert.deepStrictEqual(parseVideoTag(Uint8Array.from([0xa3, ...fourCc('hvc1'), ...data])), {
    kind: 'frame',
    codec: 'h265',
    keyframe: false,
    compositionTime: 0,
    data,
  });
  assert.deepStrictEqual(parseVideoTag(Uint8Array.from([0x92, ...fourCc('hvc1')])), {
    kind: 'end',
    codec: 'h265',
  });
});

test('Enhanced RTMP: AV1 and VP9 sequence starts and frames (no composition time field)', () => {
  const av1C = Uint8Array.from([0x81, 0x08, 0x0c, 0x00, 0x0a, 0x0b, 0, 0, 0, 0x2a]);
  assert.deepStrictEqual(parseVideoTag(Uint8Array.from([0x90, ...fourCc('av01'), ...av1C])), {
    kind: 'config',
    codec: 'av1',
    config: av1C,
  });
  const obus = Uint8Array.from([0x12, 0x00, 0x32, 0x05, 1, 2, 3, 4, 5]);
  assert.deepStrictEqual(parseVideoTag(Uint8Array.from([0x91, ...fourCc('av01'), ...obus])), {
    kind: 'frame',
    codec: 'av1',
    keyframe: true,
    compositionTime: 0,
    data: obus,
  });
  // vpcC as ffmpeg writes it: FullBox header (version 1, flags 0) then the record; Track.config drops the header.
  const record = Uint8Array.from([0, 31, 0x80, 1, 1, 1, 0, 0]);
  const withHeader = Uint8Array.from([1, 0, 0, 0, ...record]);
  assert.deepStrictEqual(parseVideoTag(Uint8Array.from([0x90, ...fourCc('vp09'), ...withHeader])), {
    kind: 'config',
    codec: 'vp9',
    config: record,
  });
  // Profile 1 (first byte 1) without a FullBox header is left as is: its length says it is a bare record.
  const profile1 = Uint8Array.from([1, 0, 0, 0, 1, 1, 0, 0]);
  assert.deepStrictEqual(stripVpcCHeader(profile1), profile1);
});

test('Enhanced RTMP: metadata, commands, ModEx and multitrack', () => {
  const amf = Uint8Array.from([2, 0, 9, ...fourCc('colo'), ...fourCc('rInf'), 0x6f]);
  assert.deepStrictEqual(parseVideoTag(Uint8Array.from([0x94, ...fourCc('hvc1'), ...amf])), {
    kind: 'metadata',
    data: amf,
  });
  // Command frame (type 5) with a packet type other than Metadata: one command byte, no FourCC.
  assert.deepStrictEqual(parseVideoTag(Uint8Array.from([0xd1, 0x01])), { kind: 'command', command: 1 });
  // ModEx (7): 3 bytes of modifier data (size - 1 = 2), then type/packet type byte (CodedFramesX), FourCC.
  const modEx = parseVideoTag(Uint8Array.from([0x97, 2, 0x00, 0x01, 0x02, 0x03, ...fourCc('av01'), 0x0a]));
  assert.deepStrictEqual(modEx, {
    kind: 'frame',
    codec: 'av1',
    keyframe: true,
    compositionTime: 0,
    data: Uint8Array.from([0x0a]),
  });
  assert.equal(parseVideoTag(Uint8Array.from([0x96, 0x00, ...fourCc('hvc1')])).kind, 'unsupported');
  assert.deepStrictEqual(parseVideoTag(Uint8Array.from([0x91, ...fourCc('xyz1')])), {
    kind: 'unsupported',
    reason: 'E-RTMP video FourCC "xyz1" is not supported',
  });
});

test('truncated tags throw MediaParseError naming the field', () => {
  const cases: [number[], RegExp][] = [
    [[], /FLV video tag: truncated reading frame type and codec id/],
    [[0x17], /truncated reading AVCPacketType/],
    [[0x27, 1, 0xff], /truncated reading CompositionTime, needed 3 bytes but 1 remain \(at byte 2\)/],
    [[0x91, 0x68, 0x76], /truncated reading video FourCC/],
    [[0x91, ...fourCc('hvc1'), 0], /truncated reading CompositionTime/],
    [[0x97, 9, 1, 2], /truncated reading ModEx data, needed 10 bytes but 2 remain/],
  ];
  for (const [body, message] of cases) {
    assert.throws(
      () => parseVideoTag(Uint8Array.from(body)),
      (err: unknown) => err instanceof MediaParseError && message.test(err.message),
    );
  }
  assert.throws(() => parseVideoTag(Uint8Array.from([0x17, 7, 0, 0, 0])), /AVCPacketType 7 is not 0, 1 or 2/);
});

function track(codec: Track['codec'], config: Uint8Array): Track {
  return { id: 1, kind: 'video', codec, timescale: 90000, config, codecString: codec };
}

test('the writer builds tags the parser reads back', () => {
  const h264 = track('h264', AVCC);
  assert.deepStrictEqual(parseVideoTag(videoSequenceStartTag(h264)), {
    kind: 'config',
    codec: 'h264',
    config: AVCC,
  });
  const data = Uint8Array.from([0, 0, 0, 1, 0x65]);
  const frame = (t: Track, keyframe: boolean, cts: number) =>
    parseVideoTag(Uint8Array.from([...videoFrameTagHeader(t, keyframe, cts), ...data]));
  assert.deepStrictEqual(frame(h264, true, -1), {
    kind: 'frame',
    codec: 'h264',
    keyframe: true,
    compositionTime: -1,
    data,
  });
  assert.deepStrictEqual(frame(h264, false, 8_388_607), {
    kind: 'frame',
    codec: 'h264',
    keyframe: false,
    compositionTime: 8_388_607,
    data,
  });
  const h265 = track('h265', Uint8Array.from([1, 2, 3]));
  assert.deepStrictEqual(parseVideoTag(videoSequenceStartTag(h265)), {
    kind: 'config',
    codec: 'h265',
    config: Uint8Array.from([1, 2, 3]),
  });
  assert.equal(videoFrameTagHeader(h265, true, 0).length, 5, 'CodedFramesX when the composition time is 0');
  assert.deepStrictEqual(frame(h265, false, 33), {
    kind: 'frame',
    codec: 'h265',
    keyframe: false,
    compositionTime: 33,
    data,
  });
  const vpcC = Uint8Array.from([0, 31, 0x80, 1, 1, 1, 0, 0]);
  const vp9 = track('vp9', vpcC);
  assert.deepStrictEqual(parseVideoTag(videoSequenceStartTag(vp9)), {
    kind: 'config',
    codec: 'vp9',
    config: vpcC,
  });
  assert.deepStrictEqual(frame(track('av1', new Uint8Array(4)), true, 0), {
    kind: 'frame',
    codec: 'av1',
    keyframe: true,
    compositionTime: 0,
    data,
  });
});
