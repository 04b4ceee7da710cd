import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MediaParseError } from '../errors.ts';
import type { Track } from '../Frame.ts';
import { buildOpusHead } from '../opus/opusHead.ts';
import { audioFrameTagHeader, audioSequenceStartTag, parseAudioTag } from './audio.ts';

const ASC = Uint8Array.from([0x11, 0x90]); // AAC-LC, 48 kHz, stereo

function fourCc(s: string): number[] {
  return [...s].map((c) => c.charCodeAt(0));
}

test('legacy AAC: AudioSpecificConfig and raw frames', () => {
  assert.deepStrictEqual(parseAudioTag(Uint8Array.from([0xaf, 0, ...ASC])), {
    kind: 'config',
    codec: 'aac',
    config: ASC,
  });
  const raw = Uint8Array.from([0x21, 0x10, 0x04, 0x60]);
  assert.deepStrictEqual(parseAudioTag(Uint8Array.from([0xaf, 1, ...raw])), {
    kind: 'frame',
    codec: 'aac',
    data: raw,
  });
  // The rate/size/type bits are ignored for AAC: mono 22 kHz flags still parse.
  assert.equal(parseAudioTag(Uint8Array.from([0xa4, 1, 0])).kind, 'frame');
});

test('Enhanced RTMP Opus: OpusHead sequence start, coded frames, comment header ignored', () => {
  const head = buildOpusHead(2);
  assert.deepStrictEqual(parseAudioTag(Uint8Array.from([0x90, ...fourCc('Opus'), ...head])), {
    kind: 'config',
    codec: 'opus',
    config: head,
  });
  const packet = Uint8Array.from([0xfc, 0xff, 0xfe]);
  assert.deepStrictEqual(parseAudioTag(Uint8Array.from([0x91, ...fourCc('Opus'), ...packet])), {
    kind: 'frame',
    codec: 'opus',
    data: packet,
  });
  assert.equal(
    parseAudioTag(Uint8Array.from([0x90, ...fourCc('Opus'), ...fourCc('OpusTags'), 0, 0])).kind,
    'ignored',
  );
  // ModEx block (1 byte of data) ahead of the packet type.
  assert.deepStrictEqual(
    parseAudioTag(Uint8Array.from([0x97, 0, 0x00, 0x01, ...fourCc('Opus'), ...packet])),
    {
      kind: 'frame',
      codec: 'opus',
      data: packet,
    },
  );
  // Enhanced AAC ("mp4a") takes the same path as legacy AAC.
  assert.deepStrictEqual(parseAudioTag(Uint8Array.from([0x90, ...fourCc('mp4a'), ...ASC])), {
    kind: 'config',
    codec: 'aac',
    config: ASC,
  });
});

test('formats we do not carry are reported, not thrown', () => {
  assert.deepStrictEqual(parseAudioTag(Uint8Array.from([0x2f, 0xff, 0xfb])), {
    kind: 'unsupported',
    reason: 'FLV sound format 2 (MP3) is not supported',
  });
  assert.deepStrictEqual(parseAudioTag(Uint8Array.from([0x91, ...fourCc('fLaC'), 0])), {
    kind: 'unsupported',
    reason: 'E-RTMP audio FourCC "fLaC" is not supported',
  });
  assert.equal(parseAudioTag(Uint8Array.from([0x95, 0x00, ...fourCc('Opus')])).kind, 'unsupported');
});

test('truncated tags throw MediaParseError naming the field', () => {
  const cases: [number[], RegExp][] = [
    [[], /FLV audio tag: truncated reading sound format/],
    [[0xaf], /truncated reading AACPacketType, needed 1 bytes but 0 remain \(at byte 1\)/],
    [[0x91, 0x4f, 0x70], /truncated reading audio FourCC/],
    [[0x97, 4, 1], /truncated reading ModEx data/],
  ];
  for (const [body, message] of cases) {
    assert.throws(
      () => parseAudioTag(Uint8Array.from(body)),
      (err: unknown) => err instanceof MediaParseError && message.test(err.message),
    );
  }
  assert.throws(() => parseAudioTag(Uint8Array.from([0xaf, 2])), /AACPacketType 2 is not 0 or 1/);
});

test('the writer builds tags the parser reads back', () => {
  const aac: Track = {
    id: 2,
    kind: 'audio',
    codec: 'aac',
    timescale: 48000,
    config: ASC,
    codecString: 'mp4a.40.2',
  };
  assert.deepStrictEqual(parseAudioTag(audioSequenceStartTag(aac)), {
    kind: 'config',
    codec: 'aac',
    config: ASC,
  });
  assert.deepStrictEqual([...audioFrameTagHeader(aac)], [0xaf, 1]);
  const head = buildOpusHead(1);
  const opus: Track = {
    id: 2,
    kind: 'audio',
    codec: 'opus',
    timescale: 48000,
    config: head,
    codecString: 'opus',
  };
  assert.deepStrictEqual(parseAudioTag(audioSequenceStartTag(opus)), {
    kind: 'config',
    codec: 'opus',
    config: head,
  });
  const data = Uint8Array.from([9, 8, 7]);
  assert.deepStrictEqual(parseAudioTag(Uint8Array.from([...audioFrameTagHeader(opus), ...data])), {
    kind: 'frame',
    codec: 'opus',
    data,
  });
});
