import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MediaParseError } from '../errors.ts';
import { parseRtpPacket, writeRtpPacket } from './packet.ts';
import { unwrapRtx, writeRtx } from './rtx.ts';

describe('RTX (RFC 4588)', () => {
  const original = writeRtpPacket(
    {
      marker: true,
      payloadType: 96,
      sequenceNumber: 0xfedc,
      timestamp: 123456789,
      ssrc: 0x1111,
      extensions: [{ id: 3, data: Uint8Array.of(1, 2, 3) }],
      padding: 8,
    },
    Uint8Array.of(0x65, 9, 8, 7),
  );

  it('wraps a stored packet with the RTX SSRC, payload type and sequence number, and the OSN first', () => {
    const rtx = parseRtpPacket(writeRtx(original, 97, 5, 0x2222));
    assert.equal(rtx.payloadType, 97);
    assert.equal(rtx.sequenceNumber, 5);
    assert.equal(rtx.ssrc, 0x2222);
    assert.equal(rtx.timestamp, 123456789);
    assert.equal(rtx.marker, true);
    assert.equal(rtx.paddingSize, 0, 'padding is not retransmitted');
    assert.deepEqual(rtx.extensions[0].data, Uint8Array.of(1, 2, 3));
    assert.deepEqual(rtx.payload, Uint8Array.of(0xfe, 0xdc, 0x65, 9, 8, 7));
  });

  it('unwraps an RTX packet into the original packet of the media stream', () => {
    const back = unwrapRtx(parseRtpPacket(writeRtx(original, 97, 5, 0x2222)), 96, 0x1111)!;
    const expected = parseRtpPacket(original);
    assert.equal(back.sequenceNumber, expected.sequenceNumber);
    assert.equal(back.payloadType, 96);
    assert.equal(back.ssrc, 0x1111);
    assert.equal(back.timestamp, expected.timestamp);
    assert.equal(back.marker, true);
    assert.deepEqual(back.payload, expected.payload);
    assert.deepEqual(back.extensions, expected.extensions);
  });

  it('treats a padding-only RTX packet as no packet and rejects a one-byte payload', () => {
    const probe = parseRtpPacket(
      writeRtpPacket(
        { payloadType: 97, sequenceNumber: 1, timestamp: 0, ssrc: 2, padding: 200 },
        new Uint8Array(0),
      ),
    );
    assert.equal(unwrapRtx(probe, 96, 1), undefined);
    const short = parseRtpPacket(
      writeRtpPacket({ payloadType: 97, sequenceNumber: 1, timestamp: 0, ssrc: 2 }, Uint8Array.of(1)),
    );
    assert.throws(() => unwrapRtx(short, 96, 1), MediaParseError);
    assert.throws(() => writeRtx(Uint8Array.of(0x80, 0x60), 97, 1, 2), MediaParseError);
  });
});
