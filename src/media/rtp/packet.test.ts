import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MediaParseError } from '../errors.ts';
import {
  copyRtpWithRewrite,
  isRtcpPacket,
  parseRtpPacket,
  RTP_EXTENSION_ONE_BYTE,
  rewriteRtpHeader,
  rtpPacketSize,
  SequenceUnwrapper,
  seqAdd,
  seqDelta,
  seqNewer,
  timestampDelta,
  writeRtpPacket,
} from './packet.ts';

const hex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

describe('parseRtpPacket', () => {
  it('reads the fixed header of a minimal packet', () => {
    // V=2, PT 96, seq 0x1234, ts 0xdeadbeef, SSRC 0x01020304, 3 bytes of payload
    const p = parseRtpPacket(hex('80e01234 deadbeef 01020304 aabbcc'));
    assert.equal(p.marker, true);
    assert.equal(p.payloadType, 96);
    assert.equal(p.sequenceNumber, 0x1234);
    assert.equal(p.timestamp, 0xdeadbeef);
    assert.equal(p.ssrc, 0x01020304);
    assert.deepEqual(p.csrcs, []);
    assert.deepEqual(p.extensions, []);
    assert.equal(p.extensionProfile, undefined);
    assert.equal(p.headerSize, 12);
    assert.equal(p.paddingSize, 0);
    assert.deepEqual(p.payload, hex('aabbcc'));
  });

  it('reads CSRCs, RFC 8285 one-byte elements (with padding bytes between) and RTP padding', () => {
    // P=1 X=1 CC=2; extension 0xBEDE of 3 words: id 1 len 1 [0x11], pad, id 3 len 4 [..], id 2 len 2, pad
    const buf = hex(
      'b2 6f 0001 00000010 cafebabe  00000001 00000002  bede0003 1011 00 33a1a2a3a4 21b1b2 00  ' +
        'c0ffee  000000 04',
    );
    const p = parseRtpPacket(buf);
    assert.equal(p.marker, false);
    assert.equal(p.payloadType, 111);
    assert.deepEqual(p.csrcs, [1, 2]);
    assert.equal(p.extensionProfile, RTP_EXTENSION_ONE_BYTE);
    assert.deepEqual(
      p.extensions.map((e) => [e.id, Buffer.from(e.data).toString('hex')]),
      [
        [1, '11'],
        [3, 'a1a2a3a4'],
        [2, 'b1b2'],
      ],
    );
    assert.equal(p.headerSize, 12 + 8 + 16);
    assert.equal(p.paddingSize, 4);
    assert.deepEqual(p.payload, hex('c0ffee'));
  });

  it('reads two-byte elements, including an empty one, and stops one-byte parsing at ID 15', () => {
    const two = parseRtpPacket(hex('9060 0002 00000000 00000001  1000 0002 0700 0803 010203 00  ff'));
    assert.equal(two.extensionProfile, 0x1000);
    assert.deepEqual(
      two.extensions.map((e) => [e.id, e.data.length]),
      [
        [7, 0],
        [8, 3],
      ],
    );
    assert.deepEqual(two.payload, hex('ff'));
    const stop = parseRtpPacket(hex('9060 0002 00000000 00000001  bede 0001 10aa f0 00  ee'));
    assert.deepEqual(
      stop.extensions.map((e) => e.id),
      [1],
    );
    const other = parseRtpPacket(hex('9060 0002 00000000 00000001  abcd 0001 01020304  ee'));
    assert.equal(other.extensionProfile, 0xabcd);
    assert.deepEqual(other.extensions, []);
    assert.deepEqual(other.payload, hex('ee'));
  });

  it('rejects malformed packets with MediaParseError naming the offset', () => {
    const cases: [string, RegExp][] = [
      ['80600001 00000000', /8 bytes, the fixed header needs 12/],
      ['40600001 00000000 00000000', /version 1, expected 2/],
      ['82600001 00000000 00000000 00000001', /2 CSRCs need 8 bytes but 4 remain/],
      ['90600001 00000000 00000000 bede', /truncated header extension/],
      ['90600001 00000000 00000000 bede0002 10aa0000', /header extension of 8 bytes runs past the end/],
      ['90600001 00000000 00000000 bede0001 13aa0000', /element 1 of 4 bytes runs past/],
      ['90600001 00000000 00000000 10000001 0105aaaa', /element 1 of 5 bytes runs past/],
      ['a0600001 00000000 00000000 aa00', /padding count 0/],
      ['a0600001 00000000 00000000 aa05', /padding count 5 does not fit the 2 bytes/],
    ];
    for (const [input, message] of cases) {
      assert.throws(
        () => parseRtpPacket(hex(input)),
        (e: unknown) => e instanceof MediaParseError && message.test(e.message) && e.offset !== undefined,
        input,
      );
    }
  });
});

