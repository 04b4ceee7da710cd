import { readU32, writeU16, writeU32 } from '../bytes.ts';
import { MediaParseError } from '../errors.ts';

/*
 * RTP packets, RFC 3550 §5.1 (fixed header, CSRCs, §5.3.1 header extension, padding) with RFC 8285 header
 * extension elements (one-byte §4.2 and two-byte §4.3 forms).
 *
 * `parseRtpPacket(buf)` reads a packet into an RtpPacket whose payload and extension data are views of `buf`;
 * `writeRtpPacket(header, payload)` builds one; `rewriteRtpHeader` / `copyRtpWithRewrite` patch payload type,
 * sequence number, timestamp and SSRC (bytes 1..11) for per-viewer forwarding of a shared packet;
 * `isRtcpPacket` demultiplexes RTP from RTCP on one port (RFC 5761 §4). Sequence numbers are compared with
 * serial-number arithmetic (RFC 3550 §A.1): `seqNewer`, `seqDelta`, and `SequenceUnwrapper` for extended
 * (wrap-counted) numbers.
 */

export const RTP_HEADER_SIZE = 12;
/** RFC 8285 §4.2: the "defined by profile" value of the one-byte header form. */
export const RTP_EXTENSION_ONE_BYTE = 0xbede;
/** RFC 8285 §4.3: the two-byte form is 0x100 in the top 12 bits; the low 4 bits are app bits. */
export const RTP_EXTENSION_TWO_BYTE = 0x1000;

/** One RFC 8285 header extension element; `data` is a view of the parsed packet. */
export interface RtpHeaderExtension {
  id: number;
  data: Uint8Array;
}

export interface RtpPacket {
  marker: boolean;
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
  csrcs: number[];
  /**
   * The 16-bit "defined by profile" field of the header extension (§5.3.1) when there is one: 0xBEDE for the
   * one-byte form, 0x100X for the two-byte form, anything else for a profile-specific extension.
   */
  extensionProfile?: number;
  /** RFC 8285 elements, empty when there is no extension or it is neither RFC 8285 form. */
  extensions: RtpHeaderExtension[];
  /** Bytes of fixed header, CSRCs and header extension: where the payload starts. */
  headerSize: number;
  /** Padding bytes after the payload, including the count byte (0 when the P bit is clear). */
  paddingSize: number;
  /** A view of the packet. */
  payload: Uint8Array;
}

const NO_CSRCS: number[] = [];
const NO_EXTENSIONS: RtpHeaderExtension[] = [];

/** Parses one RTP packet; throws MediaParseError at the first byte that is not a valid RTP header. */
export function parseRtpPacket(buf: Uint8Array): RtpPacket {
  if (buf.length < RTP_HEADER_SIZE)
    throw new MediaParseError(`RTP packet: ${buf.length} bytes, the fixed header needs 12`, 0);
  const b0 = buf[0];
  const version = b0 >> 6;
  if (version !== 2) throw new MediaParseError(`RTP packet: version ${version}, expected 2`, 0);
  const csrcCount = b0 & 0x0f;
  let p = RTP_HEADER_SIZE;
  if (p + 4 * csrcCount > buf.length) {
    throw new MediaParseError(
      `RTP packet: ${csrcCount} CSRCs need ${4 * csrcCount} bytes but ${buf.length - p} remain`,
      p,
    );
  }
  let csrcs = NO_CSRCS;
  if (csrcCount > 0) {
    csrcs = new Array<number>(csrcCount);
    for (let i = 0; i < csrcCount; i++, p += 4) csrcs[i] = readU32(buf, p);
  }
  let extensionProfile: number | undefined;
  let extensions = NO_EXTENSIONS;
  if (b0 & 0x10) {
    if (p + 4 > buf.length)
      throw new MediaParseError(`RTP packet: truncated header extension, ${buf.length - p} bytes left`, p);
    extensionProfile = (buf[p] << 8) | buf[p + 1];
    const length = 4 * ((buf[p + 2] << 8) | buf[p + 3]);
    const start = p + 4;
    if (start + length > buf.length) {
      throw new MediaParseError(
        `RTP packet: header extension of ${length} bytes runs past the end, ${buf.length - start} bytes left`,
        p + 2,
      );
    }
    if (extensionProfile === RTP_EXTENSION_ONE_BYTE)
      extensions = parseOneByteElements(buf, start, start + length);
    else if ((extensionProfile & 0xfff0) === RTP_EXTENSION_TWO_BYTE)
      extensions = parseTwoByteElements(buf, start, start + length);
    p = start + length;
  }
  let paddingSize = 0;
  if (b0 & 0x20) {
    // §5.1: the last octet of the padding counts the padding octets, itself included.
    paddingSize = buf[buf.length - 1];
    if (paddingSize === 0 || p + paddingSize > buf.length) {
      throw new MediaParseError(
        `RTP packet: padding count ${paddingSize} does not fit the ${buf.length - p} bytes after the header`,
        buf.length - 1,
      );
    }
  }
  const packet: RtpPacket = {
    marker: (buf[1] & 0x80) !== 0,
    payloadType: buf[1] & 0x7f,
    sequenceNumber: (buf[2] << 8) | buf[3],
    timestamp: readU32(buf, 4),
    ssrc: readU32(buf, 8),
    csrcs,
    extensions,
    headerSize: p,
    paddingSize,
    payload: buf.subarray(p, buf.length - paddingSize),
  };
  if (extensionProfile !== undefined) packet.extensionProfile = extensionProfile;
  return packet;
}

