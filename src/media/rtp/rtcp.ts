import { readU32, writeU16, writeU32 } from '../bytes.ts';
import { MediaParseError } from '../errors.ts';

/*
 * RTCP, RFC 3550 §6: `parseRtcp(buf)` splits a compound packet into typed records — sender and receiver
 * reports (§6.4) with their report blocks, SDES (§6.5, skipped), BYE (§6.6); RFC 4585 §6.2.1 generic NACK
 * and §6.3.1 PLI; RFC 5104 §4.3.1 FIR; draft-alvestrand-rmcat-remb REMB; transport-wide congestion control
 * feedback (draft-holmer-rmcat-transport-wide-cc-extensions) recognised but not decoded; anything else as
 * `other`. Malformed input throws MediaParseError naming the offset. Writers build SR, RR, SDES CNAME, PLI,
 * FIR, NACK and REMB packets; concatenating them makes a compound packet (§6.1). NTP helpers convert wall
 * time to the 64-bit NTP format of SRs and compute round-trip time from a report block (§6.4.1).
 */

export const RTCP_SR = 200;
export const RTCP_RR = 201;
export const RTCP_SDES = 202;
export const RTCP_BYE = 203;
export const RTCP_APP = 204;
/** RFC 4585 §6.1: transport layer feedback. */
export const RTCP_RTPFB = 205;
/** RFC 4585 §6.1: payload-specific feedback. */
export const RTCP_PSFB = 206;
/** RFC 3611 extended reports. */
export const RTCP_XR = 207;
/** RFC 3611 §4.4 receiver reference time block and §4.5 DLRR block. */
const XR_RRTR = 4;
const XR_DLRR = 5;

/** RFC 3550 §6.4.1 report block. */
export interface RtcpReportBlock {
  ssrc: number;
  /** Fraction of packets lost since the previous report, in 1/256. */
  fractionLost: number;
  /** Cumulative packets lost, signed 24-bit (duplicates can make it negative). */
  cumulativeLost: number;
  /** Extended highest sequence number received: cycles in the high 16 bits. */
  highestSequence: number;
  /** Interarrival jitter in RTP timestamp units. */
  jitter: number;
  /** Middle 32 bits of the NTP timestamp of the last SR received from this source, 0 when none. */
  lastSenderReport: number;
  /** Delay since that SR was received, in 1/65536 s. */
  delaySinceLastSenderReport: number;
}

export interface RtcpSenderReport {
  type: 'sr';
  ssrc: number;
  ntpSeconds: number;
  ntpFraction: number;
  rtpTimestamp: number;
  packetCount: number;
  octetCount: number;
  reports: RtcpReportBlock[];
}

export interface RtcpReceiverReport {
  type: 'rr';
  ssrc: number;
  reports: RtcpReportBlock[];
}

export interface RtcpSourceDescription {
  type: 'sdes';
}

export interface RtcpBye {
  type: 'bye';
  ssrcs: number[];
  reason?: string;
}

/** RFC 4585 §6.2.1: sequence numbers the sender of the feedback is missing. */
export interface RtcpNack {
  type: 'nack';
  senderSsrc: number;
  mediaSsrc: number;
  lost: number[];
}

/** RFC 4585 §6.3.1 Picture Loss Indication. */
export interface RtcpPli {
  type: 'pli';
  senderSsrc: number;
  mediaSsrc: number;
}

/** RFC 5104 §4.3.1 Full Intra Request: one entry per media sender asked for a decoder refresh. */
export interface RtcpFir {
  type: 'fir';
  senderSsrc: number;
  entries: { ssrc: number; sequenceNumber: number }[];
}

/** draft-alvestrand-rmcat-remb: the receiver's estimate of the bitrate it can take, in bit/s. */
export interface RtcpRemb {
  type: 'remb';
  senderSsrc: number;
  bitrate: number;
  ssrcs: number[];
}

/** Transport-wide congestion control feedback (RTPFB FMT 15): recognised, not decoded. */
export interface RtcpTransportFeedback {
  type: 'twcc';
  senderSsrc: number;
  mediaSsrc: number;
}

/**
 * RFC 3611 §4.4: a receiver's NTP clock in an extended report, which a sender echoes in a DLRR block so that a
 * receive-only peer learns its round trip (WebRTC receivers need one to map sender reports onto their clock).
 */
export interface RtcpReceiverReferenceTime {
  type: 'rrtr';
  senderSsrc: number;
  ntpSeconds: number;
  ntpFraction: number;
}

