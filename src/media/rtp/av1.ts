import { MediaParseError } from '../errors.ts';
import { DEFAULT_MAX_PAYLOAD_SIZE } from './h264.ts';
import type { RtpPacket } from './packet.ts';
import {
  type DepacketizedFrame,
  FrameDepacketizer,
  type FrameDepacketizerOptions,
  type RtpPayloads,
} from './payload.ts';

/*
 * AV1 over RTP, "RTP Payload Format For AV1" (AOMedia, v1.0) §4. A payload is the aggregation header
 * Z Y W(2) N (§4.4) and OBU elements: each but the last length-prefixed (leb128) when W gives their count
 * (1..3), all prefixed when W is 0. Z says the first element continues an OBU fragment of the previous packet,
 * Y that the last one continues in the next; N marks the first packet of a coded video sequence. OBUs travel
 * without obu_size (§4.3); temporal delimiters and tile lists are not sent (§5).
 *
 * `Av1Packetizer.packetize(tu)` takes a temporal unit as Frame.data carries it (OBUs with size fields, as in
 * MP4) and produces payloads; `Av1Depacketizer.push(packet)` reassembles temporal units in that same form,
 * a key frame being one that carries a sequence header and a KEY_FRAME frame header.
 */

const OBU_SEQUENCE_HEADER = 1;
const OBU_TEMPORAL_DELIMITER = 2;
const OBU_FRAME_HEADER = 3;
const OBU_FRAME = 6;
const OBU_TILE_LIST = 8;
const OBU_PADDING = 15;

function leb128Size(value: number): number {
  let n = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    n++;
  }
  return n;
}

function writeLeb128(out: Uint8Array, p: number, value: number): number {
  for (;;) {
    const byte = value & 0x7f;
    value = Math.floor(value / 128);
    if (value === 0) {
      out[p++] = byte;
      return p;
    }
    out[p++] = byte | 0x80;
  }
}

/** leb128(), AV1 spec §4.10.5: [value, next offset]; at most 8 bytes, below 2^32. */
function readLeb128(buf: Uint8Array, p: number, end: number, base: number, what: string): [number, number] {
  let value = 0;
  for (let i = 0; i < 8; i++) {
    if (p + i >= end) throw new MediaParseError(`AV1 RTP: truncated leb128 ${what}`, base + p);
    const b = buf[p + i];
    value += (b & 0x7f) * 2 ** (7 * i);
    if (!(b & 0x80)) {
      if (value > 0xffffffff)
        throw new MediaParseError(`AV1 RTP: leb128 ${what} ${value} exceeds 2^32 - 1`, base + p);
      return [value, p + i + 1];
    }
  }
  throw new MediaParseError(`AV1 RTP: leb128 ${what} longer than 8 bytes`, base + p);
}

/** One OBU split into its header bytes (1 or 2, obu_has_size_field cleared) and payload. */
interface Obu {
  type: number;
  header: Uint8Array;
  payload: Uint8Array;
}

/** Walks a low-overhead bitstream (§5.2: OBUs, each with obu_size except possibly the last). */
function splitObus(data: Uint8Array): Obu[] {
  const obus: Obu[] = [];
  let p = 0;
  while (p < data.length) {
    const h = data[p];
    if (h & 0x80) throw new MediaParseError('AV1 temporal unit: OBU forbidden bit set', p);
    const headerSize = h & 0x04 ? 2 : 1;
    if (p + headerSize > data.length)
      throw new MediaParseError('AV1 temporal unit: OBU extension header truncated', p);
    let q = p + headerSize;
    let size = data.length - q;
    if (h & 0x02) [size, q] = readLeb128(data, q, data.length, 0, 'obu_size');
    if (q + size > data.length) {
      throw new MediaParseError(
        `AV1 temporal unit: OBU of ${size} bytes runs past the end, ${data.length - q} bytes left`,
        p,
      );
    }
    const header = data.slice(p, p + headerSize);
    header[0] &= ~0x02;
    obus.push({ type: (h >> 3) & 0x0f, header, payload: data.subarray(q, q + size) });
    p = q + size;
  }
  return obus;
}

export interface Av1PacketizerOptions {
  /** Largest RTP payload, aggregation header included (default 1200). */
  maxPayloadSize?: number;
}

export class Av1Packetizer {
  readonly maxPayloadSize: number;

  constructor(options: Av1PacketizerOptions = {}) {
    const max = options.maxPayloadSize ?? DEFAULT_MAX_PAYLOAD_SIZE;
    if (!Number.isInteger(max) || max < 64 || max > 65535)
      throw new RangeError(`AV1 RTP payload size must be 64..65535 bytes, got ${max}`);
    this.maxPayloadSize = max;
  }

