import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nalusToAvcc, splitAnnexB } from '../nalu.ts';
import { encodeH264 } from '../testing/ffmpeg.ts';
import { H264Depacketizer, H264Packetizer } from './h264.ts';
import { parseRtpPacket, type RtpPacket, writeRtpPacket } from './packet.ts';
import { RtpReorderBuffer } from './reorder.ts';

type P = { sequenceNumber: number };
const p = (sequenceNumber: number): P => ({ sequenceNumber });

function buffer(options = {}) {
  const out: number[] = [];
  const b = new RtpReorderBuffer<P>((packet) => out.push(packet.sequenceNumber), options);
  return { b, out };
}

describe('RtpReorderBuffer', () => {
  it('releases in-order packets at once and swapped ones in order', () => {
    const { b, out } = buffer();
    for (const s of [10, 11, 13, 12, 14]) b.push(p(s), 0);
    assert.deepEqual(out, [10, 11, 12, 13, 14]);
    assert.equal(b.waiting, 0);
    assert.equal(b.lost, 0);
    assert.equal(b.late, 0);
  });

  it('waits for a retransmission within maxDelayMs and lists what is missing for a NACK', () => {
    const { b, out } = buffer({ maxDelayMs: 50 });
    b.push(p(1), 0);
    b.push(p(4), 5);
    b.push(p(5), 6);
    assert.deepEqual(b.missing(), [2, 3]);
    b.flush(40);
    assert.deepEqual(out, [1]);
    b.push(p(3), 41);
    assert.deepEqual(b.missing(), [2]);
    b.push(p(2), 45);
    assert.deepEqual(out, [1, 2, 3, 4, 5]);
    assert.deepEqual(b.missing(), []);
    assert.equal(b.lost, 0);
  });

  it('gives a gap up after maxDelayMs, and counts the retransmission that comes later as late', () => {
    const { b, out } = buffer({ maxDelayMs: 50 });
    b.push(p(1), 0);
    b.push(p(3), 10);
    b.flush(59);
    assert.deepEqual(out, [1]);
    b.flush(60);
    assert.deepEqual(out, [1, 3]);
    assert.equal(b.lost, 1);
    b.push(p(2), 70);
    assert.equal(b.late, 1);
    b.push(p(3), 71);
    assert.equal(b.late, 2, 'a duplicate is late too');
    assert.deepEqual(out, [1, 3]);
  });

  it('gives up at once on a gap wider than its capacity, across the sequence wrap', () => {
    const { b, out } = buffer({ capacity: 8, maxDelayMs: 1000 });
    b.push(p(65533), 0);
    b.push(p(65535), 0);
    b.push(p(1), 0);
    assert.deepEqual(out, [65533]);
    assert.deepEqual(b.missing(), [65534, 0]);
    b.push(p(9), 0); // 10 ahead of 65534 with room for 8: 65534..1 are given up
    assert.deepEqual(out, [65533, 65535, 1]);
    assert.equal(b.lost, 2);
    assert.deepEqual(b.missing(), [2, 3, 4, 5, 6, 7, 8]);
    assert.throws(() => new RtpReorderBuffer(() => {}, { capacity: 100 }), RangeError);
  });

  it('follows a sender that restarts its numbering, releasing what it held first', () => {
    const { b, out } = buffer({ maxDelayMs: 1000 });
    b.push(p(5000), 0);
    b.push(p(5002), 0);
    b.push(p(100), 1); // far behind: held back as a possible restart
    assert.deepEqual(out, [5000]);
    b.push(p(101), 2);
    assert.deepEqual(out, [5000, 5002, 100, 101]);
    assert.equal(b.lost, 1, '5001 never came');
    b.push(p(102), 3);
    assert.deepEqual(out.at(-1), 102);
    // a lone stray far behind is only late
    b.push(p(60000), 4);
    b.push(p(103), 5);
    assert.deepEqual(out.slice(-1), [103]);
    assert.equal(b.late, 2);
  });

  it('puts a shuffled real H.264 stream back in order for the depacketizer', () => {
    const annexB = encodeH264({ width: 320, height: 240, frames: 10, extra: ['-crf', '10', '-bf', '0'] });
    const nalus = splitAnnexB(annexB).filter((n) => (n[0] & 0x1f) === 5 || (n[0] & 0x1f) === 1);
    const packetizer = new H264Packetizer(undefined, { maxPayloadSize: 300 });
    let seq = 65000;
    const packets: RtpPacket[] = nalus.flatMap((nal, i) => {
      const { payloads, markerIndex } = packetizer.packetize(nalusToAvcc([nal]));
      return payloads.map((payload, k) =>
        parseRtpPacket(
          writeRtpPacket(
            {
              marker: k === markerIndex,
              payloadType: 96,
              sequenceNumber: seq++ & 0xffff,
              timestamp: i * 3000,
              ssrc: 1,
            },
            payload,
          ),
        ),
      );
    });
    assert.ok(packets.length > 40);
    // swap neighbours in pairs, as a network path with two links would (after the first packet, which sets
    // where the order starts)
    const shuffled = packets.slice();
    for (let i = 1; i + 1 < shuffled.length; i += 3)
      [shuffled[i], shuffled[i + 1]] = [shuffled[i + 1], shuffled[i]];
    const unordered = new H264Depacketizer();
    const direct = shuffled.filter((pk) => unordered.push(pk).frame).length;
    assert.ok(direct < nalus.length, `without reordering only ${direct} of ${nalus.length} frames survive`);
    const d = new H264Depacketizer();
    let frames = 0;
    const reorder = new RtpReorderBuffer<RtpPacket>((pk) => {
      if (d.push(pk).frame) frames++;
    });
    for (let i = 0; i < shuffled.length; i++) reorder.push(shuffled[i], i);
    assert.equal(frames, nalus.length);
    assert.equal(reorder.lost, 0);
  });
});