describe('writeRtpPacket', () => {
  it('writes what parseRtpPacket reads back, choosing the one- or two-byte extension form', () => {
    const payload = hex('0102030405');
    const oneByte = writeRtpPacket(
      {
        marker: true,
        payloadType: 102,
        sequenceNumber: 65535,
        timestamp: 0xffffffff,
        ssrc: 0x80000001,
        csrcs: [7],
        extensions: [
          { id: 3, data: hex('aabbcc') },
          { id: 14, data: new Uint8Array(16).fill(9) },
        ],
        padding: 3,
      },
      payload,
    );
    const back = parseRtpPacket(oneByte);
    assert.equal(back.extensionProfile, 0xbede);
    assert.equal(back.marker, true);
    assert.equal(back.payloadType, 102);
    assert.equal(back.sequenceNumber, 65535);
    assert.equal(back.timestamp, 0xffffffff);
    assert.equal(back.ssrc, 0x80000001);
    assert.deepEqual(back.csrcs, [7]);
    assert.deepEqual(
      back.extensions.map((e) => [e.id, e.data.length]),
      [
        [3, 3],
        [14, 16],
      ],
    );
    assert.equal(back.paddingSize, 3);
    assert.deepEqual(back.payload, payload);
    assert.equal(back.headerSize % 4, 0, 'extension block is padded to 32 bits');

    const twoByte = writeRtpPacket(
      {
        payloadType: 96,
        sequenceNumber: 1,
        timestamp: 2,
        ssrc: 3,
        extensions: [{ id: 20, data: hex('01') }],
      },
      payload,
    );
    const back2 = parseRtpPacket(twoByte);
    assert.equal(back2.extensionProfile, 0x1000);
    assert.deepEqual(back2.extensions[0].id, 20);
    assert.deepEqual(back2.payload, payload);
  });

  it('writes into a caller buffer and sizes it with rtpPacketSize', () => {
    const header = { payloadType: 96, sequenceNumber: 9, timestamp: 90000, ssrc: 42 };
    const size = rtpPacketSize(header, 100);
    assert.equal(size, 112);
    const buf = new Uint8Array(1500);
    const packet = writeRtpPacket(header, new Uint8Array(100).fill(7), buf);
    assert.equal(packet.buffer, buf.buffer);
    assert.equal(packet.length, 112);
    assert.throws(() => writeRtpPacket(header, new Uint8Array(100), new Uint8Array(50)), RangeError);
    assert.throws(() => writeRtpPacket({ ...header, payloadType: 128 }, new Uint8Array(1)), RangeError);
    assert.throws(
      () => writeRtpPacket({ ...header, extensions: [{ id: 0, data: hex('01') }] }, new Uint8Array(1)),
      RangeError,
    );
  });
});

describe('per-viewer header rewrite', () => {
  const shared = writeRtpPacket(
    {
      marker: true,
      payloadType: 96,
      sequenceNumber: 100,
      timestamp: 3000,
      ssrc: 1111,
      extensions: [{ id: 1, data: hex('55') }],
    },
    hex('65aabb'),
  );

  it('copies into the viewer buffer with new PT/seq/ts/SSRC and leaves the shared packet alone', () => {
    const before = shared.slice();
    const viewerBuffer = new Uint8Array(1500);
    const out = copyRtpWithRewrite(shared, viewerBuffer, 102, 65535, 0xfffffff0, 0xabcdef01);
    assert.deepEqual(shared, before);
    assert.equal(out.length, shared.length);
    const p = parseRtpPacket(out);
    assert.equal(p.payloadType, 102);
    assert.equal(p.marker, true);
    assert.equal(p.sequenceNumber, 65535);
    assert.equal(p.timestamp, 0xfffffff0);
    assert.equal(p.ssrc, 0xabcdef01);
    assert.deepEqual(p.extensions[0].data, hex('55'));
    assert.deepEqual(p.payload, hex('65aabb'));
    assert.deepEqual(out.subarray(12), shared.subarray(12));
    assert.throws(() => copyRtpWithRewrite(shared, new Uint8Array(4), 96, 0, 0, 0), RangeError);
  });

  it('rewrites in place', () => {
    const own = shared.slice();
    rewriteRtpHeader(own, 97, 7, 8, 9);
    const p = parseRtpPacket(own);
    assert.deepEqual([p.payloadType, p.marker, p.sequenceNumber, p.timestamp, p.ssrc], [97, true, 7, 8, 9]);
  });
});

describe('RTP/RTCP demultiplexing (RFC 5761)', () => {
  it('tells RTCP packet types from RTP payload types', () => {
    assert.equal(isRtcpPacket(hex('80c80006')), true); // SR
    assert.equal(isRtcpPacket(hex('81cd0002')), true); // RTPFB
    assert.equal(isRtcpPacket(hex('80e00001')), false); // RTP PT 96 with marker
    assert.equal(isRtcpPacket(hex('806f0001')), false); // RTP PT 111
    assert.equal(isRtcpPacket(hex('80')), false);
  });
});

describe('sequence numbers', () => {
  it('compares across the wrap', () => {
    assert.equal(seqAdd(65535, 1), 0);
    assert.equal(seqDelta(0, 65535), 1);
    assert.equal(seqDelta(65535, 0), -1);
    assert.equal(seqDelta(100, 100), 0);
    assert.equal(seqDelta(32767, 0), 32767);
    assert.equal(seqDelta(32768, 0), -32768);
    assert.equal(seqNewer(2, 65000), true);
    assert.equal(seqNewer(65000, 2), false);
    assert.equal(seqNewer(5, 5), false);
    assert.equal(timestampDelta(5, 0xfffffffb), 10);
    assert.equal(timestampDelta(0xfffffffb, 5), -10);
  });

  it('extends sequence numbers across several wraps, with reordering and late packets', () => {
    const u = new SequenceUnwrapper();
    assert.equal(u.highest, -1);
    assert.equal(u.unwrap(65530), 65530);
    assert.equal(u.unwrap(65535), 65535);
    assert.equal(u.unwrap(2), 65538);
    assert.equal(u.unwrap(65534), 65534, 'a late packet from before the wrap keeps its cycle');
    assert.equal(u.highest, 65538);
    let seq = 2;
    let expected = 65538;
    for (let i = 0; i < 3 * 65536; i += 1000) {
      seq = (seq + 1000) & 0xffff;
      expected += 1000;
      assert.equal(u.unwrap(seq), expected);
    }
    u.reset();
    assert.equal(u.unwrap(7), 7);
  });
});
