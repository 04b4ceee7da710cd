import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MediaParseError } from '../errors.ts';
import { ffmpeg } from '../testing/ffmpeg.ts';
import { vp9FrameSize } from '../vp9/vpcC.ts';
import { parseRtpPacket, type RtpPacket, writeRtpPacket } from './packet.ts';
import { ivfFrames, rtpFromFfmpeg, rtpToFfmpeg, withTempDirAsync } from './testing.ts';
import {
  parseVp9Descriptor,
  splitVp9Superframe,
  Vp9Depacketizer,
  Vp9Packetizer,
  vp9StartsKeyframe,
} from './vp9.ts';

const ivf = () =>
  ffmpeg([
    '-f',
    'lavfi',
    '-i',
    'testsrc2=size=320x240:rate=30',
    '-frames:v',
    '12',
    '-c:v',
    'libvpx-vp9',
    '-b:v',
    '2M',
    '-g',
    '6',
    '-auto-alt-ref',
    '0',
    '-deadline',
    'realtime',
    '-cpu-used',
    '8',
    '-f',
    'ivf',
    '-',
  ]);

let seq = 100;
const packet = (descriptor: number[], data: Uint8Array, timestamp: number, marker: boolean): RtpPacket =>
  parseRtpPacket(
    writeRtpPacket(
      { marker, payloadType: 98, sequenceNumber: seq++ & 0xffff, timestamp, ssrc: 3 },
      Uint8Array.from([...descriptor, ...data]),
    ),
  );

