import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MediaParseError } from '../errors.ts';
import { buildAvcDecoderConfig } from '../h264/avcC.ts';
import { nalusToAvcc, splitAnnexB, splitAvcc } from '../nalu.ts';
import { concatBytes, encodeH264, ffmpeg } from '../testing/ffmpeg.ts';
import { H264Depacketizer, H264Packetizer, h264StartsKeyframe } from './h264.ts';
import { parseRtpPacket, type RtpPacket, writeRtpPacket } from './packet.ts';
import type { DepacketizeResult, RtpPayloads } from './payload.ts';
import { rtpFromFfmpeg, rtpToFfmpeg, withTempDirAsync } from './testing.ts';

/** Access units of an x264 stream encoded with AUDs, each as its NAL units (AUD left out). */
function accessUnits(annexB: Uint8Array): Uint8Array[][] {
  const units: Uint8Array[][] = [];
  for (const nal of splitAnnexB(annexB)) {
    if ((nal[0] & 0x1f) === 9) units.push([]);
    else units.at(-1)!.push(nal);
  }
  return units;
}

const nalType = (nal: Uint8Array) => nal[0] & 0x1f;

/** 12 frames of 640x360, an IDR every 6, at a quality that makes every frame several packets. */
function encodeGops() {
  const annexB = encodeH264({
    width: 640,
    height: 360,
    frames: 12,
    extra: ['-g', '6', '-bf', '0', '-crf', '12', '-x264-params', 'aud=1'],
  });
  const units = accessUnits(annexB);
  const sps = units[0].find((n) => nalType(n) === 7)!;
  const pps = units[0].find((n) => nalType(n) === 8)!;
  // As MP4 and RTMP carry them: parameter sets in the avcC, not in the samples.
  const samples = units.map((u) => u.filter((n) => nalType(n) !== 7 && nalType(n) !== 8));
  return { units, samples, sps, pps, avcC: buildAvcDecoderConfig([sps], [pps]) };
}

/** RTP packets for the payloads of consecutive frames, as a sender writes them. */
class Sender {
  seq = 40000;
  rawPackets(payloads: RtpPayloads, timestamp: number): Uint8Array[] {
    return payloads.payloads.map((payload, i) =>
      writeRtpPacket(
        {
          marker: i === payloads.markerIndex,
          payloadType: 96,
          sequenceNumber: this.seq++ & 0xffff,
          timestamp,
          ssrc: 1,
        },
        payload,
      ),
    );
  }
  packets(payloads: RtpPayloads, timestamp: number): RtpPacket[] {
    return this.rawPackets(payloads, timestamp).map(parseRtpPacket);
  }
}

function pushAll(d: H264Depacketizer, packets: RtpPacket[]): DepacketizeResult[] {
  return packets.map((p) => d.push(p)).filter((r) => r.frame || r.error);
}

