import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { splitAdts } from './aac/adts.ts';
import { buildAudioSpecificConfig, parseAudioSpecificConfig } from './aac/asc.ts';
import { av1TrackInfo } from './av1/av1C.ts';
import { MediaParseError } from './errors.ts';
import type { Track } from './Frame.ts';
import { FragmentWriter } from './fmp4/fragment.ts';
import { writeInitSegment } from './fmp4/init.ts';
import { readBoxes, readFragmentSamples } from './fmp4/reader.ts';
import { buildAvcDecoderConfig, h264TrackInfo, parseAvcDecoderConfig } from './h264/avcC.ts';
import { isH264Keyframe } from './h264/nal.ts';
import { parseH264Sps } from './h264/sps.ts';
import { hevcTrackInfo } from './h265/hvcC.ts';
import { avccRelength, splitAnnexB, splitAvcc } from './nalu.ts';
import { buildOpusHead, opusHeadFromDops, opusHeadToDops, parseOpusHead } from './opus/opusHead.ts';
import { encodeH264 } from './testing/ffmpeg.ts';
import { vp9FrameSize, vp9TrackInfo } from './vp9/vpcC.ts';

/** Deterministic PRNG (mulberry32) so a failure reproduces from its seed. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));

/** A copy of `input` with a few random bytes changed, truncated, or both. */
function mutate(input: Uint8Array, rand: () => number): Uint8Array {
  let out = input.slice();
  const flips = 1 + Math.floor(rand() * 4);
  for (let i = 0; i < flips && out.length > 0; i++)
    out[Math.floor(rand() * out.length)] = Math.floor(rand() * 256);
  if (rand() < 0.3) out = out.subarray(0, Math.floor(rand() * out.length));
  return out;
}

/**
 * Every parser, fed corrupted versions of a valid input, must either succeed or throw MediaParseError: never a
 * TypeError or RangeError from reading past the end, never a hang.
 */
function fuzz(name: string, seed: Uint8Array, parse: (input: Uint8Array) => unknown, rounds = 3000): void {
  it(name, () => {
    assert.doesNotThrow(() => parse(seed), 'the seed itself parses');
    const rand = prng(name.length * 7919);
    for (let i = 0; i < rounds; i++) {
      const input = mutate(seed, rand);
      try {
        parse(input);
      } catch (err) {
        if (!(err instanceof MediaParseError)) {
          assert.fail(`round ${i}: ${String(err)} on [${Buffer.from(input).toString('hex')}]`);
        }
      }
    }
  });
}

describe('parsers on corrupted input throw only MediaParseError', () => {
  const annexB = encodeH264({ width: 320, height: 240, profile: 'high', frames: 3 });
  const nalus = splitAnnexB(annexB);
  const sps = nalus.find((n) => (n[0] & 0x1f) === 7)!;
  const pps = nalus.find((n) => (n[0] & 0x1f) === 8)!;
  const avcC = buildAvcDecoderConfig([sps], [pps]);
  const access = new FragmentWriter();
  const track: Track = {
    id: 1,
    kind: 'video',
    codec: 'h264',
    timescale: 90000,
    config: avcC,
    codecString: 'avc1.64000d',
    width: 320,
    height: 240,
  };
  const avcc = new Uint8Array([0, 0, 0, 3, 0x65, 1, 2, 0, 0, 0, 2, 0x41, 9]);
  const file = new Uint8Array([
    ...writeInitSegment([track]),
    ...access.fragment(
      track,
      { trackId: 1, dts: 0, pts: 3000, duration: 3000, keyframe: true, data: avcc, arrival: 0 },
      3000,
    ),
    ...access.fragmentWithSamples(
      track,
      [
        { trackId: 1, dts: 3000, pts: 3000, duration: 3000, keyframe: false, data: avcc, arrival: 0 },
        { trackId: 1, dts: 6000, pts: 6000, duration: 3000, keyframe: false, data: avcc, arrival: 0 },
      ],
      [3000, 3000],
    ),
  ]);

  fuzz('H.264 SPS', sps, parseH264Sps);
  fuzz('avcC', avcC, (b) => {
    parseAvcDecoderConfig(b);
    h264TrackInfo(b);
  });
  fuzz('length-prefixed NAL units', avcc, (b) => {
    splitAvcc(b);
    avccRelength(b, 2);
    isH264Keyframe(b);
  });
  fuzz('AudioSpecificConfig', buildAudioSpecificConfig(5, 44100, 2), parseAudioSpecificConfig);
  fuzz('ADTS', new Uint8Array([0xff, 0xf1, 0x50, 0x80, 0x01, 0x5f, 0xfc, 1, 2, 3]), splitAdts);
  fuzz('OpusHead', buildOpusHead(2), parseOpusHead);
  fuzz(
    'dOps',
    opusHeadToDops(new Uint8Array([...buildOpusHead(2).subarray(0, 18), 1, 2, 1, 0, 1])),
    opusHeadFromDops,
  );
  // x265's hvcC for 640x360 Main (VPS, SPS and PPS arrays; its SEI array left out).
  fuzz(
    'hvcC',
    hex(
      '0101600000009000000000003ff000fcfdf8f800000f03200001001840010c01ffff01600000030090000003000003003f9598' +
        '09210001002a42010101600000030090000003000003003fa00502016965959a4932bc05a020000003002000000303c12200' +
        '0100074401c172b46240',
    ),
    hevcTrackInfo,
  );
  fuzz(
    'av1C',
    new Uint8Array([
      0x81, 0x00, 0x0c, 0x00, 0x0a, 0x0b, 0, 0, 0, 0x04, 0x3c, 0xff, 0xbc, 0xda, 0xf9, 0, 0x40,
    ]),
    av1TrackInfo,
  );
  fuzz('vpcC and VP9 frame header', new Uint8Array([0, 20, 0x82, 2, 2, 2, 0, 0]), (b) => {
    vp9TrackInfo(b);
    vp9FrameSize(new Uint8Array([0x82, 0x49, 0x83, 0x42, 0x00, ...b]));
  });
  fuzz(
    'MP4 boxes and fragments',
    file,
    (b) => {
      readBoxes(b);
      readFragmentSamples(b);
    },
    1500,
  );
});
