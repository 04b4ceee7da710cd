import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MediaParseError } from '../errors.ts';
import { parseRtpPacket } from './packet.ts';
import {
  ntpFromUnixMs,
  ntpMiddle32,
  ntpToUnixMs,
  parseRtcp,
  type RtcpReportBlock,
  roundTripMs,
  writeDlrr,
  writeFir,
  writeNack,
  writePli,
  writeReceiverReport,
  writeRemb,
  writeSdesCname,
  writeSenderReport,
} from './rtcp.ts';
import { rtpAndRtcpFromFfmpeg } from './testing.ts';

const hex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const concat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));

const block: RtcpReportBlock = {
  ssrc: 0x11223344,
  fractionLost: 25,
  cumulativeLost: -3,
  highestSequence: 0x0001fffe,
  jitter: 120,
  lastSenderReport: 0xaabbccdd,
  delaySinceLastSenderReport: 65536,
};

describe('parseRtcp', () => {
  it('reads a compound RR + SDES + REMB as a browser sends it', () => {
    const compound = hex(
      // RR, 1 block: SSRC 1; block for 0x11223344, 25/256 lost, cumulative -3, ext seq 0x1fffe, jitter 120
      '81c90007 00000001 11223344 19fffffd 0001fffe 00000078 aabbccdd 00010000' +
        // SDES, 1 chunk: SSRC 1, CNAME "ab", end, padding
        '81ca0002 00000001 01026162' +
        // PSFB FMT 15 REMB: sender 1, media 0, "REMB", 1 SSRC, exp 3, mantissa 0x30d40 (200000) -> 1.6 Mbit/s
        '8fce0005 00000001 00000000 52454d42 010f0d40 11223344',
    );
    const [rr, sdes, remb] = parseRtcp(compound);
    assert.deepEqual(rr, { type: 'rr', ssrc: 1, reports: [block] });
    assert.deepEqual(sdes, { type: 'sdes' });
    assert.deepEqual(remb, { type: 'remb', senderSsrc: 1, bitrate: 0x30d40 * 8, ssrcs: [0x11223344] });
  });

  it('reads SR, BYE with a reason, NACK, PLI, FIR, transport-wide feedback and unknown types', () => {
    const records = parseRtcp(
      concat(
        hex('80c80006 00000009 e8a4b1c2 80000000 00015f90 0000012c 0001d4c0'),
        hex('81cb0003 00000009 07676f6f 64627965'),
        // NACK: PID 65535 with BLP bits 0 and 2 -> 65535, 0, 2; PID 100 alone
        hex('81cd0004 00000001 00000009 ffff0005 00640000'),
        hex('81ce0002 00000001 00000009'),
        hex('84ce0004 00000001 00000000 00000009 07000000'),
        hex('8fcd0003 00000001 00000009 00010002'),
        hex('80cc0002 00000001 6e616d65'),
      ),
    );
    assert.deepEqual(records, [
      {
        type: 'sr',
        ssrc: 9,
        ntpSeconds: 0xe8a4b1c2,
        ntpFraction: 0x80000000,
        rtpTimestamp: 90000,
        packetCount: 300,
        octetCount: 120000,
        reports: [],
      },
      { type: 'bye', ssrcs: [9], reason: 'goodbye' },
      { type: 'nack', senderSsrc: 1, mediaSsrc: 9, lost: [65535, 0, 2, 100] },
      { type: 'pli', senderSsrc: 1, mediaSsrc: 9 },
      { type: 'fir', senderSsrc: 1, entries: [{ ssrc: 9, sequenceNumber: 7 }] },
      { type: 'twcc', senderSsrc: 1, mediaSsrc: 9 },
      { type: 'other', packetType: 204, format: 0 },
    ]);
  });

  it('honours padding and rejects malformed packets naming the offset', () => {
    // PLI with 4 bytes of padding (P bit, count in the last octet)
    assert.deepEqual(parseRtcp(hex('a1ce0003 00000001 00000002 00000004')), [
      { type: 'pli', senderSsrc: 1, mediaSsrc: 2 },
    ]);
    const pli = hex('81ce0002 00000001 00000009');
    const cases: [Uint8Array, RegExp, number][] = [
      [new Uint8Array(0), /empty packet/, 0],
      [hex('81ce'), /a packet header needs 4/, 0],
      [hex('41ce0002 00000001 00000009'), /version 1, expected 2/, 0],
      [concat(pli, hex('c1ce0002')), /version 3/, 12],
      [hex('81ce0005 00000001 00000009'), /of 24 bytes runs past the end, 12 bytes left/, 2],
      [concat(pli, hex('81c90007 00000001')), /of 32 bytes runs past the end, 8 bytes left/, 14],
      [
        hex('81c80006 00000009 e8a4b1c2 80000000 00015f90 0000012c 0001d4c0'),
        /sender report with 1 report/,
        0,
      ],
      [hex('82c90001 00000001'), /receiver report with 2 report blocks/, 0],
      [hex('81ce0000'), /payload-specific feedback needs 8 bytes/, 0],
      [hex('a1ce0002 00000001 000000ff'), /padding count 255/, 11],
      [hex('a1ce0002 00000001 00000000'), /padding count 0/, 11],
      [hex('8fce0004 00000001 00000000 52454d42 020f0d40'), /REMB lists 2 SSRCs/, 16],
    ];
    for (const [input, message, offset] of cases) {
      assert.throws(
        () => parseRtcp(input),
        (e: unknown) => e instanceof MediaParseError && message.test(e.message) && e.offset === offset,
        `${Buffer.from(input).toString('hex')} -> ${message}`,
      );
    }
  });

  it('reads the sender report ffmpeg sends beside its RTP, mapping its RTP clock to wall time', async () => {
    const before = Date.now();
    const { rtp, rtcp } = await rtpAndRtcpFromFfmpeg([
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=160x120:rate=30',
      '-frames:v',
      '3',
      '-c:v',
      'libx264',
    ]);
    const after = Date.now();
    assert.ok(rtcp.length >= 1, 'ffmpeg sent an RTCP packet');
    const first = parseRtpPacket(rtp[0]);
    const records = parseRtcp(rtcp[0]);
    const sr = records.find((r) => r.type === 'sr');
    assert.ok(sr, `records: ${JSON.stringify(records)}`);
    assert.equal(sr.ssrc, first.ssrc);
    // ffmpeg maps its RTP clock at the SR's send time, before the first frame's timestamp (encoder delay).
    const ahead = (first.timestamp - sr.rtpTimestamp) | 0;
    assert.ok(ahead >= 0 && ahead < 90000, `first packet ${ahead} ticks after the SR's RTP time`);
    const wall = ntpToUnixMs(sr.ntpSeconds, sr.ntpFraction);
    assert.ok(
      wall >= before - 1000 && wall <= after + 1000,
      `SR wall time ${wall} within [${before}, ${after}]`,
    );
  });
});

