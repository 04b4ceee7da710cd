import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MediaParseError } from '../errors.ts';
import { ffmpeg } from '../testing/ffmpeg.ts';
import { parseRtpPacket, type RtpPacket, writeRtpPacket } from './packet.ts';
import type { RtpPayloads } from './payload.ts';
import { ivfFrames, rtpFromFfmpeg, rtpToFfmpeg, withTempDirAsync } from './testing.ts';
import {
  parseVp8Descriptor,
  Vp8Depacketizer,
  Vp8Packetizer,
  vp8FrameSize,
  vp8StartsKeyframe,
} from './vp8.ts';

/** 12 libvpx frames of 320x240 at a bitrate that makes each several packets, a key frame every 6. */
function encodeVp8(): Uint8Array[] {
  return ivfFrames(
    ffmpeg([
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=320x240:rate=30',
      '-frames:v',
      '12',
      '-c:v',
      'libvpx',
      '-b:v',
      '3M',
      '-g',
      '6',
      '-auto-alt-ref',
      '0',
      '-f',
      'ivf',
      '-',
    ]),
  );
}

class Sender {
  seq = 65530;
  raw(payloads: RtpPayloads, timestamp: number): Uint8Array[] {
    return payloads.payloads.map((payload, i) =>
      writeRtpPacket(
        {
          marker: i === payloads.markerIndex,
          payloadType: 96,
          sequenceNumber: this.seq++ & 0xffff,
          timestamp,
          ssrc: 7,
        },
        payload,
      ),
    );
  }
}

const isKey = (frame: Uint8Array) => (frame[0] & 1) === 0;