/** APP, other XR blocks and feedback messages we do not act on. */
export interface RtcpOther {
  type: 'other';
  packetType: number;
  /** The 5-bit count / FMT field. */
  format: number;
}

export type RtcpRecord =
  | RtcpSenderReport
  | RtcpReceiverReport
  | RtcpSourceDescription
  | RtcpBye
  | RtcpNack
  | RtcpPli
  | RtcpFir
  | RtcpRemb
  | RtcpTransportFeedback
  | RtcpReceiverReferenceTime
  | RtcpOther;

const REPORT_BLOCK_SIZE = 24;
const REMB_ID = 0x52454d42; // "REMB"

/** Parses a compound RTCP packet (or a single one); throws MediaParseError at the first malformed packet. */
export function parseRtcp(buf: Uint8Array): RtcpRecord[] {
  const records: RtcpRecord[] = [];
  let p = 0;
  if (buf.length === 0) throw new MediaParseError('RTCP: empty packet', 0);
  while (p < buf.length) {
    if (p + 4 > buf.length)
      throw new MediaParseError(`RTCP: ${buf.length - p} bytes left, a packet header needs 4`, p);
    const b0 = buf[p];
    const version = b0 >> 6;
    if (version !== 2) throw new MediaParseError(`RTCP: version ${version}, expected 2`, p);
    const count = b0 & 0x1f;
    const packetType = buf[p + 1];
    const size = 4 * (((buf[p + 2] << 8) | buf[p + 3]) + 1);
    if (p + size > buf.length) {
      throw new MediaParseError(
        `RTCP: packet type ${packetType} of ${size} bytes runs past the end, ${buf.length - p} bytes left`,
        p + 2,
      );
    }
    let end = p + size;
    if (b0 & 0x20) {
      // §6.4.1: padding, counted by the last octet, within the length.
      const padding = buf[end - 1];
      if (padding === 0 || padding > size - 4) {
        throw new MediaParseError(
          `RTCP: padding count ${padding} does not fit packet type ${packetType} of ${size} bytes`,
          end - 1,
        );
      }
      end -= padding;
    }
    records.push(parseOne(buf, p, p + 4, end, packetType, count));
    p += size;
  }
  return records;
}

