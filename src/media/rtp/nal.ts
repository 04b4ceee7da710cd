import { readU32, writeU16, writeU32 } from '../bytes.ts';
import { MediaParseError } from '../errors.ts';
import type { RtpPacket } from './packet.ts';
import { type DepacketizedFrame, FrameDepacketizer, type FrameDepacketizerOptions } from './payload.ts';

/*
 * What H.264 over RTP (RFC 6184, packetization-mode 1) and H.265 over RTP (RFC 7798, no DONL) share: NAL units
 * travel alone, several small ones in an aggregate (STAP-A / AP: payload header, then 16-bit sizes each
 * followed by a unit) and a big one in fragments (FU-A / FU: payload header, FU header with S/E bits and the
 * unit's type, then a slice of its body). Only the NAL header differs: 1 byte with a 5-bit type, or 2 bytes
 * with a 6-bit type and layer/temporal ids. The codec files say how their headers are built and read.
 */

/** How a codec's NAL units look on the wire. */
export interface NalFormat {
  /** For messages: 'H.264' or 'H.265'. */
  readonly codec: string;
  /** NAL unit header bytes (1 or 2); aggregates and fragments start with a payload header of this size. */
  readonly headerSize: number;
  /** For messages: 'STAP-A' / 'AP' and 'FU-A' / 'FU'. */
  readonly aggregateName: string;
  readonly fragmentName: string;
  /** The payload-header type values of an aggregate and a fragment. */
  readonly aggregateType: number;
  readonly fragmentType: number;
  /** The mask of the type bits in the FU header (0x1f / 0x3f). */
  readonly fuTypeMask: number;
  /** An aggregated unit shorter than this is malformed (1 for H.264, 2 for H.265: its header). */
  readonly minAggregatedUnit: number;
  /** The type of a NAL unit or payload, from its header. */
  type(header: Uint8Array): number;
  /** Throws MediaParseError when `type` may not appear where it does (`where` names the place). */
  checkType(type: number, where: string, offset: number): void;
  /** The NAL header of a fragmented unit of `type`, rebuilt from the fragment's payload header. */
  fragmentedHeader(payload: Uint8Array, type: number): Uint8Array;
}

/**
 * The NAL units of an access unit in 4-byte length-prefixed form (views of `au`) that `visit` keeps (it sees
 * each unit and its type). Throws MediaParseError when a length runs past the end or a unit is shorter than its
 * header.
 */
export function splitNalUnits(
  au: Uint8Array,
  format: NalFormat,
  visit: (nal: Uint8Array, type: number) => boolean,
): Uint8Array[] {
  const nalus: Uint8Array[] = [];
  for (let p = 0; p < au.length; ) {
    if (p + 4 > au.length)
      throw new MediaParseError(
        `${format.codec} access unit: truncated NAL length, ${au.length - p} bytes left`,
        p,
      );
    const len = readU32(au, p);
    if (p + 4 + len > au.length) {
      throw new MediaParseError(
        `${format.codec} access unit: NAL length ${len} runs past the end, ${au.length - p - 4} bytes left`,
        p,
      );
    }
    if (len > 0 && len < format.headerSize)
      throw new MediaParseError(
        `${format.codec} access unit: a ${len}-byte NAL unit has no complete header`,
        p,
      );
    if (len > 0) {
      const nal = au.subarray(p + 4, p + 4 + len);
      if (visit(nal, format.type(nal))) nalus.push(nal);
    }
    p += 4 + len;
  }
  return nalus;
}

/**
 * RTP payloads of no more than `max` bytes for `nalus`: each unit alone when it fits and no neighbour fits
 * with it, neighbours together in an aggregate, a unit bigger than `max` in fragments.
 */
export function packNalUnits(
  nalus: readonly Uint8Array[],
  max: number,
  format: NalFormat,
  aggregate: (nalus: readonly Uint8Array[], from: number, to: number, size: number) => Uint8Array,
  fragment: (nal: Uint8Array, max: number, out: Uint8Array[]) => void,
): Uint8Array[] {
  const payloads: Uint8Array[] = [];
  let i = 0;
  while (i < nalus.length) {
    const nal = nalus[i];
    if (nal.length > max) {
      fragment(nal, max, payloads);
      i++;
      continue;
    }
    let size = format.headerSize + 2 + nal.length;
    let j = i + 1;
    while (j < nalus.length && size + 2 + nalus[j].length <= max) size += 2 + nalus[j++].length;
    if (j === i + 1) payloads.push(nal);
    else payloads.push(aggregate(nalus, i, j, size));
    i = j;
  }
  return payloads;
}

/** An aggregate of `size` bytes: `format.headerSize` bytes left for the caller's payload header, then units. */
export function writeAggregate(
  nalus: readonly Uint8Array[],
  from: number,
  to: number,
  size: number,
  headerSize: number,
): Uint8Array {
  const out = new Uint8Array(size);
  let p = headerSize;
  for (let k = from; k < to; k++) {
    const nal = nalus[k];
    writeU16(out, p, nal.length);
    out.set(nal, p + 2);
    p += 2 + nal.length;
  }
  return out;
}

/**
 * Reassembles access units from single-unit, aggregate and fragment packets into one new 4-byte
 * length-prefixed buffer per unit. Subclasses name the format and read what the units mean (keyframe,
 * parameter sets) in `build`'s `inspect`/`finish` hooks.
 */