describe('H264Packetizer', () => {
  const { samples, sps, pps, avcC } = encodeGops();

  it('bounds every payload, sends SPS+PPS as one STAP-A before each IDR and fragments big slices', () => {
    const packetizer = new H264Packetizer(avcC);
    const idr = packetizer.packetize(nalusToAvcc(samples[0]), true);
    assert.equal(idr.markerIndex, idr.payloads.length - 1);
    const first = idr.payloads[0];
    assert.equal(nalType(first), 24, 'first payload is a STAP-A');
    // SPS and PPS aggregated with the SEI that follows them (all small)
    const units = [];
    for (let p = 1; p < first.length; ) {
      const size = (first[p] << 8) | first[p + 1];
      units.push(first.subarray(p + 2, p + 2 + size));
      p += 2 + size;
    }
    assert.deepEqual(units.slice(0, 2), [sps, pps]);
    assert.equal(first[0] & 0x60, 0x60, 'STAP-A NRI is the highest of its units');
    const fragments = idr.payloads.filter((p) => nalType(p) === 28);
    assert.ok(fragments.length >= 10, `IDR of ~12 KB needs >= 10 FU-A, got ${fragments.length}`);
    assert.equal(fragments[0][1] & 0xc0, 0x80, 'first FU-A has S set');
    assert.equal(fragments.at(-1)![1] & 0xc0, 0x40, 'last FU-A has E set');
    for (const f of fragments.slice(1, -1)) assert.equal(f[1] & 0xc0, 0);
    for (const f of fragments) assert.equal(f[1] & 0x1f, 5);
    const sizes = fragments.map((f) => f.length);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `fragments balanced: ${sizes}`);
    for (const sample of samples) {
      const { payloads } = packetizer.packetize(nalusToAvcc(sample));
      for (const payload of payloads) assert.ok(payload.length <= 1200, `payload of ${payload.length} bytes`);
    }
  });

  it('does not repeat parameter sets an IDR carries in band, and leaves out AUD and filler', () => {
    const packetizer = new H264Packetizer(avcC);
    const aud = Uint8Array.of(0x09, 0xf0);
    const filler = Uint8Array.of(0x0c, 0xff, 0xff, 0x80);
    const idr = Uint8Array.of(0x65, 0x88, 0x84);
    const out = packetizer.packetize(nalusToAvcc([aud, sps, pps, idr, filler]), true);
    assert.equal(out.payloads.length, 1);
    const stap = out.payloads[0];
    assert.equal(stap.length, 1 + 2 + sps.length + 2 + pps.length + 2 + idr.length);
    const noConfig = new H264Packetizer();
    assert.deepEqual(noConfig.packetize(nalusToAvcc([idr]), true).payloads, [idr]);
    assert.deepEqual(packetizer.packetize(new Uint8Array(0)), { payloads: [], markerIndex: -1 });
  });

  it('sends a single small NAL unit as itself (a view, no copy) and rejects broken AVCC', () => {
    const packetizer = new H264Packetizer(avcC, { maxPayloadSize: 100 });
    const au = nalusToAvcc([Uint8Array.of(0x41, 1, 2, 3)]);
    const { payloads } = packetizer.packetize(au);
    assert.equal(payloads[0].buffer, au.buffer);
    assert.throws(() => packetizer.packetize(Uint8Array.of(0, 0, 0, 9, 0x41)), MediaParseError);
    assert.throws(() => packetizer.packetize(Uint8Array.of(0, 0, 0)), /truncated NAL length/);
    assert.throws(() => new H264Packetizer(avcC, { maxPayloadSize: 10 }), RangeError);
    assert.throws(() => new H264Packetizer(Uint8Array.of(0, 1, 2)), MediaParseError);
  });
});