function parseOne(
  buf: Uint8Array,
  at: number,
  body: number,
  end: number,
  packetType: number,
  count: number,
): RtcpRecord {
  const need = (bytes: number, what: string) => {
    if (body + bytes > end) {
      throw new MediaParseError(
        `RTCP: ${what} needs ${bytes} bytes after the header, packet holds ${end - body}`,
        at,
      );
    }
  };
  switch (packetType) {
    case RTCP_SR: {
      need(24 + REPORT_BLOCK_SIZE * count, `sender report with ${count} report blocks`);
      return {
        type: 'sr',
        ssrc: readU32(buf, body),
        ntpSeconds: readU32(buf, body + 4),
        ntpFraction: readU32(buf, body + 8),
        rtpTimestamp: readU32(buf, body + 12),
        packetCount: readU32(buf, body + 16),
        octetCount: readU32(buf, body + 20),
        reports: readReportBlocks(buf, body + 24, count),
      };
    }
    case RTCP_RR:
      need(4 + REPORT_BLOCK_SIZE * count, `receiver report with ${count} report blocks`);
      return { type: 'rr', ssrc: readU32(buf, body), reports: readReportBlocks(buf, body + 4, count) };
    case RTCP_SDES:
      return { type: 'sdes' };
    case RTCP_BYE: {
      need(4 * count, `BYE of ${count} sources`);
      const ssrcs: number[] = [];
      for (let i = 0; i < count; i++) ssrcs.push(readU32(buf, body + 4 * i));
      const bye: RtcpBye = { type: 'bye', ssrcs };
      const r = body + 4 * count;
      // §6.6: an optional length-prefixed reason; one that overruns the packet is ignored, not fatal.
      if (r < end && r + 1 + buf[r] <= end)
        bye.reason = new TextDecoder().decode(buf.subarray(r + 1, r + 1 + buf[r]));
      return bye;
    }
    case RTCP_XR: {
      need(4, 'extended report');
      const senderSsrc = readU32(buf, body);
      // §3: report blocks of block type, reserved, 16-bit length in words; only RRTR matters here.
      for (let b = body + 4; b + 4 <= end; b += 4 * (((buf[b + 2] << 8) | buf[b + 3]) + 1)) {
        if (buf[b] === XR_RRTR && b + 12 <= end) {
          return {
            type: 'rrtr',
            senderSsrc,
            ntpSeconds: readU32(buf, b + 4),
            ntpFraction: readU32(buf, b + 8),
          };
        }
      }
      return { type: 'other', packetType, format: count };
    }
    case RTCP_RTPFB: {
      need(8, 'transport feedback');
      const senderSsrc = readU32(buf, body);
      const mediaSsrc = readU32(buf, body + 4);
      if (count === 1) {
        // §6.2.1: each FCI is a lost PID and a bitmask of the 16 following lost packets.
        const lost: number[] = [];
        for (let f = body + 8; f + 4 <= end; f += 4) {
          const pid = (buf[f] << 8) | buf[f + 1];
          const blp = (buf[f + 2] << 8) | buf[f + 3];
          lost.push(pid);
          for (let bit = 0; bit < 16; bit++) if (blp & (1 << bit)) lost.push((pid + bit + 1) & 0xffff);
        }
        return { type: 'nack', senderSsrc, mediaSsrc, lost };
      }
      if (count === 15) return { type: 'twcc', senderSsrc, mediaSsrc };
      return { type: 'other', packetType, format: count };
    }
    case RTCP_PSFB: {
      need(8, 'payload-specific feedback');
      const senderSsrc = readU32(buf, body);
      const mediaSsrc = readU32(buf, body + 4);
      if (count === 1) return { type: 'pli', senderSsrc, mediaSsrc };
      if (count === 4) {
        // RFC 5104 §4.3.1.1: FCI entries of SSRC, command sequence number, 24 reserved bits.
        const entries: RtcpFir['entries'] = [];
        for (let f = body + 8; f + 8 <= end; f += 8)
          entries.push({ ssrc: readU32(buf, f), sequenceNumber: buf[f + 4] });
        return { type: 'fir', senderSsrc, entries };
      }
      if (count === 15 && body + 16 <= end && readU32(buf, body + 8) === REMB_ID) {
        const f = body + 12;
        const ssrcCount = buf[f];
        const exponent = buf[f + 1] >> 2;
        const mantissa = ((buf[f + 1] & 0x03) << 16) | (buf[f + 2] << 8) | buf[f + 3];
        if (f + 4 + 4 * ssrcCount > end)
          throw new MediaParseError(`RTCP: REMB lists ${ssrcCount} SSRCs that run past the packet end`, f);
        const ssrcs: number[] = [];
        for (let i = 0; i < ssrcCount; i++) ssrcs.push(readU32(buf, f + 4 + 4 * i));
        return { type: 'remb', senderSsrc, bitrate: mantissa * 2 ** exponent, ssrcs };
      }
      return { type: 'other', packetType, format: count };
    }
    default:
      return { type: 'other', packetType, format: count };
  }
}

function readReportBlocks(buf: Uint8Array, p: number, count: number): RtcpReportBlock[] {
  const blocks: RtcpReportBlock[] = [];
  for (let i = 0; i < count; i++, p += REPORT_BLOCK_SIZE) {
    const lost = (buf[p + 5] << 16) | (buf[p + 6] << 8) | buf[p + 7];
    blocks.push({
      ssrc: readU32(buf, p),
      fractionLost: buf[p + 4],
      cumulativeLost: lost & 0x800000 ? lost - 0x1000000 : lost,
      highestSequence: readU32(buf, p + 8),
      jitter: readU32(buf, p + 12),
      lastSenderReport: readU32(buf, p + 16),
      delaySinceLastSenderReport: readU32(buf, p + 20),
    });
  }
  return blocks;
}

function header(out: Uint8Array, count: number, packetType: number): void {
  out[0] = 0x80 | count;
  out[1] = packetType;
  writeU16(out, 2, out.length / 4 - 1);
}

function writeReportBlocks(out: Uint8Array, p: number, reports: readonly RtcpReportBlock[]): void {
  for (const r of reports) {
    writeU32(out, p, r.ssrc);
    const lost = Math.max(-0x800000, Math.min(0x7fffff, r.cumulativeLost)) & 0xffffff;
    writeU32(out, p + 4, ((r.fractionLost & 0xff) << 24) | lost);
    writeU32(out, p + 8, r.highestSequence);
    writeU32(out, p + 12, r.jitter);
    writeU32(out, p + 16, r.lastSenderReport);
    writeU32(out, p + 20, r.delaySinceLastSenderReport);
    p += REPORT_BLOCK_SIZE;
  }
}