describe('VP8 RTP (RFC 7741)', () => {
  const frames = encodeVp8();
  const packetize = (options = {}) => {
    const packetizer = new Vp8Packetizer({ firstPictureId: 0x7ffe, ...options });
    const sender = new Sender();
    return frames.map((f, i) => sender.raw(packetizer.packetize(f), i * 3000).map(parseRtpPacket));
  };
  const timestamps = (d: Vp8Depacketizer, packets: RtpPacket[]) =>
    packets
      .map((p) => d.push(p))
      .filter((r) => r.frame)
      .map((r) => r.frame!.timestamp / 3000);

  it('packetizes with S on the first packet, a wrapping 15-bit PictureID and bounded payloads', () => {
    assert.equal(frames.length, 12);
    const packets = packetize();
    assert.ok(packets[0].length >= 3, `key frame in ${packets[0].length} packets`);
    packets.forEach((framePackets, i) => {
      framePackets.forEach((p, k) => {
        const d = parseVp8Descriptor(p.payload);
        assert.equal(d.start, k === 0);
        assert.equal(d.partitionId, 0);
        assert.equal(d.pictureId, (0x7ffe + i) & 0x7fff);
        assert.equal(d.size, 4);
        assert.equal(p.marker, k === framePackets.length - 1);
        assert.ok(p.payload.length <= 1200);
      });
    });
    assert.deepEqual(new Vp8Packetizer().packetize(new Uint8Array(0)), { payloads: [], markerIndex: -1 });
    assert.throws(() => new Vp8Packetizer({ maxPayloadSize: 8 }), RangeError);
  });

  it('round-trips libvpx frames and flags the key frames', () => {
    const d = new Vp8Depacketizer();
    const out = packetize()
      .flat()
      .map((p) => d.push(p))
      .filter((r) => r.frame || r.error);
    assert.equal(out.length, 12);
    out.forEach((r, i) => {
      assert.deepEqual(r.frame!.data, frames[i]);
      assert.equal(r.frame!.keyframe, isKey(frames[i]), `frame ${i}`);
      assert.equal(r.frame!.keyframe, i % 6 === 0);
    });
    assert.deepEqual(vp8FrameSize(out[0].frame!.data), { width: 320, height: 240 });
    assert.equal(vp8FrameSize(out[1].frame!.data), undefined);
  });

  it('tells from a payload alone where a key frame starts (vp8StartsKeyframe)', () => {
    packetize().forEach((frame, i) => {
      frame.forEach((p, k) => {
        assert.equal(vp8StartsKeyframe(p.payload), i % 6 === 0 && k === 0, `${i}/${k}`);
      });
    });
    assert.equal(vp8StartsKeyframe(Uint8Array.of(0x90)), false, 'a truncated descriptor is no key frame');
  });

  it('drops a frame that lost a packet and waits for the next key frame', () => {
    const packets = packetize();
    packets[2].splice(1, 1);
    assert.deepEqual(timestamps(new Vp8Depacketizer(), packets.flat()), [0, 1, 6, 7, 8, 9, 10, 11]);
  });

  it('keeps the next frame when the lost packet was the end of the previous one (its S bit says so)', () => {
    const packets = packetize();
    packets[2].pop();
    const d = new Vp8Depacketizer({ waitForKeyframe: false });
    assert.deepEqual(timestamps(d, packets.flat()), [0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const lostStart = packetize();
    lostStart[4].shift();
    const d2 = new Vp8Depacketizer({ waitForKeyframe: false });
    assert.deepEqual(timestamps(d2, lostStart.flat()), [0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11]);
  });

  it('parses every descriptor field and rejects truncated or inconsistent payloads in the result', () => {
    // X=1 N=1 S=1 PID=0; I L T K; 7-bit PictureID 0x12; TL0PICIDX 5; TID 2 Y KEYIDX 3
    const full = parseVp8Descriptor(Uint8Array.of(0xb0, 0xf0, 0x12, 0x05, 0xa3, 0x9d));
    assert.deepEqual(full, {
      nonReference: true,
      start: true,
      partitionId: 0,
      pictureId: 0x12,
      tl0PicIdx: 5,
      temporalLayer: 2,
      layerSync: true,
      keyIndex: 3,
      size: 5,
    });
    assert.deepEqual(parseVp8Descriptor(Uint8Array.of(0x13, 0)), {
      nonReference: false,
      start: true,
      partitionId: 3,
      size: 1,
    });
    const cases: [number[], RegExp][] = [
      [[], /reading the first byte/],
      [[0x90], /reading the extension byte/],
      [[0x90, 0x80], /reading PictureID/],
      [[0x90, 0x80, 0x81], /15-bit PictureID/],
      [[0x90, 0x40], /TL0PICIDX/],
      [[0x90, 0x20], /TID\/KEYIDX/],
      [[0x10], /no VP8 data/],
      [[0x00, 0x01, 0x02, 0x03], /not the start of partition 0/],
      [[0x11, 0x01, 0x02, 0x03], /begins with partition 1/],
      [[0x10, 0x00, 0x02], /3 needed/],
      [[0x10, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2b, 0, 0, 0, 0], /start code 9d012b/],
    ];
    const d = new Vp8Depacketizer();
    let seq = 0;
    for (const [bytes, message] of cases) {
      const packet = parseRtpPacket(
        writeRtpPacket(
          { marker: true, payloadType: 96, sequenceNumber: seq++, timestamp: seq, ssrc: 1 },
          Uint8Array.from(bytes),
        ),
      );
      const r = d.push(packet);
      assert.ok(r.error instanceof MediaParseError, String(bytes));
      assert.match(r.error.message, message);
      assert.ok(r.error.offset! >= 12);
    }
    const twoStarts = new Vp8Depacketizer();
    const start = [0x10, 0x01, 0x02, 0x03];
    const p = (s: number, bytes: number[]) =>
      parseRtpPacket(
        writeRtpPacket({ payloadType: 96, sequenceNumber: s, timestamp: 0, ssrc: 1 }, Uint8Array.from(bytes)),
      );
    twoStarts.push(p(0, start));
    assert.match(twoStarts.push(p(1, start)).error!.message, /second frame start/);
    assert.throws(() => vp8FrameSize(Uint8Array.of(0x10, 0)), /frame tag needs 3/);
  });

  it('depacketizes what ffmpeg sends and packetizes what ffmpeg decodes', async () => {
    await withTempDirAsync(async (dir) => {
      const file = join(dir, 'in.ivf');
      const ivf = ffmpeg([
        '-f',
        'lavfi',
        '-i',
        'testsrc2=size=320x240:rate=30',
        '-frames:v',
        '12',
        '-c:v',
        'libvpx',
        '-b:v',
        '3M',
        '-g',
        '6',
        '-auto-alt-ref',
        '0',
        '-f',
        'ivf',
        '-',
      ]);
      writeFileSync(file, ivf);
      const source = ivfFrames(ivf);
      const packets = (await rtpFromFfmpeg(['-i', file, '-c', 'copy'])).map(parseRtpPacket);
      const d = new Vp8Depacketizer();
      const results = packets.map((p) => d.push(p));
      assert.ok(results.every((r) => !r.error));
      const got = results.filter((r) => r.frame).map((r) => r.frame!);
      assert.equal(got.length, 12);
      got.forEach((f, i) => {
        assert.deepEqual(f.data, source[i]);
        assert.equal(f.keyframe, i % 6 === 0);
      });

      const hashes = (s: string) =>
        s
          .split('\n')
          .filter((l) => l && !l.startsWith('#'))
          .map((l) => l.split(',').at(-1)!.trim());
      const expected = hashes(Buffer.from(ffmpeg(['-i', file, '-f', 'framemd5', '-'])).toString());
      const packetizer = new Vp8Packetizer();
      const sender = new Sender();
      const raw = [...source, source[1]].map((f, i) => sender.raw(packetizer.packetize(f), i * 3000));
      const out = await rtpToFfmpeg(dir, ['m=video PORT RTP/AVP 96', 'a=rtpmap:96 VP8/90000'], raw, [
        '-frames:v',
        '12',
        '-f',
        'framemd5',
      ]);
      assert.deepEqual(hashes(out.toString()), expected);
    });
  });
});
