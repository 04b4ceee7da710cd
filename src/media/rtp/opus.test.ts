import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MediaParseError } from '../errors.ts';
import { OpusDepacketizer, OpusPacketizer, opusPacketDuration } from './opus.ts';
import { parseRtpPacket, writeRtpPacket } from './packet.ts';
import { rtpFromFfmpeg } from './testing.ts';

describe('Opus RTP (RFC 7587)', () => {
  for (const ms of [2.5, 10, 20, 60]) {
    it(`reads ${ms} ms libopus packets from ffmpeg with the duration their RTP timestamps advance by`, async () => {
      const packets = (
        await rtpFromFfmpeg([
          '-f',
          'lavfi',
          '-i',
          'sine=frequency=440:sample_rate=48000:duration=0.5',
          '-ac',
          '2',
          '-c:a',
          'libopus',
          '-b:a',
          '96k',
          '-frame_duration',
          String(ms),
        ])
      ).map(parseRtpPacket);
      assert.ok(packets.length >= 500 / ms - 2, `${packets.length} packets`);
      const d = new OpusDepacketizer();
      const frames = packets.map((p) => d.push(p));
      for (let i = 0; i < frames.length; i++) {
        const r = frames[i];
        assert.equal(r.error, undefined);
        assert.equal(r.frame!.keyframe, true);
        assert.equal(r.frame!.duration, ms * 48);
        assert.equal(r.frame!.data, packets[i].payload, 'the frame is a view of the payload');
        if (i > 0) assert.equal(r.frame!.timestamp - frames[i - 1].frame!.timestamp, ms * 48);
      }
    });
  }

  it('computes durations for every TOC code and rejects what RFC 6716 §3.4 forbids', () => {
    assert.equal(opusPacketDuration(Uint8Array.of(0x00)), 480); // SILK NB 10 ms, code 0
    assert.equal(opusPacketDuration(Uint8Array.of(0x19)), 2 * 2880); // SILK MB 60 ms, code 1: 120 ms
    assert.equal(opusPacketDuration(Uint8Array.of(0x7a, 0, 0)), 2 * 960); // Hybrid FB 20 ms, code 2
    assert.equal(opusPacketDuration(Uint8Array.of(0x83, 0x30)), 48 * 120); // CELT 2.5 ms x48 frames
    assert.equal(opusPacketDuration(Uint8Array.of(0xfb, 0x03)), 3 * 960); // CELT FB 20 ms, code 3, 3 frames
    assert.throws(() => opusPacketDuration(new Uint8Array(0)), /empty/);
    assert.throws(() => opusPacketDuration(Uint8Array.of(0xfb)), /frame count byte/);
    assert.throws(() => opusPacketDuration(Uint8Array.of(0xfb, 0x00)), /frame count of 0/);
    assert.throws(() => opusPacketDuration(Uint8Array.of(0xfb, 0x07)), /140 ms, more than the 120 ms/);
    const d = new OpusDepacketizer();
    const empty = parseRtpPacket(
      writeRtpPacket({ payloadType: 111, sequenceNumber: 1, timestamp: 0, ssrc: 1 }, new Uint8Array(0)),
    );
    const r = d.push(empty);
    assert.ok(r.error instanceof MediaParseError);
    assert.equal(r.error.offset, 12);
    assert.equal(r.frame, undefined);
  });

  it('packetizes a frame as its own payload', () => {
    const frame = Uint8Array.of(0xfc, 1, 2, 3);
    const out = new OpusPacketizer().packetize(frame);
    assert.equal(out.payloads.length, 1);
    assert.equal(out.payloads[0], frame);
    assert.equal(out.markerIndex, -1);
  });
});