  /**
   * The payloads of one temporal unit. Each OBU element goes out length-prefixed (W = 0), fragmented across
   * packets when it does not fit; N is set when the unit begins with a sequence header (a new coded video
   * sequence starts at a key frame). Throws MediaParseError when `tu` is not a valid OBU sequence.
   */
  packetize(tu: Uint8Array): RtpPayloads {
    const obus = splitObus(tu).filter(
      (o) => o.type !== OBU_TEMPORAL_DELIMITER && o.type !== OBU_TILE_LIST && o.type !== OBU_PADDING,
    );
    const payloads: Uint8Array[] = [];
    if (obus.length === 0) return { payloads, markerIndex: -1 };
    const max = this.maxPayloadSize;
    const newSequence = obus[0].type === OBU_SEQUENCE_HEADER;
    // OBU elements of the packet being filled: byte ranges of OBUs (header without obu_size, then payload).
    let elements: { bytes: Uint8Array; start: number; end: number }[] = [];
    let used = 1;
    let continues = false; // Z of the packet being filled
    const flush = (y: boolean) => {
      const out = new Uint8Array(used);
      out[0] = (continues ? 0x80 : 0) | (y ? 0x40 : 0) | (newSequence && payloads.length === 0 ? 0x08 : 0);
      let p = 1;
      for (const e of elements) {
        p = writeLeb128(out, p, e.end - e.start);
        out.set(e.bytes.subarray(e.start, e.end), p);
        p += e.end - e.start;
      }
      payloads.push(out);
      elements = [];
      used = 1;
      continues = y;
    };
    for (const obu of obus) {
      const bytes = new Uint8Array(obu.header.length + obu.payload.length);
      bytes.set(obu.header);
      bytes.set(obu.payload, obu.header.length);
      let start = 0;
      while (start < bytes.length) {
        const room = max - used;
        // Room for a length field and at least a byte of the element, or the packet is full.
        if (room < leb128Size(max) + 1) {
          flush(false);
          continue;
        }
        const remaining = bytes.length - start;
        const take = Math.min(remaining, room - leb128Size(Math.min(remaining, room)));
        elements.push({ bytes, start, end: start + take });
        used += leb128Size(take) + take;
        start += take;
        if (start < bytes.length) flush(true);
      }
    }
    flush(false);
    return { payloads, markerIndex: payloads.length - 1 };
  }
}

/**
 * A key frame's temporal unit with the sequence header in front when it has none: RTP receivers need it in
 * band (§7.5: a coded video sequence starts with one), while MP4 and E-RTMP may keep it only in av1C's
 * configOBUs. Returns `tu` itself when it already carries one or there is nothing to add. The result is for
 * Av1Packetizer, which drops the temporal delimiter that now follows the sequence header.
 */
export function av1WithSequenceHeader(tu: Uint8Array, configObus: Uint8Array): Uint8Array {
  if (configObus.length === 0 || splitObus(tu).some((o) => o.type === OBU_SEQUENCE_HEADER)) return tu;
  const out = new Uint8Array(configObus.length + tu.length);
  out.set(configObus);
  out.set(tu, configObus.length);
  return out;
}

/**
 * Whether an RTP payload begins an AV1 key frame: its first element starts an OBU (Z clear) and either N says
 * a coded video sequence starts here or that OBU is a sequence header (which only precedes key frames in
 * real-time streams).
 */
export function av1StartsKeyframe(payload: Uint8Array): boolean {
  if (payload.length < 2 || payload[0] & 0x80) return false;
  if (payload[0] & 0x08) return true;
  const w = (payload[0] >> 4) & 0x03;
  let p = 1;
  if (w !== 1) {
    // skip the leb128 length of the first element
    while (p < payload.length && payload[p] & 0x80) p++;
    p++;
  }
  return p < payload.length && ((payload[p] >> 3) & 0x0f) === OBU_SEQUENCE_HEADER;
}

/** Reassembles temporal units as OBU sequences with obu_size on every OBU (the MP4 sample form). */
export class Av1Depacketizer extends FrameDepacketizer {
  /** Complete OBUs of the open temporal unit, each as its byte runs. */
  #obus: Uint8Array[][] = [];
  /** Runs of the OBU fragment continuing into the next packet (Y was set), undefined when none. */
  #fragment: Uint8Array[] | undefined;

  constructor(options?: FrameDepacketizerOptions) {
    super(options);
  }

  protected override startsFrame(packet: RtpPacket): boolean {
    // Z = 0: the first element is a whole OBU or the start of one.
    return packet.payload.length > 0 && (packet.payload[0] & 0x80) === 0;
  }

  protected begin(): void {
    this.discard();
  }

  protected discard(): void {
    this.#obus = [];
    this.#fragment = undefined;
  }

  protected complete(): boolean {
    return this.#fragment === undefined && this.#obus.length > 0;
  }