export abstract class NalDepacketizer extends FrameDepacketizer {
  /** NAL units of the open access unit as lists of byte runs (views of packet payloads). */
  #runs: Uint8Array[] = [];
  /** For each NAL unit, the index in #runs where it ends (exclusive). */
  #nalEnds: number[] = [];
  /** The NAL type of the fragmented unit in progress, -1 when none. */
  #fuType = -1;
  readonly #format: NalFormat;

  constructor(format: NalFormat, options?: FrameDepacketizerOptions) {
    super(options);
    this.#format = format;
  }

  /** Called for each NAL unit of a completed access unit, in order; true when it makes the unit a keyframe. */
  protected abstract inspect(nal: Uint8Array, type: number): boolean;

  /** Completes the frame (for example with a new decoder configuration). */
  protected finish(frame: DepacketizedFrame): DepacketizedFrame {
    return frame;
  }

  protected begin(): void {
    this.discard();
  }

  protected discard(): void {
    this.#runs.length = 0;
    this.#nalEnds.length = 0;
    this.#fuType = -1;
  }

  protected complete(): boolean {
    return this.#fuType < 0;
  }

  protected append(packet: RtpPacket): void {
    const f = this.#format;
    const payload = packet.payload;
    const base = packet.headerSize;
    if (payload.length === 0) throw new MediaParseError(`${f.codec} RTP: empty payload`, base);
    if (payload.length < f.headerSize)
      throw new MediaParseError(
        `${f.codec} RTP: payload of ${payload.length} bytes, the NAL unit header needs ${f.headerSize}`,
        base,
      );
    const type = f.type(payload);
    if (type === f.fragmentType) {
      this.#appendFragment(payload, base);
      return;
    }
    if (this.#fuType >= 0) {
      throw new MediaParseError(
        `${f.codec} RTP: packet type ${type} while a fragmented NAL unit of type ${this.#fuType} has no end fragment`,
        base,
      );
    }
    if (type === f.aggregateType) {
      this.#appendAggregate(payload, base);
      return;
    }
    f.checkType(type, 'single NAL unit packet', base);
    this.#runs.push(payload);
    this.#nalEnds.push(this.#runs.length);
  }

  /** After the payload header, 16-bit sizes each followed by that many bytes of NAL unit. */
  #appendAggregate(payload: Uint8Array, base: number): void {
    const f = this.#format;
    const name = `${f.codec} RTP: ${f.aggregateName}`;
    let p = f.headerSize;
    let count = 0;
    while (p < payload.length) {
      if (p + 2 > payload.length)
        throw new MediaParseError(`${name} unit ${count} has a truncated size field`, base + p);
      const size = (payload[p] << 8) | payload[p + 1];
      if (size < f.minAggregatedUnit)
        throw new MediaParseError(`${name} unit ${count} has size ${size}`, base + p);
      if (p + 2 + size > payload.length) {
        throw new MediaParseError(
          `${name} unit ${count} of ${size} bytes runs past the end, ${payload.length - p - 2} bytes left`,
          base + p,
        );
      }
      f.checkType(f.type(payload.subarray(p + 2)), `${f.aggregateName} unit ${count}`, base + p + 2);
      this.#runs.push(payload.subarray(p + 2, p + 2 + size));
      this.#nalEnds.push(this.#runs.length);
      p += 2 + size;
      count++;
    }
    if (count === 0) throw new MediaParseError(`${name} holds no NAL unit`, base);
  }

  /** Payload header, FU header (S, E, type), fragment. */
  #appendFragment(payload: Uint8Array, base: number): void {
    const f = this.#format;
    const name = `${f.codec} RTP: ${f.fragmentName}`;
    const at = base + f.headerSize;
    if (payload.length < f.headerSize + 1) throw new MediaParseError(`${name} without an FU header`, base);
    const fuHeader = payload[f.headerSize];
    const start = (fuHeader & 0x80) !== 0;
    const end = (fuHeader & 0x40) !== 0;
    const type = fuHeader & f.fuTypeMask;
    if (start && end) throw new MediaParseError(`${name} header has both start and end bits set`, at);
    f.checkType(type, f.fragmentName, at);
    if (start) {
      if (this.#fuType >= 0) {
        throw new MediaParseError(
          `${name} start while the fragmented NAL unit of type ${this.#fuType} has no end fragment`,
          at,
        );
      }
      this.#fuType = type;
      this.#runs.push(f.fragmentedHeader(payload, type));
    } else if (this.#fuType < 0) {
      throw new MediaParseError(`${name} fragment of a type ${type} NAL unit without its start`, at);
    } else if (type !== this.#fuType) {
      throw new MediaParseError(
        `${name} fragment of type ${type} inside a fragmented NAL unit of type ${this.#fuType}`,
        at,
      );
    }
    if (payload.length > f.headerSize + 1) this.#runs.push(payload.subarray(f.headerSize + 1));
    if (end) {
      this.#fuType = -1;
      this.#nalEnds.push(this.#runs.length);
    }
  }

  protected build(timestamp: number): DepacketizedFrame | undefined {
    const nalEnds = this.#nalEnds;
    if (nalEnds.length === 0) return undefined;
    const runs = this.#runs;
    let total = 4 * nalEnds.length;
    for (const run of runs) total += run.length;
    const data = new Uint8Array(total);
    let keyframe = false;
    let p = 0;
    let r = 0;
    for (const endRun of nalEnds) {
      const start = p;
      p += 4;
      for (; r < endRun; r++) {
        data.set(runs[r], p);
        p += runs[r].length;
      }
      writeU32(data, start, p - start - 4);
      const nal = data.subarray(start + 4, p);
      if (this.inspect(nal, this.#format.type(nal))) keyframe = true;
    }
    return this.finish({ data, timestamp, keyframe });
  }
}