describe('RTCP extended reports (RFC 3611)', () => {
  it('reads the receiver reference time Chromium sends as a receive-only peer (captured bytes)', () => {
    // An XR from a WHEP viewer in headless Chromium (rtcp-fb rrtr negotiated): sender SSRC 1, one RRTR block.
    const [rrtr] = parseRtcp(hex('80cf0004 00000001 04000002 eeb9d9d2 da5a1448'));
    assert.deepEqual(rrtr, {
      type: 'rrtr',
      senderSsrc: 1,
      ntpSeconds: 0xeeb9d9d2,
      ntpFraction: 0xda5a1448,
    });
  });

  it('writes a DLRR block echoing it, the layout §4.5 gives', () => {
    const dlrr = writeDlrr(0x01020304, 1, ntpMiddle32(0xeeb9d9d2, 0xda5a1448), 0x8000);
    assert.equal(
      Buffer.from(dlrr).toString('hex'),
      '80cf0005' + '01020304' + '05000003' + '00000001' + 'd9d2da5a' + '00008000',
    );
    // Other XR blocks (here a DLRR) are passed over as records we do not act on.
    assert.deepEqual(parseRtcp(dlrr), [{ type: 'other', packetType: 207, format: 0 }]);
  });

  it('rejects an XR too short for its sender SSRC', () => {
    assert.throws(() => parseRtcp(hex('80cf0000')), MediaParseError);
  });
});

