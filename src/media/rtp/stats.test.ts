import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ntpFromUnixMs,
  ntpMiddle32,
  parseRtcp,
  roundTripMs,
  writeReceiverReport,
  writeSenderReport,
} from './rtcp.ts';
import { RtpReceiveStatistics, RtpSendStatistics } from './stats.ts';

const T0 = Date.UTC(2026, 11, 1, 21, 0, 0);

describe('RtpReceiveStatistics (RFC 3550 §A.3, §A.8)', () => {
  it('reports no jitter for a constant delay and converges to the arrival spread for an alternating one', () => {
    const steady = new RtpReceiveStatistics(1, 90000);
    const swinging = new RtpReceiveStatistics(2, 90000);
    for (let i = 0; i < 300; i++) {
      steady.onPacket(i, 0xfffff000 + i * 3000, T0 + 40 + (i * 100) / 3);
      swinging.onPacket(i, i * 3000, T0 + 40 + (i * 100) / 3 + (i % 2 ? 5 : -5));
    }
    assert.equal(steady.jitter, 0, 'the RTP timestamp wrap is not jitter');
    // every transit differs from the previous by 10 ms = 900 ticks
    assert.ok(Math.abs(swinging.jitter - 900) <= 1, `jitter ${swinging.jitter}`);
  });

  it('counts loss per interval and in total, across the sequence number wrap', () => {
    const s = new RtpReceiveStatistics(7, 90000);
    assert.equal(s.reportBlock(T0), undefined);
    // 100 packets from 65486 through the wrap, 10 of them lost
    const lost = new Set([3, 4, 5, 50, 51, 52, 53, 54, 70, 98]);
    for (let i = 0; i < 100; i++) if (!lost.has(i)) s.onPacket((65486 + i) & 0xffff, i * 3000, T0 + i * 33);
    const first = s.reportBlock(T0 + 3300)!;
    assert.equal(first.ssrc, 7);
    assert.equal(first.cumulativeLost, 10);
    assert.equal(first.fractionLost, Math.floor((10 * 256) / 100));
    assert.equal(first.highestSequence, 65536 + ((65486 + 99) & 0xffff), 'one cycle in the high 16 bits');
    assert.equal(s.packetsReceived, 90);
    // next interval: 50 packets, none lost, one duplicate
    for (let i = 100; i < 150; i++) s.onPacket((65486 + i) & 0xffff, i * 3000, T0 + i * 33);
    s.onPacket((65486 + 149) & 0xffff, 149 * 3000, T0 + 149 * 33 + 1);
    const second = s.reportBlock(T0 + 5000)!;
    assert.equal(second.fractionLost, 0);
    assert.equal(second.cumulativeLost, 9, 'a duplicate offsets a loss, as §A.3 counts');
    assert.equal(s.cumulativeLost, 9);
  });

  it('echoes the last sender report with the delay since it arrived, giving the sender its RTT', () => {
    const s = new RtpReceiveStatistics(9, 48000);
    s.onPacket(1, 960, T0);
    assert.equal(s.reportBlock(T0)!.lastSenderReport, 0);
    const srSent = T0 + 1000;
    const sr = ntpFromUnixMs(srSent);
    s.onSenderReport({ ntpSeconds: sr.seconds, ntpFraction: sr.fraction }, srSent + 20);
    const block = s.reportBlock(srSent + 20 + 500)!;
    assert.equal(block.lastSenderReport, ntpMiddle32(sr.seconds, sr.fraction));
    assert.equal(block.delaySinceLastSenderReport, 32768);
    // The block travels back through the wire format and arrives 20 ms later: RTT 40 ms.
    const [rr] = parseRtcp(writeReceiverReport({ ssrc: 1, reports: [block] }));
    assert.equal(rr.type, 'rr');
    const arrival = ntpFromUnixMs(srSent + 20 + 500 + 20);
    const rtt = roundTripMs(
      rr.type === 'rr' ? rr.reports[0] : block,
      ntpMiddle32(arrival.seconds, arrival.fraction),
    );
    assert.ok(rtt !== undefined && Math.abs(rtt - 40) < 0.1, `rtt ${rtt}`);
  });
});

describe('RtpSendStatistics (RFC 3550 §6.4.1)', () => {
  it('maps the report time to the media clock, extrapolating from the last packet', () => {
    const s = new RtpSendStatistics(0xabc, 90000);
    assert.equal(s.senderReport(T0), undefined);
    for (let i = 0; i < 30; i++) s.onPacket(1000, (0xffffff00 + i * 3000) >>> 0, T0 + (i * 100) / 3);
    const sr = s.senderReport(T0 + 1500)!;
    // last packet: ts 0xffffff00 + 87000 at T0 + 966.67 ms; 533.33 ms later is 48000 ticks further
    assert.equal(sr.rtpTimestamp, (0xffffff00 + 87000 + 48000) >>> 0);
    assert.equal(sr.packetCount, 30);
    assert.equal(sr.octetCount, 30000);
    assert.deepEqual(ntpFromUnixMs(T0 + 1500), { seconds: sr.ntpSeconds, fraction: sr.ntpFraction });
    const [parsed] = parseRtcp(writeSenderReport(sr));
    assert.deepEqual(parsed, { type: 'sr', ...sr });
  });
});