describe('VP9 RTP (RFC 9628)', () => {
  it('reads every descriptor field, including the scalability structure', () => {
    // I P L F=0 B E V: PictureID 15-bit 0x1234; T=2 U S=1 D; TL0PICIDX 9; SS: N_S=1 (2 layers) Y G,
    // 160x120 and 320x240, N_G=1: T=0 U R=1 P_DIFF 1
    const d = parseVp9Descriptor(
      Uint8Array.of(
        0xee,
        0x92,
        0x34,
        0x53,
        0x09,
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
        0xaa,
      ),
    );
    assert.deepEqual(d, {
      interPicturePredicted: true,
      flexible: false,
      beginsFrame: true,
      endsFrame: true,
      notReferenceForUpperLayer: false,
      pictureId: 0x1234,
      temporalId: 2,
      switchingUp: true,
      spatialId: 1,
      interLayerDependency: true,
      tl0PicIdx: 9,
      spatialLayers: [
        { width: 160, height: 120 },
        { width: 320, height: 240 },
      ],
      size: 17,
    });
    // flexible mode with two reference indices
    const flex = parseVp9Descriptor(Uint8Array.of(0xd8, 0x05, 0x03, 0x04, 0xff));
    assert.deepEqual(flex.pDiffs, [1, 2]);
    assert.equal(flex.size, 4);
    for (const [bytes, message] of [
      [[], /the first byte/],
      [[0x80], /PictureID/],
      [[0x80, 0x80], /15-bit PictureID/],
      [[0x20], /layer indices/],
      [[0x20, 0x00], /TL0PICIDX/],
      [[0x50], /P_DIFF/],
      [[0x50, 0x03, 0x03, 0x03], /more than 3 P_DIFF/],
      [[0x02], /scalability structure/],
      [[0x02, 0x10, 0x00], /layer width/],
      [[0x02, 0x08], /N_G/],
      [[0x02, 0x08, 0x01, 0x04], /picture group P_DIFF/],
    ] as [number[], RegExp][]) {
      assert.throws(
        () => parseVp9Descriptor(Uint8Array.from(bytes), 12),
        (e: unknown) => {
          return e instanceof MediaParseError && message.test(e.message) && e.offset! >= 12;
        },
      );
    }
  });

  it('depacketizes what ffmpeg sends for libvpx-vp9 and finds the key frames in the VP9 header', async () => {
    await withTempDirAsync(async (dir) => {
      const file = join(dir, 'in.ivf');
      const bytes = ivf();
      writeFileSync(file, bytes);
      const source = ivfFrames(bytes);
      assert.equal(source.length, 12);
      const packets = (await rtpFromFfmpeg(['-i', file, '-c', 'copy', '-strict', 'experimental'])).map(
        parseRtpPacket,
      );
      assert.ok(packets.length > 12, `${packets.length} packets`);
      const d = new Vp9Depacketizer();
      const results = packets.map((p) => d.push(p));
      assert.ok(results.every((r) => !r.error));
      const frames = results.filter((r) => r.frame).map((r) => r.frame!);
      assert.equal(frames.length, 12);
      frames.forEach((f, i) => {
        assert.deepEqual(f.data, source[i]);
        assert.equal(f.keyframe, i % 6 === 0, `frame ${i}`);
      });
      assert.deepEqual(vp9FrameSize(frames[0].data), { width: 320, height: 240 });

      // ffmpeg never sets P, yet only each key frame's first packet starts one
      const firstTs = packets[0].timestamp;
      const starts = packets.filter((p) => vp9StartsKeyframe(p.payload));
      assert.deepEqual(
        starts.map((p) => Math.round((p.timestamp - firstTs) / 3000)),
        [0, 6],
      );
      // Loss of a middle packet of frame 2 drops it and frames until the next key frame.
      const byFrame = new Map<number, RtpPacket[]>();
      for (const p of packets) byFrame.set(p.timestamp, [...(byFrame.get(p.timestamp) ?? []), p]);
      const lossy = [...byFrame.values()];
      const victim = lossy.findIndex((f, i) => i > 0 && i % 6 !== 0 && f.length >= 3);
      assert.ok(victim > 0, 'an inter frame of 3+ packets');
      lossy[victim].splice(1, 1);
      const d2 = new Vp9Depacketizer();
      const kept = lossy.flat().flatMap((p) => {
        const r = d2.push(p);
        return r.frame ? [r.frame.timestamp] : [];
      });
      const firstTimestamp = packets[0].timestamp;
      const ticks = (kept as number[]).map((t) => Math.round((t - firstTimestamp) / 3000));
      assert.ok(!ticks.includes(victim));
      assert.ok(ticks.includes(6) && ticks.includes(victim - 1));
      assert.deepEqual(
        ticks.filter((t) => t > victim && t < 6),
        [],
      );
    });
  });

  it('joins the spatial layers of one picture into a superframe', () => {
    const key = ivfFrames(ivf())[0];
    const upper = Uint8Array.of(0x86, 1, 2, 3, 4, 5);
    const d = new Vp9Depacketizer();
    // base layer in two packets (S=0), then the upper layer (S=1) in one, marker on the last
    const half = key.length >> 1;
    const results = [
      d.push(packet([0x28, 0x00, 0x00], key.subarray(0, half), 9000, false)),
      d.push(packet([0x24, 0x00, 0x00], key.subarray(half), 9000, false)),
      d.push(packet([0x2c, 0x02, 0x00], upper, 9000, true)),
    ];
    const frame = results[2].frame!;
    assert.equal(frame.keyframe, true);
    const mag = key.length < 0x10000 ? 2 : 3;
    const marker = 0xc0 | ((mag - 1) << 3) | 1;
    assert.equal(frame.data.length, key.length + upper.length + 2 + 2 * mag);
    assert.deepEqual(frame.data.subarray(0, key.length), key);
    assert.deepEqual(frame.data.subarray(key.length, key.length + upper.length), upper);
    assert.equal(frame.data.at(-1), marker);
    assert.equal(frame.data[key.length + upper.length], marker);
    const sizeAt = key.length + upper.length + 1;
    assert.equal(
      frame.data[sizeAt] | (frame.data[sizeAt + 1] << 8) | (mag === 3 ? frame.data[sizeAt + 2] << 16 : 0),
      key.length,
    );
  });

  it('reports layer frames that begin twice or continue without a beginning', () => {
    const d = new Vp9Depacketizer();
    d.push(packet([0x08], Uint8Array.of(1), 1, false));
    assert.match(
      d.push(packet([0x08], Uint8Array.of(1), 1, false)).error!.message,
      /begins before the previous one ended/,
    );
    const d2 = new Vp9Depacketizer();
    assert.match(d2.push(packet([0x04], Uint8Array.of(1), 2, true)).error!.message, /without having begun/);
    const d3 = new Vp9Depacketizer();
    assert.match(d3.push(packet([0x0c], new Uint8Array(0), 3, true)).error!.message, /no VP9 data/);
    const d4 = new Vp9Depacketizer();
    const r = d4.push(packet([0x0c], Uint8Array.of(0x00, 0, 0), 4, true));
    assert.match(r.error!.message, /frame_marker is not 2/, 'a picture that is not VP9 is reported at build');
  });
});

