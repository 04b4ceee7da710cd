import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MediaParseError } from '../errors.ts';
import { buildAvcDecoderConfig } from '../h264/avcC.ts';
import { nalusToAvcc, splitAnnexB } from '../nalu.ts';
import { encodeH264, ffmpeg } from '../testing/ffmpeg.ts';
import { Av1Depacketizer, Av1Packetizer, av1StartsKeyframe } from './av1.ts';
import { H264Depacketizer, H264Packetizer, h264StartsKeyframe } from './h264.ts';
import { H265Depacketizer, H265Packetizer } from './h265.ts';
import { OpusDepacketizer, opusPacketDuration } from './opus.ts';
import { parseRtpPacket, type RtpPacket, writeRtpPacket } from './packet.ts';
import type { Depacketizer, RtpPayloads } from './payload.ts';
import { parseRtcp, writeFir, writeNack, writeReceiverReport, writeRemb, writeSdesCname } from './rtcp.ts';
import { ivfFrames } from './testing.ts';
import { parseVp8Descriptor, Vp8Depacketizer, Vp8Packetizer, vp8StartsKeyframe } from './vp8.ts';
import {
  parseVp9Descriptor,
  splitVp9Superframe,
  Vp9Depacketizer,
  Vp9Packetizer,
  vp9StartsKeyframe,
} from './vp9.ts';

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

/** A copy of `input` with a few random bytes changed, truncated, or both. */
function mutate(input: Uint8Array, rand: () => number): Uint8Array {
  let out = input.slice();
  const flips = 1 + Math.floor(rand() * 4);
  for (let i = 0; i < flips && out.length > 0; i++)
    out[Math.floor(rand() * out.length)] = Math.floor(rand() * 256);
  if (rand() < 0.3) out = out.subarray(0, Math.floor(rand() * out.length));
  return out;
}

const onlyParseErrors = (round: number, input: Uint8Array, err: unknown) => {
  if (!(err instanceof MediaParseError))
    assert.fail(`round ${round}: ${String(err)} on [${Buffer.from(input).toString('hex')}]`);
};

/** A parser fed corrupted versions of a valid input either succeeds or throws MediaParseError. */
function fuzzParser(
  name: string,
  seed: Uint8Array,
  parse: (input: Uint8Array) => unknown,
  rounds = 3000,
): void {
  it(name, () => {
    assert.doesNotThrow(() => parse(seed), 'the seed itself parses');
    const rand = prng(name.length * 7919);
    for (let i = 0; i < rounds; i++) {
      const input = mutate(seed, rand);
      try {
        parse(input);
      } catch (err) {
        onlyParseErrors(i, input, err);
      }
    }
  });
}

/**
 * A depacketizer fed a real packet stream with some payloads corrupted and packets dropped or duplicated
 * never throws, reports only MediaParseError, and still emits frames after the damage.
 */
function fuzzDepacketizer(name: string, packets: RtpPacket[], make: () => Depacketizer, rounds = 300): void {
  it(name, () => {
    const clean = make();
    const frames = packets.map((p) => clean.push(p)).filter((r) => r.frame).length;
    assert.ok(frames > 1, 'the clean stream yields frames');
    const rand = prng(name.length * 104729);
    let emitted = 0;
    for (let round = 0; round < rounds; round++) {
      const d = make();
      for (const packet of packets) {
        const roll = rand();
        if (roll < 0.03) continue;
        const payload = roll < 0.15 ? mutate(packet.payload, rand) : packet.payload;
        const pushed = { ...packet, payload };
        let result: ReturnType<Depacketizer['push']>;
        try {
          result = d.push(pushed);
        } catch (err) {
          assert.fail(
            `round ${round}: push threw ${String(err)} on [${Buffer.from(payload).toString('hex')}]`,
          );
        }
        if (result.error) assert.ok(result.error instanceof MediaParseError);
        if (result.frame) emitted++;
        if (roll > 0.97) d.push(pushed);
      }
    }
    assert.ok(emitted > rounds, `only ${emitted} frames emitted in ${rounds} damaged rounds`);
  });
}