describe('RTCP writers', () => {
  it('write what parseRtcp reads back, as one compound packet', () => {
    const compound = concat(
      writeSenderReport({
        ssrc: 5,
        ntpSeconds: 0xe8000000,
        ntpFraction: 0x40000000,
        rtpTimestamp: 0xfffffff0,
        packetCount: 1000,
        octetCount: 1_000_000,
        reports: [block],
      }),
      writeSdesCname(5, 'subsecond'),
      writeReceiverReport({ ssrc: 6, reports: [] }),
      writePli(6, 5),
      writeFir(6, [
        { ssrc: 5, sequenceNumber: 256 + 3 },
        { ssrc: 7, sequenceNumber: 4 },
      ]),
      writeNack(6, 5, [65534, 65535, 0, 15, 16, 40]),
      writeRemb(6, 2_500_001, [5, 7]),
    );
    assert.equal(compound.length % 4, 0);
    const records = parseRtcp(compound);
    assert.deepEqual(records, [
      {
        type: 'sr',
        ssrc: 5,
        ntpSeconds: 0xe8000000,
        ntpFraction: 0x40000000,
        rtpTimestamp: 0xfffffff0,
        packetCount: 1000,
        octetCount: 1_000_000,
        reports: [block],
      },
      { type: 'sdes' },
      { type: 'rr', ssrc: 6, reports: [] },
      { type: 'pli', senderSsrc: 6, mediaSsrc: 5 },
      {
        type: 'fir',
        senderSsrc: 6,
        entries: [
          { ssrc: 5, sequenceNumber: 3 },
          { ssrc: 7, sequenceNumber: 4 },
        ],
      },
      { type: 'nack', senderSsrc: 6, mediaSsrc: 5, lost: [65534, 65535, 0, 15, 16, 40] },
      // 2 500 001 bit/s does not fit 18 bits of mantissa: it is rounded down to a multiple of 2^exponent
      { type: 'remb', senderSsrc: 6, bitrate: 2_500_001 - (2_500_001 % 16), ssrcs: [5, 7] },
    ]);
  });

  it('packs NACKed sequence numbers into the fewest PID+BLP pairs', () => {
    const nack = writeNack(1, 2, [10, 11, 26, 27]);
    assert.equal(nack.length, 12 + 8, '10..26 share one pair, 27 starts another');
    assert.deepEqual(parseRtcp(nack)[0], {
      type: 'nack',
      senderSsrc: 1,
      mediaSsrc: 2,
      lost: [10, 11, 26, 27],
    });
    assert.throws(() => writeReceiverReport({ ssrc: 1, reports: new Array(32).fill(block) }), RangeError);
    assert.throws(() => writeSdesCname(1, ''), RangeError);
    assert.throws(() => writeNack(1, 2, []), RangeError);
    assert.throws(() => writeRemb(1, -1, []), RangeError);
  });

  it('writes an SDES chunk ending in a null item, padded to 32 bits', () => {
    for (const cname of ['a', 'ab', 'abc', 'abcd', 'abcde']) {
      const sdes = writeSdesCname(0x01020304, cname);
      assert.equal(sdes.length % 4, 0);
      assert.equal(sdes[9], cname.length);
      assert.equal(Buffer.from(sdes.subarray(10, 10 + cname.length)).toString(), cname);
      assert.ok(sdes.length >= 10 + cname.length + 1, 'room for the terminating null');
      assert.ok(sdes.subarray(10 + cname.length).every((b) => b === 0));
    }
  });
});

describe('NTP time', () => {
  it('converts wall time to NTP and back, and computes RTT from LSR and DLSR', () => {
    const ms = Date.UTC(2026, 11, 1, 21, 0, 0, 250);
    const ntp = ntpFromUnixMs(ms);
    assert.equal(ntp.seconds, Math.floor(ms / 1000) + 2208988800);
    assert.equal(ntp.fraction, 0x40000000);
    assert.ok(Math.abs(ntpToUnixMs(ntp.seconds, ntp.fraction) - ms) < 0.001);
    const lsr = ntpMiddle32(ntp.seconds, ntp.fraction);
    assert.equal(lsr & 0xffff, 0x4000);
    // The SR left at `ms`, the receiver held it 0.5 s, its report arrives 0.6 s after the SR left: RTT 100 ms.
    const arrival = ntpFromUnixMs(ms + 600);
    const rtt = roundTripMs(
      { ...block, lastSenderReport: lsr, delaySinceLastSenderReport: 0x8000 },
      ntpMiddle32(arrival.seconds, arrival.fraction),
    );
    assert.ok(rtt !== undefined && Math.abs(rtt - 100) < 0.1, `rtt ${rtt}`);
    assert.equal(roundTripMs({ ...block, lastSenderReport: 0 }, 123), undefined);
  });
});