/** RFC 8285 §4.2: ID (4 bits) and length-1 (4 bits), then 1..16 bytes; ID 0 is padding, ID 15 stops parsing. */
function parseOneByteElements(buf: Uint8Array, p: number, end: number): RtpHeaderExtension[] {
  const out: RtpHeaderExtension[] = [];
  while (p < end) {
    const b = buf[p];
    if (b === 0) {
      p++;
      continue;
    }
    const id = b >> 4;
    if (id === 15) break;
    const length = (b & 0x0f) + 1;
    if (p + 1 + length > end) {
      throw new MediaParseError(
        `RTP header extension: element ${id} of ${length} bytes runs past the extension end, ${end - p - 1} bytes left`,
        p,
      );
    }
    out.push({ id, data: buf.subarray(p + 1, p + 1 + length) });
    p += 1 + length;
  }
  return out;
}

/** RFC 8285 §4.3: ID byte and length byte (0..255), then the data; ID 0 is padding. */
function parseTwoByteElements(buf: Uint8Array, p: number, end: number): RtpHeaderExtension[] {
  const out: RtpHeaderExtension[] = [];
  while (p < end) {
    const id = buf[p];
    if (id === 0) {
      p++;
      continue;
    }
    if (p + 2 > end) throw new MediaParseError(`RTP header extension: element ${id} has no length byte`, p);
    const length = buf[p + 1];
    if (p + 2 + length > end) {
      throw new MediaParseError(
        `RTP header extension: element ${id} of ${length} bytes runs past the extension end, ${end - p - 2} bytes left`,
        p,
      );
    }
    out.push({ id, data: buf.subarray(p + 2, p + 2 + length) });
    p += 2 + length;
  }
  return out;
}

/** The header fields a sender chooses; everything but the payload. */
export interface RtpHeaderInit {
  marker?: boolean;
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
  csrcs?: readonly number[];
  /**
   * RFC 8285 elements. The one-byte form is used when every ID is 1..14 and every element 1..16 bytes,
   * the two-byte form otherwise (IDs 1..255, 0..255 bytes).
   */
  extensions?: readonly RtpHeaderExtension[];
  /** Padding bytes to append, count byte included (1..255); 0 or absent for none. */
  padding?: number;
}

function extensionBlockSize(extensions: readonly RtpHeaderExtension[] | undefined): {
  size: number;
  oneByte: boolean;
} {
  if (!extensions || extensions.length === 0) return { size: 0, oneByte: true };
  let oneByte = true;
  let body = 0;
  for (const e of extensions) {
    if (!Number.isInteger(e.id) || e.id < 1 || e.id > 255)
      throw new RangeError(`RTP header extension ID must be 1..255, got ${e.id}`);
    if (e.data.length > 255)
      throw new RangeError(`RTP header extension ${e.id}: ${e.data.length} bytes, at most 255`);
    if (e.id > 14 || e.data.length === 0 || e.data.length > 16) oneByte = false;
  }
  for (const e of extensions) body += (oneByte ? 1 : 2) + e.data.length;
  return { size: 4 + 4 * Math.ceil(body / 4), oneByte };
}

/** Bytes `writeRtpPacket` needs for this header and a payload of `payloadLength` bytes. */
export function rtpPacketSize(header: RtpHeaderInit, payloadLength: number): number {
  return (
    RTP_HEADER_SIZE +
    4 * (header.csrcs?.length ?? 0) +
    extensionBlockSize(header.extensions).size +
    payloadLength +
    (header.padding ?? 0)
  );
}

/**
 * Writes header and payload into `out` (allocated when absent, else at least `rtpPacketSize` bytes) and
 * returns the packet, a view of `out`. Values out of range throw RangeError: they are our own bugs.
 */
