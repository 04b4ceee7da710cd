/**
 * Send-time stamps carried inside the H.264 stream, so that a receiver in another process can tell how long
 * each frame took from the source's send call to its own onMessage callback, through any server that
 * forwards RTP payloads unchanged (ours for a WHIP source, Janus's streaming plugin for plain RTP).
 *
 * The stamp is a SEI NAL unit (H.264 §7.3.2.3, type 6) holding one user_data_unregistered message (§D.1.7,
 * payloadType 5): a 16-byte UUID of our own, then the send time as 16 ASCII hex digits of microseconds on
 * `performance.timeOrigin + performance.now()` (one clock for every process on the machine). ASCII keeps
 * the message free of zero bytes, so it needs no emulation prevention (§7.4.1) and decoders accept it.
 * It travels as its own single-NAL-unit RTP packet (RFC 6184 §5.6) ahead of the frame's slices.
 */

const UUID = Buffer.from('5375627365636f6e6442656e63685453', 'hex'); // "SubsecondBenchTS"
const DIGITS = 16;
const PAYLOAD_SIZE = UUID.length + DIGITS;
/** NAL header, payloadType, payloadSize, UUID, digits, rbsp_trailing_bits. */
export const STAMP_SIZE = 1 + 1 + 1 + PAYLOAD_SIZE + 1;
const SEI = 6;

/** Wall-clock milliseconds, comparable between processes on this machine. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** A SEI NAL unit stamped with `atMs`. */
export function stampNal(atMs: number): Buffer {
  const out = Buffer.alloc(STAMP_SIZE);
  out[0] = SEI; // forbidden_zero_bit 0, nal_ref_idc 0, type 6
  out[1] = 5;
  out[2] = PAYLOAD_SIZE;
  UUID.copy(out, 3);
  out.write(
    Math.round(atMs * 1000)
      .toString(16)
      .padStart(DIGITS, '0'),
    3 + UUID.length,
    'latin1',
  );
  out[STAMP_SIZE - 1] = 0x80;
  return out;
}

/**
 * The send time in an RTP payload that is exactly one stamp NAL unit, or -1 for any other payload.
 * `payload` starts after the RTP header (and any CSRCs and extension).
 */
export function readStamp(packet: Uint8Array, payloadOffset: number): number {
  if (packet.length - payloadOffset !== STAMP_SIZE || packet[payloadOffset] !== SEI) return -1;
  const buf = Buffer.from(packet.buffer, packet.byteOffset + payloadOffset, STAMP_SIZE);
  if (buf[1] !== 5 || buf[2] !== PAYLOAD_SIZE || buf.compare(UUID, 0, UUID.length, 3, 3 + UUID.length) !== 0)
    return -1;
  const micros = Number.parseInt(buf.toString('latin1', 3 + UUID.length, 3 + PAYLOAD_SIZE), 16);
  return Number.isFinite(micros) ? micros / 1000 : -1;
}