function packetsOf(all: RtpPayloads[], frameTicks: number): RtpPacket[] {
  let seq = 65000;
  return all.flatMap((payloads, i) =>
    payloads.payloads.map((payload, k) =>
      parseRtpPacket(
        writeRtpPacket(
          {
            marker: k === payloads.markerIndex,
            payloadType: 96,
            sequenceNumber: seq++ & 0xffff,
            timestamp: i * frameTicks,
            ssrc: 1,
          },
          payload,
        ),
      ),
    ),
  );
}

describe('RTP and RTCP parsers on corrupted input throw only MediaParseError; depacketizers never throw', () => {
  fuzzParser(
    'RTP packet',
    writeRtpPacket(
      {
        marker: true,
        payloadType: 96,
        sequenceNumber: 1,
        timestamp: 2,
        ssrc: 3,
        csrcs: [4, 5],
        extensions: [
          { id: 1, data: Uint8Array.of(1, 2, 3) },
          { id: 5, data: Uint8Array.of(9) },
        ],
        padding: 4,
      },
      Uint8Array.of(0x65, 1, 2, 3),
    ),
    parseRtpPacket,
  );
  fuzzParser(
    'RTP packet, two-byte extensions',
    writeRtpPacket(
      {
        payloadType: 96,
        sequenceNumber: 1,
        timestamp: 2,
        ssrc: 3,
        extensions: [{ id: 200, data: new Uint8Array(20).fill(7) }],
      },
      Uint8Array.of(1),
    ),
    parseRtpPacket,
  );
  fuzzParser(
    'RTCP compound',
    new Uint8Array(
      Buffer.concat([
        writeReceiverReport({
          ssrc: 1,
          reports: [
            {
              ssrc: 2,
              fractionLost: 1,
              cumulativeLost: 2,
              highestSequence: 3,
              jitter: 4,
              lastSenderReport: 5,
              delaySinceLastSenderReport: 6,
            },
          ],
        }),
        writeSdesCname(1, 'fuzz'),
        writeNack(1, 2, [1, 2, 3, 40]),
        writeFir(1, [{ ssrc: 2, sequenceNumber: 1 }]),
        writeRemb(1, 1e6, [2, 3]),
        Uint8Array.of(0x81, 0xcb, 0, 1, 0, 0, 0, 2),
      ]),
    ),
    parseRtcp,
  );
  fuzzParser('VP8 payload descriptor', Uint8Array.of(0x90, 0xf0, 0x81, 0x23, 0x05, 0xa3, 0x9d), (b) =>
    parseVp8Descriptor(b),
  );
  fuzzParser(
    'VP9 payload descriptor',
    Uint8Array.of(
      0xfe,
      0x92,
      0x34,
      0x53,
      0x05,
      0x38,
      0x00,
      0xa0,
      0x00,
      0x78,
      0x01,
      0x40,
      0x00,
      0xf0,
      0x01,
      0x14,
      0x01,
    ),
    (b) => parseVp9Descriptor(b),
  );
  it('startsKeyframe of every codec never throws on random payloads', () => {
    const rand = prng(4242);
    for (let i = 0; i < 20000; i++) {
      const payload = Uint8Array.from({ length: Math.floor(rand() * 24) }, () => Math.floor(rand() * 256));
      for (const starts of [h264StartsKeyframe, vp8StartsKeyframe, vp9StartsKeyframe, av1StartsKeyframe])
        assert.equal(typeof starts(payload), 'boolean');
    }
  });
  fuzzParser('Opus TOC', Uint8Array.of(0xfb, 0x03, 1, 2), opusPacketDuration);

  const annexB = encodeH264({
    width: 320,
    height: 240,
    frames: 6,
    extra: ['-g', '3', '-crf', '10', '-bf', '0'],
  });
  const nalus = splitAnnexB(annexB);
  const sps = nalus.find((n) => (n[0] & 0x1f) === 7)!;
  const pps = nalus.find((n) => (n[0] & 0x1f) === 8)!;
  const h264 = new H264Packetizer(buildAvcDecoderConfig([sps], [pps]), { maxPayloadSize: 300 });
  const units: Uint8Array[][] = [];
  for (const nal of nalus) {
    const type = nal[0] & 0x1f;
    if (type === 7 || type === 8 || type === 6) continue;
    // one slice per picture at this size: each slice starts an access unit
    units.push([nal]);
  }
  fuzzDepacketizer(
    'H.264 depacketizer',
    packetsOf(
      units.map((u) => h264.packetize(nalusToAvcc(u))),
      3000,
    ),
    () => new H264Depacketizer(),
  );

  const hevc = splitAnnexB(
    ffmpeg([
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=160x120:rate=30',
      '-frames:v',
      '6',
      '-c:v',
      'libx265',
      '-preset',
      'ultrafast',
      '-x265-params',
      'keyint=3:bframes=0:aud=1:log-level=error',
      '-f',
      'hevc',
      '-',
    ]),
  );
  const hevcUnits: Uint8Array[][] = [];
  for (const nal of hevc) {
    if (((nal[0] >> 1) & 0x3f) === 35) hevcUnits.push([]);
    else hevcUnits.at(-1)?.push(nal);
  }
  const h265 = new H265Packetizer(undefined, { maxPayloadSize: 300 });
  fuzzDepacketizer(
    'H.265 depacketizer',
    packetsOf(
      hevcUnits.map((u) => h265.packetize(nalusToAvcc(u))),
      3000,
    ),
    () => new H265Depacketizer({ waitForKeyframe: false }),
  );

  const vp8Frames = ivfFrames(
    ffmpeg([
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=160x120:rate=30',
      '-frames:v',
      '6',
      '-c:v',
      'libvpx',
      '-b:v',
      '2M',
      '-g',
      '3',
      '-f',
      'ivf',
      '-',
    ]),
  );
  const vp8 = new Vp8Packetizer({ maxPayloadSize: 300 });
  fuzzDepacketizer(
    'VP8 depacketizer',
    packetsOf(
      vp8Frames.map((f) => vp8.packetize(f)),
      3000,
    ),
    () => new Vp8Depacketizer({ waitForKeyframe: false }),
  );

  const vp9Frames = ivfFrames(
    ffmpeg([
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=160x120:rate=30',
      '-frames:v',
      '6',
      '-c:v',
      'libvpx-vp9',
      '-b:v',
      '2M',
      '-g',
      '3',
      '-deadline',
      'realtime',
      '-cpu-used',
      '8',
      '-f',
      'ivf',
      '-',
    ]),
  );
  const vp9 = new Vp9Packetizer({ maxPayloadSize: 200 });
  const vp9Payloads = vp9Frames.map((f) => vp9.packetize(f));
  fuzzParser('VP9 frame (packetizer input)', vp9Frames[0], (b) => {
    splitVp9Superframe(b);
    vp9.packetize(b);
  });
  fuzzDepacketizer(
    'VP9 depacketizer',
    packetsOf(vp9Payloads, 3000),
    () => new Vp9Depacketizer({ waitForKeyframe: false }),
  );

  const av1Units = ivfFrames(
    ffmpeg([
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=160x120:rate=30',
      '-frames:v',
      '6',
      '-c:v',
      'libaom-av1',
      '-usage',
      'realtime',
      '-cpu-used',
      '8',
      '-b:v',
      '1M',
      '-g',
      '3',
      '-f',
      'ivf',
      '-',
    ]),
  );
  const av1 = new Av1Packetizer({ maxPayloadSize: 200 });
  fuzzDepacketizer(
    'AV1 depacketizer',
    packetsOf(
      av1Units.map((u) => av1.packetize(u)),
      3000,
    ),
    () => new Av1Depacketizer({ waitForKeyframe: false }),
  );
  fuzzParser('AV1 temporal unit (packetizer input)', av1Units[0], (b) => av1.packetize(b), 1000);

  fuzzDepacketizer(
    'Opus depacketizer',
    packetsOf(
      Array.from({ length: 20 }, (_, i) => ({ payloads: [Uint8Array.of(0xfc, i, 2, 3)], markerIndex: -1 })),
      960,
    ),
    () => new OpusDepacketizer(),
  );
});