function checkReportCount(reports: readonly RtcpReportBlock[]): void {
  if (reports.length > 31)
    throw new RangeError(`an RTCP report holds at most 31 blocks, got ${reports.length}`);
}

/** §6.4.1 sender report. */
export function writeSenderReport(sr: Omit<RtcpSenderReport, 'type'>): Uint8Array {
  checkReportCount(sr.reports);
  const out = new Uint8Array(28 + REPORT_BLOCK_SIZE * sr.reports.length);
  header(out, sr.reports.length, RTCP_SR);
  writeU32(out, 4, sr.ssrc);
  writeU32(out, 8, sr.ntpSeconds);
  writeU32(out, 12, sr.ntpFraction);
  writeU32(out, 16, sr.rtpTimestamp);
  writeU32(out, 20, sr.packetCount);
  writeU32(out, 24, sr.octetCount);
  writeReportBlocks(out, 28, sr.reports);
  return out;
}

/** §6.4.2 receiver report (with no blocks it is the empty RR that heads a compound packet of feedback). */
export function writeReceiverReport(rr: Omit<RtcpReceiverReport, 'type'>): Uint8Array {
  checkReportCount(rr.reports);
  const out = new Uint8Array(8 + REPORT_BLOCK_SIZE * rr.reports.length);
  header(out, rr.reports.length, RTCP_RR);
  writeU32(out, 4, rr.ssrc);
  writeReportBlocks(out, 8, rr.reports);
  return out;
}

/** §6.5: an SDES packet with one chunk holding the CNAME item (§6.5.1) that every compound packet carries. */
export function writeSdesCname(ssrc: number, cname: string): Uint8Array {
  const text = new TextEncoder().encode(cname);
  if (text.length === 0 || text.length > 255)
    throw new RangeError(`CNAME must be 1..255 bytes, got ${text.length}`);
  // SSRC, type 1, length, text, then at least one null octet ending the item list, padded to 32 bits.
  const chunk = 4 + 2 + text.length;
  const out = new Uint8Array(4 + 4 * Math.ceil((chunk + 1) / 4));
  header(out, 1, RTCP_SDES);
  writeU32(out, 4, ssrc);
  out[8] = 1;
  out[9] = text.length;
  out.set(text, 10);
  return out;
}

/** RFC 4585 §6.3.1 PLI: `mediaSsrc` is the sender asked for a keyframe. */
export function writePli(senderSsrc: number, mediaSsrc: number): Uint8Array {
  const out = new Uint8Array(12);
  header(out, 1, RTCP_PSFB);
  writeU32(out, 4, senderSsrc);
  writeU32(out, 8, mediaSsrc);
  return out;
}

/**
 * RFC 5104 §4.3.1 FIR. The command sequence number of each entry must grow by one per new request to that
 * sender (§4.3.1.1), so the caller keeps it.
 */
export function writeFir(
  senderSsrc: number,
  entries: readonly { ssrc: number; sequenceNumber: number }[],
): Uint8Array {
  const out = new Uint8Array(12 + 8 * entries.length);
  header(out, 4, RTCP_PSFB);
  writeU32(out, 4, senderSsrc);
  // §4.3.1.2: the media source SSRC field is unused (0); the entries name the senders.
  let p = 12;
  for (const e of entries) {
    writeU32(out, p, e.ssrc);
    out[p + 4] = e.sequenceNumber & 0xff;
    p += 8;
  }
  return out;
}

/**
 * RFC 4585 §6.2.1 generic NACK for the `lost` sequence numbers, in the order given (ascending, wrap-aware, is
 * what receivers produce); each run of up to 17 packets within one PID+BLP pair shares an FCI.
 */
export function writeNack(senderSsrc: number, mediaSsrc: number, lost: readonly number[]): Uint8Array {
  if (lost.length === 0)
    throw new RangeError('a NACK needs at least one lost sequence number (RFC 4585 §6.2.1)');
  const pairs: number[] = [];
  let pid = -1;
  let blp = 0;
  for (const raw of lost) {
    const seq = raw & 0xffff;
    const offset = pid < 0 ? -1 : (seq - pid - 1) & 0xffff;
    if (offset >= 0 && offset < 16) {
      blp |= 1 << offset;
      continue;
    }
    if (pid >= 0) pairs.push(pid, blp);
    pid = seq;
    blp = 0;
  }
  if (pid >= 0) pairs.push(pid, blp);
  const out = new Uint8Array(12 + 2 * pairs.length);
  header(out, 1, RTCP_RTPFB);
  writeU32(out, 4, senderSsrc);
  writeU32(out, 8, mediaSsrc);
  for (let i = 0; i < pairs.length; i++) writeU16(out, 12 + 2 * i, pairs[i]);
  return out;
}