export function writeRtpPacket(header: RtpHeaderInit, payload: Uint8Array, out?: Uint8Array): Uint8Array {
  const csrcs = header.csrcs ?? NO_CSRCS;
  if (csrcs.length > 15) throw new RangeError(`RTP carries at most 15 CSRCs, got ${csrcs.length}`);
  const padding = header.padding ?? 0;
  if (!Number.isInteger(padding) || padding < 0 || padding > 255)
    throw new RangeError(`RTP padding must be 0..255 bytes, got ${padding}`);
  if (!Number.isInteger(header.payloadType) || header.payloadType < 0 || header.payloadType > 127)
    throw new RangeError(`RTP payload type must be 0..127, got ${header.payloadType}`);
  const ext = extensionBlockSize(header.extensions);
  const size = RTP_HEADER_SIZE + 4 * csrcs.length + ext.size + payload.length + padding;
  if (out === undefined) out = new Uint8Array(size);
  else if (out.length < size)
    throw new RangeError(`RTP packet needs ${size} bytes, buffer has ${out.length}`);
  else out = out.subarray(0, size);
  out[0] = 0x80 | (padding > 0 ? 0x20 : 0) | (ext.size > 0 ? 0x10 : 0) | csrcs.length;
  out[1] = (header.marker ? 0x80 : 0) | header.payloadType;
  writeU16(out, 2, header.sequenceNumber & 0xffff);
  writeU32(out, 4, header.timestamp >>> 0);
  writeU32(out, 8, header.ssrc >>> 0);
  let p = RTP_HEADER_SIZE;
  for (const c of csrcs) {
    writeU32(out, p, c >>> 0);
    p += 4;
  }
  if (ext.size > 0) {
    writeU16(out, p, ext.oneByte ? RTP_EXTENSION_ONE_BYTE : RTP_EXTENSION_TWO_BYTE);
    writeU16(out, p + 2, (ext.size - 4) / 4);
    const end = p + ext.size;
    p += 4;
    for (const e of header.extensions!) {
      if (ext.oneByte) out[p++] = (e.id << 4) | (e.data.length - 1);
      else {
        out[p++] = e.id;
        out[p++] = e.data.length;
      }
      out.set(e.data, p);
      p += e.data.length;
    }
    out.fill(0, p, end); // §4.1: padding between elements and to the 32-bit boundary is zero
    p = end;
  }
  out.set(payload, p);
  p += payload.length;
  if (padding > 0) {
    out.fill(0, p, p + padding - 1);
    out[p + padding - 1] = padding;
  }
  return out;
}

/**
 * Patches payload type, sequence number, timestamp and SSRC of a packet in place, keeping the marker bit
 * and everything after byte 11. `packet` must hold at least the fixed header (a packet we parsed or wrote).
 */
export function rewriteRtpHeader(
  packet: Uint8Array,
  payloadType: number,
  sequenceNumber: number,
  timestamp: number,
  ssrc: number,
): void {
  if (packet.length < RTP_HEADER_SIZE)
    throw new RangeError(`RTP packet of ${packet.length} bytes has no fixed header`);
  packet[1] = (packet[1] & 0x80) | (payloadType & 0x7f);
  writeU16(packet, 2, sequenceNumber & 0xffff);
  writeU32(packet, 4, timestamp >>> 0);
  writeU32(packet, 8, ssrc >>> 0);
}

/**
 * Copies a shared packet into `out` (a per-viewer send buffer of at least `src.length` bytes) with its header
 * rewritten; returns the view of `out` holding the packet. The shared packet is not modified.
 */
export function copyRtpWithRewrite(
  src: Uint8Array,
  out: Uint8Array,
  payloadType: number,
  sequenceNumber: number,
  timestamp: number,
  ssrc: number,
): Uint8Array {
  if (out.length < src.length)
    throw new RangeError(`RTP packet of ${src.length} bytes does not fit a ${out.length}-byte buffer`);
  out.set(src);
  const view = out.subarray(0, src.length);
  rewriteRtpHeader(view, payloadType, sequenceNumber, timestamp, ssrc);
  return view;
}

/**
 * RFC 5761 §4: on a port shared by RTP and RTCP, the second byte of RTCP is a packet type 192..223, which as
 * an RTP marker+payload type would be the payload types 64..95 that RTP therefore avoids.
 */
export function isRtcpPacket(buf: Uint8Array): boolean {
  return buf.length >= 2 && buf[1] >= 192 && buf[1] <= 223;
}

/** The sequence number `count` steps after `seq`, modulo 2^16. */
export function seqAdd(seq: number, count: number): number {
  return (seq + count) & 0xffff;
}

/** Signed distance from `b` to `a` in -32768..32767: positive when `a` comes after `b` (serial arithmetic). */
export function seqDelta(a: number, b: number): number {
  return ((((a - b) & 0xffff) + 0x8000) & 0xffff) - 0x8000;
}

/** True when `a` comes after `b`, allowing for wrap-around (RFC 3550 §A.1). */
export function seqNewer(a: number, b: number): boolean {
  return seqDelta(a, b) > 0;
}

/** Signed distance between two 32-bit RTP timestamps: positive when `a` comes after `b`. */
export function timestampDelta(a: number, b: number): number {
  return (a - b) | 0;
}

/**
 * Extends 16-bit sequence numbers with a wrap count (RFC 3550 §A.1 "extended highest sequence number"), so
 * packets compare and subtract as plain numbers. A packet up to 32767 behind the highest seen maps to the
 * cycle it belongs to rather than the next one.
 */
export class SequenceUnwrapper {
  #highest = -1;

  /** The extended number of `seq`; the first one seen maps to itself (cycle 0). */
  unwrap(seq: number): number {
    seq &= 0xffff;
    if (this.#highest < 0) {
      this.#highest = seq;
      return seq;
    }
    const extended = this.#highest + seqDelta(seq, this.#highest & 0xffff);
    if (extended > this.#highest) this.#highest = extended;
    return extended;
  }

  /** Highest extended sequence number so far, -1 before the first. */
  get highest(): number {
    return this.#highest;
  }

  reset(): void {
    this.#highest = -1;
  }
}
