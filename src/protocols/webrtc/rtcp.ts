/*
 * The RTCP this server sends and the feedback it acts on: receiver reports (RFC 3550 §6.4.2) and REMB
 * (draft-alvestrand-rmcat-remb) to a WHIP publisher, PLI (RFC 4585 §6.3.1) both ways, sender reports
 * (RFC 3550 §6.4.1) to WHEP viewers, and the viewers' PLI, FIR (RFC 5104 §4.3.1) and generic NACK
 * (RFC 4585 §6.2.1).
 */

const PT_SR = 200;
const PT_RR = 201;
const PT_RTPFB = 205;
const PT_PSFB = 206;

/** Seconds between 1900 (NTP epoch) and 1970 (Unix epoch). */
const NTP_UNIX_OFFSET = 2_208_988_800;

export function writePli(senderSsrc: number, mediaSsrc: number): Buffer {
  const b = Buffer.allocUnsafe(12);
  b[0] = 0x80 | 1;
  b[1] = PT_PSFB;
  b.writeUInt16BE(2, 2);
  b.writeUInt32BE(senderSsrc >>> 0, 4);
  b.writeUInt32BE(mediaSsrc >>> 0, 8);
  return b;
}

export interface ReportBlock {
  ssrc: number;
  /** Fraction lost since the last report, 0..255 (loss × 256). */
  fractionLost: number;
  cumulativeLost: number;
  extendedHighestSequence: number;
  jitter: number;
  /** Middle 32 bits of the NTP time of the last SR from this source, 0 if none. */
  lastSr: number;
  /** Delay since that SR in 1/65536 s. */
  delaySinceLastSr: number;
}

export function writeReceiverReport(senderSsrc: number, blocks: readonly ReportBlock[]): Buffer {
  const b = Buffer.alloc(8 + 24 * blocks.length);
  b[0] = 0x80 | blocks.length;
  b[1] = PT_RR;
  b.writeUInt16BE(b.length / 4 - 1, 2);
  b.writeUInt32BE(senderSsrc >>> 0, 4);
  let p = 8;
  for (const block of blocks) {
    b.writeUInt32BE(block.ssrc >>> 0, p);
    b[p + 4] = Math.max(0, Math.min(255, block.fractionLost));
    const lost = Math.max(-0x800000, Math.min(0x7fffff, block.cumulativeLost)) & 0xffffff;
    b[p + 5] = lost >> 16;
    b.writeUInt16BE(lost & 0xffff, p + 6);
    b.writeUInt32BE(block.extendedHighestSequence >>> 0, p + 8);
    b.writeUInt32BE(block.jitter >>> 0, p + 12);
    b.writeUInt32BE(block.lastSr >>> 0, p + 16);
    b.writeUInt32BE(block.delaySinceLastSr >>> 0, p + 20);
    p += 24;
  }
  return b;
}

/** draft-alvestrand-rmcat-remb §2.2: the bitrate this receiver accepts for `ssrcs`. */
export function writeRemb(senderSsrc: number, bitsPerSecond: number, ssrcs: readonly number[]): Buffer {
  const b = Buffer.alloc(20 + 4 * ssrcs.length);
  b[0] = 0x80 | 15;
  b[1] = PT_PSFB;
  b.writeUInt16BE(b.length / 4 - 1, 2);
  b.writeUInt32BE(senderSsrc >>> 0, 4);
  b.writeUInt32BE(0, 8);
  b.write('REMB', 12, 'latin1');
  let exponent = 0;
  let mantissa = Math.max(0, Math.floor(bitsPerSecond));
  while (mantissa > 0x3ffff) {
    mantissa = Math.floor(mantissa / 2);
    exponent++;
  }
  b[16] = ssrcs.length;
  b[17] = (exponent << 2) | (mantissa >> 16);
  b.writeUInt16BE(mantissa & 0xffff, 18);
  for (let i = 0; i < ssrcs.length; i++) b.writeUInt32BE(ssrcs[i] >>> 0, 20 + 4 * i);
  return b;
}