/** REMB: a receiver-estimated maximum bitrate for the listed media senders (18-bit mantissa, 6-bit exponent). */
export function writeRemb(senderSsrc: number, bitrate: number, ssrcs: readonly number[]): Uint8Array {
  if (!(bitrate >= 0) || !Number.isFinite(bitrate))
    throw new RangeError(`REMB bitrate must be >= 0, got ${bitrate}`);
  if (ssrcs.length > 255) throw new RangeError(`REMB lists at most 255 SSRCs, got ${ssrcs.length}`);
  let exponent = 0;
  let mantissa = Math.floor(bitrate);
  while (mantissa > 0x3ffff) {
    mantissa = Math.floor(mantissa / 2);
    exponent++;
  }
  const out = new Uint8Array(20 + 4 * ssrcs.length);
  header(out, 15, RTCP_PSFB);
  writeU32(out, 4, senderSsrc);
  writeU32(out, 12, REMB_ID);
  out[16] = ssrcs.length;
  out[17] = (exponent << 2) | (mantissa >> 16);
  writeU16(out, 18, mantissa & 0xffff);
  for (let i = 0; i < ssrcs.length; i++) writeU32(out, 20 + 4 * i, ssrcs[i]);
  return out;
}

/**
 * RFC 3611 §4.5: an extended report with one DLRR sub-block answering a receiver's RRTR: the middle 32 bits
 * of its NTP time (LRR) and the delay since it arrived in 1/65536 s (DLRR).
 */
export function writeDlrr(
  senderSsrc: number,
  receiverSsrc: number,
  lastReceiverReport: number,
  delaySinceLastReceiverReport: number,
): Uint8Array {
  const out = new Uint8Array(24);
  header(out, 0, RTCP_XR);
  writeU32(out, 4, senderSsrc);
  out[8] = XR_DLRR;
  writeU16(out, 10, 3);
  writeU32(out, 12, receiverSsrc);
  writeU32(out, 16, lastReceiverReport);
  writeU32(out, 20, delaySinceLastReceiverReport);
  return out;
}

/** Seconds from the NTP epoch (1900) to the Unix epoch (1970). */
export const NTP_UNIX_OFFSET_SECONDS = 2208988800;

/** A wall-clock time in milliseconds since the Unix epoch as the 64-bit NTP timestamp of an SR (§4). */
export function ntpFromUnixMs(ms: number): { seconds: number; fraction: number } {
  const whole = Math.floor(ms / 1000);
  const fraction = Math.floor(((ms - whole * 1000) / 1000) * 0x100000000);
  return { seconds: (whole + NTP_UNIX_OFFSET_SECONDS) >>> 0, fraction: Math.min(fraction, 0xffffffff) >>> 0 };
}

/** The inverse of ntpFromUnixMs (valid until the NTP era rolls over in 2036). */
export function ntpToUnixMs(seconds: number, fraction: number): number {
  return (seconds - NTP_UNIX_OFFSET_SECONDS) * 1000 + (fraction / 0x100000000) * 1000;
}

/** The middle 32 bits of an NTP timestamp: what report blocks echo as LSR (§6.4.1). */
export function ntpMiddle32(seconds: number, fraction: number): number {
  return (((seconds & 0xffff) << 16) | (fraction >>> 16)) >>> 0;
}

/**
 * Round-trip time in milliseconds from a report block received at `arrivalNtpMiddle` (ntpMiddle32 of the
 * arrival time), per §6.4.1: arrival - LSR - DLSR. Undefined when the block echoes no SR.
 */
export function roundTripMs(block: RtcpReportBlock, arrivalNtpMiddle: number): number | undefined {
  if (block.lastSenderReport === 0) return undefined;
  const rtt = (arrivalNtpMiddle - block.lastSenderReport - block.delaySinceLastSenderReport) | 0;
  return rtt < 0 ? 0 : (rtt / 65536) * 1000;
}