describe('H264Depacketizer', () => {
  const { samples, sps, pps, avcC } = encodeGops();
  const packetizer = new H264Packetizer(avcC);
  const framePackets = (sender: Sender) =>
    samples.map((s, i) => sender.packets(packetizer.packetize(nalusToAvcc(s), i % 6 === 0), i * 3000));

  it('round-trips real x264 access units through RTP', () => {
    const sender = new Sender();
    const d = new H264Depacketizer();
    const frames = pushAll(d, framePackets(sender).flat());
    assert.equal(frames.length, samples.length);
    frames.forEach((r, i) => {
      assert.equal(r.error, undefined);
      const keyframe = i % 6 === 0;
      assert.equal(r.frame!.keyframe, keyframe, `frame ${i}`);
      assert.equal(r.frame!.timestamp, i * 3000);
      assert.equal(r.keyframeNeeded, false);
      const expected = keyframe ? [sps, pps, ...samples[i]] : samples[i];
      assert.deepEqual(splitAvcc(r.frame!.data), expected, `frame ${i}`);
    });
    assert.deepEqual(frames[0].frame!.config, avcC, 'the first in-band parameter sets give the avcC');
    assert.equal(frames[6].frame!.config, undefined, 'unchanged parameter sets give no new avcC');
  });

  it('tells from a payload alone where a viewer can start (h264StartsKeyframe)', () => {
    const starts = framePackets(new Sender()).map((frame) => frame.map((p) => h264StartsKeyframe(p.payload)));
    starts.forEach((flags, i) => {
      if (i % 6 === 0) assert.equal(flags[0], true, `the SPS/PPS STAP-A of IDR ${i}`);
      else
        assert.ok(
          flags.every((f) => !f),
          `nothing in inter frame ${i}`,
        );
    });
    assert.equal(h264StartsKeyframe(Uint8Array.of(0x65, 1)), true);
    assert.equal(
      h264StartsKeyframe(Uint8Array.of(0x7c, 0x05, 1)),
      false,
      'an IDR FU-A that is not the start',
    );
    assert.equal(h264StartsKeyframe(Uint8Array.of(0x78, 0, 9, 0x41)), false);
    assert.equal(h264StartsKeyframe(new Uint8Array(0)), false);
  });

  it('drops the unit that lost a middle FU-A and waits for the next IDR', () => {
    const sender = new Sender();
    const packets = framePackets(sender);
    assert.ok(packets[2].length >= 4);
    const lost = packets[2].splice(2, 1)[0];
    assert.equal(nalType(lost.payload), 28);
    const d = new H264Depacketizer();
    const results = packets.flat().map((p) => d.push(p));
    const frames = results.filter((r) => r.frame).map((r) => r.frame!.timestamp / 3000);
    assert.deepEqual(frames, [0, 1, 6, 7, 8, 9, 10, 11]);
    // From the loss until the IDR the receiver is told to ask for a keyframe.
    const during = results.slice(packets[0].length + packets[1].length + 2);
    assert.equal(during[0].keyframeNeeded, true);
    assert.equal(results.at(-1)!.keyframeNeeded, false);
    assert.ok(results.every((r) => r.error === undefined));
  });

  it('with waitForKeyframe off, drops only the broken unit', () => {
    const sender = new Sender();
    const packets = framePackets(sender);
    packets[3].splice(1, 1);
    const d = new H264Depacketizer({ waitForKeyframe: false });
    const frames = pushAll(d, packets.flat()).map((r) => r.frame!.timestamp / 3000);
    assert.deepEqual(frames, [0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11]);
  });

  it('drops a unit whose marker packet was lost, ending it at the next timestamp', () => {
    const sender = new Sender();
    const packets = framePackets(sender);
    packets[1].pop();
    const d = new H264Depacketizer({ waitForKeyframe: false });
    const frames = pushAll(d, packets.flat()).map((r) => r.frame!.timestamp / 3000);
    // Nothing in an H.264 payload says whether the lost packet ended unit 1 or began unit 2: both go.
    assert.deepEqual(frames, [0, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  });

  it('ends units at a timestamp change when a sender sets no marker, and ignores duplicates', () => {
    const sender = new Sender();
    const packets = framePackets(sender)
      .flat()
      .map((p) => ({ ...p, marker: false }));
    const d = new H264Depacketizer();
    const withDuplicates = packets.flatMap((p, i) => (i % 5 === 0 ? [p, p] : [p]));
    const frames = pushAll(d, withDuplicates);
    assert.equal(frames.length, samples.length - 1, 'the last unit waits for a next timestamp');
    assert.deepEqual(splitAvcc(frames[3].frame!.data), samples[3]);
  });

  it('follows a sender that restarts its sequence numbers (RFC 3550 §A.1), and ignores a lone stray packet', () => {
    const sender = new Sender();
    const packets = framePackets(sender);
    // from the IDR of frame 6 on, numbering restarts 5000 lower
    const restarted = packets.map((frame, i) =>
      i < 6 ? frame : frame.map((p) => ({ ...p, sequenceNumber: (p.sequenceNumber - 5000) & 0xffff })),
    );
    const d = new H264Depacketizer();
    const frames = pushAll(d, restarted.flat()).map((r) => r.frame!.timestamp / 3000);
    assert.deepEqual(frames, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    // one stray packet far behind (from an old session) between two in-order ones changes nothing
    const stray = packets.map((f) => f.slice());
    stray[3].splice(1, 0, { ...stray[0][2], sequenceNumber: (stray[0][2].sequenceNumber - 3000) & 0xffff });
    const d2 = new H264Depacketizer();
    assert.equal(pushAll(d2, stray.flat()).length, 12);
  });

  it('waits for a keyframe when it starts in the middle of a GOP', () => {
    const sender = new Sender();
    const packets = framePackets(sender).slice(2).flat();
    const d = new H264Depacketizer();
    const results = packets.map((p) => d.push(p));
    assert.equal(results[0].keyframeNeeded, true);
    const frames = results.filter((r) => r.frame).map((r) => r.frame!.timestamp / 3000);
    assert.deepEqual(frames, [6, 7, 8, 9, 10, 11]);
  });

  it('reports a new avcC when the publisher changes parameter sets', () => {
    const other = encodeH264({ width: 320, height: 240, frames: 1, extra: ['-x264-params', 'aud=1'] });
    const units = accessUnits(other);
    const sender = new Sender();
    const d = new H264Depacketizer();
    const first = pushAll(d, sender.packets(packetizer.packetize(nalusToAvcc(samples[0]), true), 0));
    const second = pushAll(d, sender.packets(new H264Packetizer().packetize(nalusToAvcc(units[0])), 3000));
    assert.deepEqual(first[0].frame!.config, avcC);
    const otherSps = units[0].find((n) => nalType(n) === 7)!;
    const otherPps = units[0].find((n) => nalType(n) === 8)!;
    assert.deepEqual(second[0].frame!.config, buildAvcDecoderConfig([otherSps], [otherPps]));
  });

  it('rejects malformed payloads in a result, never by throwing, and recovers at the next IDR', () => {
    const malformed: [string, Uint8Array, RegExp][] = [
      ['empty payload', new Uint8Array(0), /empty payload/],
      ['NAL type 0', Uint8Array.of(0x00, 1, 2), /NAL unit type 0/],
      ['NAL type 30', Uint8Array.of(0x1e, 1, 2), /NAL unit type 30/],
      ['NAL type 31', Uint8Array.of(0x1f, 1, 2), /NAL unit type 31/],
      ['STAP-B', Uint8Array.of(0x19, 0, 1, 2, 0, 1, 0x41), /interleaved mode/],
      ['FU-B', Uint8Array.of(0x1d, 0x85, 1), /interleaved mode/],
      ['FU-A with no FU header', Uint8Array.of(0x7c), /without an FU header/],
      ['FU-A with S and E', Uint8Array.of(0x7c, 0xc5, 1, 2), /both start and end/],
      ['FU-A of type 0', Uint8Array.of(0x7c, 0x80, 1, 2), /FU-A has NAL unit type 0/],
      ['FU-A of a STAP-A', Uint8Array.of(0x7c, 0x98, 1, 2), /nests packet type 24/],
      ['FU-A middle without start', Uint8Array.of(0x7c, 0x05, 1, 2), /without its start/],
      ['STAP-A with a truncated size', Uint8Array.of(0x78, 0, 2, 0x67, 1, 0), /truncated size field/],
      ['STAP-A unit past the end', Uint8Array.of(0x78, 0, 9, 0x67, 1), /of 9 bytes runs past the end/],
      ['STAP-A unit of size 0', Uint8Array.of(0x78, 0, 0), /has size 0/],
      ['STAP-A holding nothing', Uint8Array.of(0x78), /holds no NAL unit/],
      ['STAP-A holding a FU-A', Uint8Array.of(0x78, 0, 2, 0x7c, 0x85), /nests packet type 28/],
    ];
    const sender = new Sender();
    const d = new H264Depacketizer();
    const idr = framePackets(sender)[0];
    for (const [name, payload, message] of malformed) {
      const packet = parseRtpPacket(
        writeRtpPacket(
          { marker: true, payloadType: 96, sequenceNumber: sender.seq++, timestamp: 1, ssrc: 1 },
          payload,
        ),
      );
      const r = d.push(packet);
      assert.ok(r.error instanceof MediaParseError, name);
      assert.match(r.error.message, message, name);
      assert.ok(r.error.offset! >= 12, `${name}: offset ${r.error.offset} is in the packet, past the header`);
      assert.equal(r.frame, undefined, name);
      assert.equal(r.keyframeNeeded, true, name);
    }
    const frames = pushAll(d, sender.packets(packetizer.packetize(nalusToAvcc(samples[0]), true), 9000));
    assert.equal(frames.length, 1);
    assert.equal(frames[0].frame!.keyframe, true);
    assert.equal(frames[0].frame!.timestamp, 9000);
    // The fragments of an IDR whose FU-A start never came (sequence numbers contiguous, so not loss).
    const headless = idr.slice(2).map((p) => ({ ...p, sequenceNumber: sender.seq++, timestamp: 12000 }));
    const after = pushAll(d, headless);
    assert.equal(after.length, 1);
    assert.match(after[0].error!.message, /without its start/);
  });

  it('reports a FU-A start or single NAL arriving before the open fragment ended', () => {
    const d = new H264Depacketizer();
    let seq = 0;
    const packet = (payload: number[], marker = false) =>
      parseRtpPacket(
        writeRtpPacket(
          { marker, payloadType: 96, sequenceNumber: seq++, timestamp: 0, ssrc: 1 },
          Uint8Array.from(payload),
        ),
      );
    assert.equal(d.push(packet([0x7c, 0x85, 1])).error, undefined);
    assert.match(d.push(packet([0x65, 1])).error!.message, /no end fragment/);
    const d2 = new H264Depacketizer();
    seq = 0;
    d2.push(packet([0x7c, 0x85, 1]));
    assert.match(d2.push(packet([0x7c, 0x85, 1])).error!.message, /FU-A start while/);
    const d3 = new H264Depacketizer();
    seq = 0;
    d3.push(packet([0x7c, 0x85, 1]));
    assert.match(
      d3.push(packet([0x7c, 0x01, 1])).error!.message,
      /type 1 inside a fragmented NAL unit of type 5/,
    );
    const d4 = new H264Depacketizer();
    seq = 0;
    d4.push(packet([0x7c, 0x85, 1]));
    const open = d4.push(packet([0x7c, 0x05, 2], true));
    assert.equal(open.frame, undefined, 'a unit whose last FU-A has no E bit is dropped');
    assert.equal(open.keyframeNeeded, true);
  });
});

describe('H.264 RTP interoperability with ffmpeg over loopback UDP', () => {
  /** md5 of each decoded picture, the last column of ffmpeg's framemd5 output. */
  const pictureHashes = (framemd5: string) =>
    framemd5
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => l.split(',').at(-1)!.trim());

  it('depacketizes what ffmpeg packetizes (its STAP-A and FU-A) into the same NAL units', async () => {
    await withTempDirAsync(async (dir) => {
      const file = join(dir, 'in.h264');
      const annexB = encodeH264({
        width: 640,
        height: 360,
        frames: 12,
        extra: ['-g', '6', '-bf', '0', '-crf', '12', '-x264-params', 'aud=1'],
      });
      writeFileSync(file, annexB);
      const packets = (await rtpFromFfmpeg(['-f', 'h264', '-i', file, '-c', 'copy'])).map(parseRtpPacket);
      const types = new Set(packets.map((p) => nalType(p.payload)));
      assert.ok(types.has(28), 'ffmpeg fragmented with FU-A');
      assert.ok(types.has(24), 'ffmpeg aggregated with STAP-A');
      const d = new H264Depacketizer();
      const results = packets.map((p) => d.push(p));
      assert.ok(results.every((r) => !r.error));
      const frames = results.filter((r) => r.frame).map((r) => r.frame!);
      assert.equal(frames.length, 12);
      assert.deepEqual(
        frames.map((f) => f.keyframe),
        Array.from({ length: 12 }, (_, i) => i % 6 === 0),
      );
      const withoutAud = (nalus: Uint8Array[]) => nalus.filter((n) => nalType(n) !== 9);
      assert.deepEqual(withoutAud(frames.flatMap((f) => splitAvcc(f.data))), withoutAud(splitAnnexB(annexB)));
    });
  });

  it('packetizes what ffmpeg decodes to the same pictures as the original stream', async () => {
    await withTempDirAsync(async (dir) => {
      const { samples, avcC, units } = encodeGops();
      const file = join(dir, 'orig.h264');
      writeFileSync(
        file,
        concatBytes(units.flatMap((u) => u.flatMap((n) => [Uint8Array.of(0, 0, 0, 1), n]))),
      );
      const expected = pictureHashes(Buffer.from(ffmpeg(['-i', file, '-f', 'framemd5', '-'])).toString());
      assert.equal(expected.length, 12);
      const packetizer = new H264Packetizer(avcC);
      const sender = new Sender();
      // One more frame than is checked: ffmpeg outputs a picture once the next one begins.
      const raw = [...samples, samples[1]].map((s, i) =>
        sender.rawPackets(packetizer.packetize(nalusToAvcc(s), i % 6 === 0), i * 3000),
      );
      const out = await rtpToFfmpeg(
        dir,
        ['m=video PORT RTP/AVP 96', 'a=rtpmap:96 H264/90000', 'a=fmtp:96 packetization-mode=1'],
        raw,
        ['-frames:v', '12', '-f', 'framemd5'],
      );
      assert.deepEqual(pictureHashes(out.toString()), expected);
    });
  });
});