/** NTP timestamp (RFC 3550 §4) of a Unix time in milliseconds, as two 32-bit halves. */
export function ntpTime(unixMs: number): { seconds: number; fraction: number } {
  const seconds = Math.floor(unixMs / 1000);
  const fraction = Math.floor(((unixMs - seconds * 1000) / 1000) * 0x1_0000_0000);
  return { seconds: (seconds + NTP_UNIX_OFFSET) >>> 0, fraction: fraction >>> 0 };
}

/** Unix milliseconds of an NTP timestamp (the inverse of ntpTime). */
export function ntpToUnixMs(seconds: number, fraction: number): number {
  return (seconds - NTP_UNIX_OFFSET) * 1000 + (fraction / 0x1_0000_0000) * 1000;
}

/** An SR without report blocks: the NTP↔RTP mapping and the sender's counts (RFC 3550 §6.4.1). */
export function writeSenderReport(
  ssrc: number,
  unixMs: number,
  rtpTimestamp: number,
  packets: number,
  octets: number,
): Buffer {
  const b = Buffer.allocUnsafe(28);
  b[0] = 0x80;
  b[1] = PT_SR;
  b.writeUInt16BE(6, 2);
  b.writeUInt32BE(ssrc >>> 0, 4);
  const ntp = ntpTime(unixMs);
  b.writeUInt32BE(ntp.seconds, 8);
  b.writeUInt32BE(ntp.fraction, 12);
  b.writeUInt32BE(rtpTimestamp >>> 0, 16);
  b.writeUInt32BE(packets >>> 0, 20);
  b.writeUInt32BE(octets >>> 0, 24);
  return b;
}

export type Feedback =
  | { type: 'sr'; ssrc: number; ntpSeconds: number; ntpFraction: number; rtpTimestamp: number }
  | { type: 'pli'; mediaSsrc: number }
  | { type: 'fir'; mediaSsrcs: number[] }
  | { type: 'nack'; mediaSsrc: number; sequences: number[] }
  | { type: 'remb'; bitsPerSecond: number };

/**
 * Walks a compound RTCP packet and calls `visit` for each part we act on. Malformed input ends the walk at the
 * first bad length (the parts before it were valid); it never reads past the buffer.
 */
export function readFeedback(buf: Uint8Array, visit: (feedback: Feedback) => void): void {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let p = 0;
  while (p + 4 <= buf.length) {
    if (buf[p] >> 6 !== 2) return;
    const count = buf[p] & 0x1f;
    const type = buf[p + 1];
    const size = (view.getUint16(p + 2) + 1) * 4;
    if (p + size > buf.length) return;
    if (type === PT_SR && size >= 28) {
      visit({
        type: 'sr',
        ssrc: view.getUint32(p + 4),
        ntpSeconds: view.getUint32(p + 8),
        ntpFraction: view.getUint32(p + 12),
        rtpTimestamp: view.getUint32(p + 16),
      });
    } else if (type === PT_PSFB && size >= 12) {
      const mediaSsrc = view.getUint32(p + 8);
      if (count === 1) visit({ type: 'pli', mediaSsrc });
      else if (count === 4) {
        const mediaSsrcs: number[] = [];
        for (let q = p + 12; q + 8 <= p + size; q += 8) mediaSsrcs.push(view.getUint32(q));
        visit({ type: 'fir', mediaSsrcs });
      } else if (count === 15 && size >= 20 && buf[p + 12] === 0x52 && buf[p + 15] === 0x42) {
        const exponent = buf[p + 17] >> 2;
        const mantissa = ((buf[p + 17] & 0x03) << 16) | view.getUint16(p + 18);
        visit({ type: 'remb', bitsPerSecond: mantissa * 2 ** exponent });
      }
    } else if (type === PT_RTPFB && count === 1 && size >= 16) {
      const sequences: number[] = [];
      for (let q = p + 12; q + 4 <= p + size; q += 4) {
        const pid = view.getUint16(q);
        const blp = view.getUint16(q + 2);
        sequences.push(pid);
        for (let bit = 0; bit < 16; bit++) if (blp & (1 << bit)) sequences.push((pid + bit + 1) & 0xffff);
      }
      visit({ type: 'nack', mediaSsrc: view.getUint32(p + 8), sequences });
    }
    p += size;
  }
}