  protected append(packet: RtpPacket): void {
    const payload = packet.payload;
    const base = packet.headerSize;
    if (payload.length < 2) throw new MediaParseError('AV1 RTP: payload shorter than 2 bytes', base);
    const aggregation = payload[0];
    const z = (aggregation & 0x80) !== 0;
    const y = (aggregation & 0x40) !== 0;
    const w = (aggregation >> 4) & 0x03;
    if (z && !this.#fragment)
      throw new MediaParseError('AV1 RTP: Z set but no OBU fragment is open to continue', base);
    if (!z && this.#fragment)
      throw new MediaParseError('AV1 RTP: the open OBU fragment is not continued (Z clear)', base);
    let p = 1;
    let index = 0;
    while (p < payload.length) {
      index++;
      let size: number;
      if (w !== 0 && index === w) size = payload.length - p;
      else [size, p] = readLeb128(payload, p, payload.length, base, `length of OBU element ${index}`);
      if (size === 0) throw new MediaParseError(`AV1 RTP: OBU element ${index} is empty`, base + p);
      if (p + size > payload.length) {
        throw new MediaParseError(
          `AV1 RTP: OBU element ${index} of ${size} bytes runs past the end, ${payload.length - p} bytes left`,
          base + p,
        );
      }
      const element = payload.subarray(p, p + size);
      p += size;
      const last = p >= payload.length;
      let runs: Uint8Array[];
      if (index === 1 && z) {
        runs = this.#fragment!;
        runs.push(element);
        this.#fragment = undefined;
      } else runs = [element];
      if (last && y) this.#fragment = runs;
      else this.#obus.push(runs);
    }
    if (w !== 0 && index !== w)
      throw new MediaParseError(`AV1 RTP: W says ${w} OBU elements, the payload holds ${index}`, base);
    if (index === 0) throw new MediaParseError('AV1 RTP: no OBU element after the aggregation header', base);
  }

  protected build(timestamp: number): DepacketizedFrame | undefined {
    const obus: Uint8Array[] = [];
    let total = 0;
    let sequenceHeader = false;
    let reducedStillPicture = false;
    let keyFrameHeader = false;
    let firstFrameSeen = false;
    for (const runs of this.#obus) {
      const obu = joinRuns(runs);
      const h = obu[0];
      if (h & 0x80) throw new MediaParseError('AV1 RTP: OBU forbidden bit set');
      const type = (h >> 3) & 0x0f;
      if (type === OBU_TEMPORAL_DELIMITER || type === OBU_TILE_LIST || type === OBU_PADDING) continue;
      const headerSize = h & 0x04 ? 2 : 1;
      if (obu.length < headerSize) throw new MediaParseError('AV1 RTP: OBU extension header truncated');
      let body = obu.subarray(headerSize);
      if (h & 0x02) {
        // §4.3 allows a sender to keep obu_size; it must then match the element.
        const [size, q] = readLeb128(obu, headerSize, obu.length, 0, 'obu_size');
        if (q + size !== obu.length)
          throw new MediaParseError(
            `AV1 RTP: obu_size ${size} disagrees with the ${obu.length - q}-byte element`,
          );
        body = obu.subarray(q);
      }
      if (type === OBU_SEQUENCE_HEADER) {
        sequenceHeader = true;
        if (body.length > 0) reducedStillPicture = ((body[0] >> 3) & 1) === 1;
      } else if ((type === OBU_FRAME || type === OBU_FRAME_HEADER) && !firstFrameSeen && body.length > 0) {
        firstFrameSeen = true;
        // §5.9.2: show_existing_frame (1 bit), then frame_type (2 bits), KEY_FRAME = 0.
        keyFrameHeader = reducedStillPicture || (body[0] & 0xe0) === 0;
      }
      const out = new Uint8Array(headerSize + leb128Size(body.length) + body.length);
      out.set(obu.subarray(0, headerSize));
      out[0] |= 0x02;
      const p = writeLeb128(out, headerSize, body.length);
      out.set(body, p);
      obus.push(out);
      total += out.length;
    }
    if (obus.length === 0) return undefined;
    const data = obus.length === 1 ? obus[0] : new Uint8Array(total);
    if (obus.length > 1) {
      let p = 0;
      for (const o of obus) {
        data.set(o, p);
        p += o.length;
      }
    }
    return { data, timestamp, keyframe: sequenceHeader && keyFrameHeader };
  }
}

function joinRuns(runs: readonly Uint8Array[]): Uint8Array {
  if (runs.length === 1) return runs[0];
  let total = 0;
  for (const r of runs) total += r.length;
  const out = new Uint8Array(total);
  let p = 0;
  for (const r of runs) {
    out.set(r, p);
    p += r.length;
  }
  return out;
}
