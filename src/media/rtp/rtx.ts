import { MediaParseError } from '../errors.ts';
import { parseRtpPacket, type RtpPacket, rewriteRtpHeader } from './packet.ts';

/*
 * RTP retransmission, RFC 4588, in SSRC-multiplexing mode (§4, what browsers negotiate as `rtx` with `apt`):
 * a retransmitted packet travels on its own SSRC and payload type, with its own sequence numbers, and its
 * payload starts with the original sequence number (OSN, §4). Timestamp, marker and header extensions are the
 * original's.
 *
 * `writeRtx(original, …)` wraps a stored packet for a NACK answer; `unwrapRtx(rtx, …)` turns a received RTX
 * packet back into the original for the depacketizer.
 */

/**
 * The RTX packet for `original` (a whole RTP packet as sent): its header with `payloadType`, `sequenceNumber`
 * and `ssrc` of the RTX stream, the OSN, then the original payload. Padding is dropped. Throws MediaParseError
 * when `original` is not an RTP packet.
 */
export function writeRtx(
  original: Uint8Array,
  payloadType: number,
  sequenceNumber: number,
  ssrc: number,
): Uint8Array {
  const packet = parseRtpPacket(original);
  const out = new Uint8Array(packet.headerSize + 2 + packet.payload.length);
  out.set(original.subarray(0, packet.headerSize));
  out[0] &= ~0x20; // P: the original's padding is not carried
  out[packet.headerSize] = packet.sequenceNumber >>> 8;
  out[packet.headerSize + 1] = packet.sequenceNumber & 0xff;
  out.set(packet.payload, packet.headerSize + 2);
  rewriteRtpHeader(out, payloadType, sequenceNumber, packet.timestamp, ssrc);
  return out;
}

/**
 * The original packet carried by a parsed RTX packet, as a parsed packet of the original stream (`payloadType`
 * and `ssrc` being that stream's). A payload of only padding (§4: RTX keepalive / probing) is returned as
 * undefined; a payload of one byte throws MediaParseError.
 */
export function unwrapRtx(rtx: RtpPacket, payloadType: number, ssrc: number): RtpPacket | undefined {
  if (rtx.payload.length === 0) return undefined;
  if (rtx.payload.length < 2)
    throw new MediaParseError(
      'RTX packet: payload of 1 byte, the original sequence number needs 2',
      rtx.headerSize,
    );
  return {
    ...rtx,
    payloadType,
    ssrc,
    sequenceNumber: (rtx.payload[0] << 8) | rtx.payload[1],
    headerSize: rtx.headerSize + 2,
    payload: rtx.payload.subarray(2),
  };
}