describe('Vp9Packetizer', () => {
  it('sends libvpx-vp9 frames that our depacketizer and ffmpeg read back', async () => {
    await withTempDirAsync(async (dir) => {
      const bytes = ivf();
      const file = join(dir, 'in.ivf');
      writeFileSync(file, bytes);
      const source = ivfFrames(bytes);
      const packetizer = new Vp9Packetizer({ firstPictureId: 0x7fff });
      let s = 1;
      const raw = [...source, source[1]].map((f, i) => {
        const { payloads, markerIndex } = packetizer.packetize(f);
        payloads.forEach((p, k) => {
          assert.ok(p.length <= 1200);
          const d = parseVp9Descriptor(p);
          assert.equal(d.pictureId, (0x7fff + i) & 0x7fff);
          assert.equal(d.beginsFrame, k === 0);
          assert.equal(d.endsFrame, k === payloads.length - 1);
          assert.equal(d.interPicturePredicted, i % 6 !== 0 || i === 12, `P on picture ${i}`);
          if (k === 0 && i % 6 === 0 && i < 12)
            assert.deepEqual(d.spatialLayers, [{ width: 320, height: 240 }]);
        });
        return payloads.map((p, k) =>
          writeRtpPacket(
            { marker: k === markerIndex, payloadType: 98, sequenceNumber: s++, timestamp: i * 3000, ssrc: 5 },
            p,
          ),
        );
      });
      const d = new Vp9Depacketizer();
      const frames = raw
        .slice(0, 12)
        .flat()
        .flatMap((p) => {
          const r = d.push(parseRtpPacket(p));
          assert.equal(r.error, undefined);
          return r.frame ? [r.frame] : [];
        });
      assert.equal(frames.length, 12);
      frames.forEach((f, i) => {
        assert.deepEqual(f.data, source[i]);
        assert.equal(f.keyframe, i % 6 === 0);
      });
      const hashes = (out: string) =>
        out
          .split('\n')
          .filter((l) => l && !l.startsWith('#'))
          .map((l) => l.split(',').at(-1)!.trim());
      const expected = hashes(Buffer.from(ffmpeg(['-i', file, '-f', 'framemd5', '-'])).toString());
      const out = await rtpToFfmpeg(dir, ['m=video PORT RTP/AVP 98', 'a=rtpmap:98 VP9/90000'], raw, [
        '-frames:v',
        '12',
        '-f',
        'framemd5',
      ]);
      assert.deepEqual(hashes(out.toString()), expected);
    });
  });

  it('splits a superframe into its frames, each a layer frame of the same picture', () => {
    const key = ivfFrames(ivf())[0];
    const hidden = Uint8Array.of(0x86, 0, 1, 2);
    const mag = key.length < 0x10000 ? 2 : 3;
    const marker = 0xc0 | ((mag - 1) << 3) | 1;
    const le = (n: number) => Array.from({ length: mag }, (_, b) => (n >> (8 * b)) & 0xff);
    const superframe = Uint8Array.from([
      ...key,
      ...hidden,
      marker,
      ...le(key.length),
      ...le(hidden.length),
      marker,
    ]);
    assert.deepEqual(splitVp9Superframe(superframe), [key, hidden]);
    assert.deepEqual(splitVp9Superframe(key), [key]);
    // The packetizer sends it whole as one layer frame (B..E), a key picture from its first frame, and the
    // depacketizer gives the same bytes back.
    const { payloads, markerIndex } = new Vp9Packetizer().packetize(superframe);
    const descriptors = payloads.map((p) => parseVp9Descriptor(p));
    assert.equal(descriptors.filter((d) => d.beginsFrame).length, 1);
    assert.ok(descriptors[0].beginsFrame && descriptors.at(-1)!.endsFrame);
    assert.equal(descriptors[0].interPicturePredicted, false);
    const depacketizer = new Vp9Depacketizer();
    const back = payloads.map((p, k) =>
      depacketizer.push(
        parseRtpPacket(
          writeRtpPacket(
            { marker: k === markerIndex, payloadType: 98, sequenceNumber: 7 + k, timestamp: 90, ssrc: 5 },
            p,
          ),
        ),
      ),
    );
    assert.deepEqual(back.at(-1)!.frame?.data, superframe);
    assert.equal(back.at(-1)!.frame?.keyframe, true);
    const broken = superframe.slice();
    broken[broken.length - 2 - mag] = 0xff; // first size's high byte: frame 0 far too long
    assert.throws(() => splitVp9Superframe(broken), /runs past the index/);
  });
});
