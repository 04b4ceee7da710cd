import { readU32, writeU16, writeU32 } from '../bytes.ts';
import { MediaParseError } from '../errors.ts';
import { HEVC_NAL_PPS, HEVC_NAL_SPS, HEVC_NAL_VPS, parseHevcDecoderConfig } from '../h265/hvcC.ts';
import { DEFAULT_MAX_PAYLOAD_SIZE } from './h264.ts';
import type { RtpPacket } from './packet.ts';
import {
  type DepacketizedFrame,
  FrameDepacketizer,
  type FrameDepacketizerOptions,
  type RtpPayloads,
} from './payload.ts';

/*
 * H.265 over RTP, RFC 7798, without DONL (sprop-max-don-diff = 0, as WebRTC uses it): single NAL unit packets
 * (§4.4.1), aggregation packets (AP, §4.4.2) and fragmentation units (FU, §4.4.3) behind the 2-byte NAL unit
 * header F | Type (6) | LayerId (6) | TID (3).
 *
 * `H265Packetizer.packetize(au, keyframe)` turns an access unit in 4-byte length-prefixed form (Frame.data)
 * into payloads, putting the hvcC's VPS/SPS/PPS before every IRAP picture that does not carry its own;
 * `H265Depacketizer.push(packet)` turns packets back into access units flagged keyframe when they hold an
 * IRAP (BLA/IDR/CRA) picture, dropping units that lost a packet or carried a malformed payload.
 */

const AP = 48;
const FU = 49;
const PACI = 50;
const NAL_AUD = 35;
const NAL_FD = 38;
const isIrap = (type: number) => type >= 16 && type <= 23;
const nalType = (nal: Uint8Array) => (nal[0] >> 1) & 0x3f;

export interface H265PacketizerOptions {
  /** Largest RTP payload to produce, in bytes (default 1200). */
  maxPayloadSize?: number;
}

export class H265Packetizer {
  readonly maxPayloadSize: number;
  #parameterSets: Uint8Array[] = [];

  /** `hvcC` is Track.config; without one, IRAP pictures go out with the parameter sets they carry in band. */
  constructor(hvcC?: Uint8Array, options: H265PacketizerOptions = {}) {
    const max = options.maxPayloadSize ?? DEFAULT_MAX_PAYLOAD_SIZE;
    if (!Number.isInteger(max) || max < 64 || max > 65535)
      throw new RangeError(`H.265 RTP payload size must be 64..65535 bytes, got ${max}`);
    this.maxPayloadSize = max;
    if (hvcC) this.setConfig(hvcC);
  }

  /** Takes VPS/SPS/PPS from a new hvcC; throws MediaParseError when it is malformed. */
  setConfig(hvcC: Uint8Array): void {
    const config = parseHevcDecoderConfig(hvcC);
    const sets: Uint8Array[] = [];
    for (const type of [HEVC_NAL_VPS, HEVC_NAL_SPS, HEVC_NAL_PPS]) {
      for (const array of config.arrays)
        if (array.nalUnitType === type) sets.push(...array.nalus.map((n) => n.slice()));
    }
    this.#parameterSets = sets;
  }

  /**
   * The RTP payloads of one access unit. Single NAL unit payloads are views of `au`; aggregates and fragments
   * are new. AUD and filler data NAL units are left out. Throws MediaParseError when a NAL length runs past
   * the end of `au` or a NAL unit is shorter than its 2-byte header.
   */
  packetize(au: Uint8Array, keyframe = false): RtpPayloads {
    const nalus: Uint8Array[] = [];
    let irap = false;
    let hasParameterSets = false;
    for (let p = 0; p < au.length; ) {
      if (p + 4 > au.length)
        throw new MediaParseError(`H.265 access unit: truncated NAL length, ${au.length - p} bytes left`, p);
      const len = readU32(au, p);
      if (p + 4 + len > au.length) {
        throw new MediaParseError(
          `H.265 access unit: NAL length ${len} runs past the end, ${au.length - p - 4} bytes left`,
          p,
        );
      }
      if (len === 1)
        throw new MediaParseError('H.265 access unit: a 1-byte NAL unit has no complete header', p);
      if (len > 0) {
        const nal = au.subarray(p + 4, p + 4 + len);
        const type = nalType(nal);
        if (isIrap(type)) irap = true;
        else if (type === HEVC_NAL_SPS) hasParameterSets = true;
        if (type !== NAL_AUD && type !== NAL_FD) nalus.push(nal);
      }
      p += 4 + len;
    }
    // A viewer can join at any IRAP picture, so each one must come with the parameter sets that decode it.
    if ((irap || keyframe) && !hasParameterSets) nalus.unshift(...this.#parameterSets);
    const payloads: Uint8Array[] = [];
    const max = this.maxPayloadSize;
    let i = 0;
    while (i < nalus.length) {
      const nal = nalus[i];
      if (nal.length > max) {
        fragment(nal, max, payloads);
        i++;
        continue;
      }
      let size = 2 + 2 + nal.length;
      let j = i + 1;
      while (j < nalus.length && size + 2 + nalus[j].length <= max) size += 2 + nalus[j++].length;
      if (j === i + 1) payloads.push(nal);
      else payloads.push(aggregate(nalus, i, j, size));
      i = j;
    }
    return { payloads, markerIndex: payloads.length - 1 };
  }
}

/** §4.4.2: F is the OR of the units' F bits, LayerId and TID the lowest of theirs; then size-prefixed units. */
function aggregate(nalus: readonly Uint8Array[], from: number, to: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let f = 0;
  let layerId = 63;
  let tid = 7;
  let p = 2;
  for (let k = from; k < to; k++) {
    const nal = nalus[k];
    f |= nal[0] & 0x80;
    layerId = Math.min(layerId, ((nal[0] & 0x01) << 5) | (nal[1] >> 3));
    tid = Math.min(tid, nal[1] & 0x07);
    writeU16(out, p, nal.length);
    out.set(nal, p + 2);
    p += 2 + nal.length;
  }
  out[0] = f | (AP << 1) | (layerId >> 5);
  out[1] = ((layerId & 0x1f) << 3) | tid;
  return out;
}

/** §4.4.3: payload header (type 49, the NAL's F/LayerId/TID), FU header (S, E, type), near-equal fragments. */
function fragment(nal: Uint8Array, max: number, out: Uint8Array[]): void {
  const body = nal.length - 2;
  const count = Math.ceil(body / (max - 3));
  const base = Math.floor(body / count);
  const longer = body % count;
  const type = nalType(nal);
  const h0 = (nal[0] & 0x81) | (FU << 1);
  for (let k = 0, p = 2; k < count; k++) {
    const end = p + base + (k < longer ? 1 : 0);
    const payload = new Uint8Array(3 + end - p);
    payload[0] = h0;
    payload[1] = nal[1];
    payload[2] = (k === 0 ? 0x80 : 0) | (k === count - 1 ? 0x40 : 0) | type;
    payload.set(nal.subarray(p, end), 3);
    out.push(payload);
    p = end;
  }
}

function checkNalType(type: number, where: string, offset: number): void {
  if (type < AP) return;
  if (type === AP || type === FU)
    throw new MediaParseError(`H.265 RTP: ${where} nests packet type ${type} inside another`, offset);
  if (type === PACI)
    throw new MediaParseError(
      `H.265 RTP: ${where} is a PACI packet (type 50), which is not supported`,
      offset,
    );
  throw new MediaParseError(
    `H.265 RTP: ${where} has NAL unit type ${type}, which RFC 7798 leaves unspecified`,
    offset,
  );
}

/** Reassembles access units in 4-byte length-prefixed form (a new buffer per unit). */
export class H265Depacketizer extends FrameDepacketizer {
  #runs: Uint8Array[] = [];
  #nalEnds: number[] = [];
  /** The NAL type of the fragmented unit in progress, -1 when none. */
  #fuType = -1;

  constructor(options?: FrameDepacketizerOptions) {
    super(options);
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
    const payload = packet.payload;
    const base = packet.headerSize;
    if (payload.length < 2)
      throw new MediaParseError(
        `H.265 RTP: payload of ${payload.length} bytes, the NAL unit header needs 2`,
        base,
      );
    const type = nalType(payload);
    if (type === FU) {
      this.#appendFragment(payload, base);
      return;
    }
    if (this.#fuType >= 0) {
      throw new MediaParseError(
        `H.265 RTP: packet type ${type} while a fragmented NAL unit of type ${this.#fuType} has no end fragment`,
        base,
      );
    }
    if (type === AP) {
      let p = 2;
      let count = 0;
      while (p < payload.length) {
        if (p + 2 > payload.length)
          throw new MediaParseError(`H.265 RTP: AP unit ${count} has a truncated size field`, base + p);
        const size = (payload[p] << 8) | payload[p + 1];
        if (size < 2) throw new MediaParseError(`H.265 RTP: AP unit ${count} has size ${size}`, base + p);
        if (p + 2 + size > payload.length) {
          throw new MediaParseError(
            `H.265 RTP: AP unit ${count} of ${size} bytes runs past the end, ${payload.length - p - 2} bytes left`,
            base + p,
          );
        }
        checkNalType(nalType(payload.subarray(p + 2)), `AP unit ${count}`, base + p + 2);
        this.#runs.push(payload.subarray(p + 2, p + 2 + size));
        this.#nalEnds.push(this.#runs.length);
        p += 2 + size;
        count++;
      }
      if (count === 0) throw new MediaParseError('H.265 RTP: AP holds no NAL unit', base);
      return;
    }
    checkNalType(type, 'single NAL unit packet', base);
    this.#runs.push(payload);
    this.#nalEnds.push(this.#runs.length);
  }

  #appendFragment(payload: Uint8Array, base: number): void {
    if (payload.length < 3) throw new MediaParseError('H.265 RTP: FU without an FU header', base);
    const fuHeader = payload[2];
    const start = (fuHeader & 0x80) !== 0;
    const end = (fuHeader & 0x40) !== 0;
    const type = fuHeader & 0x3f;
    if (start && end)
      throw new MediaParseError('H.265 RTP: FU header has both start and end bits set', base + 2);
    checkNalType(type, 'FU', base + 2);
    if (start) {
      if (this.#fuType >= 0) {
        throw new MediaParseError(
          `H.265 RTP: FU start while the fragmented NAL unit of type ${this.#fuType} has no end fragment`,
          base + 2,
        );
      }
      this.#fuType = type;
      // The NAL unit header: F, LayerId and TID from the payload header, the type from the FU header.
      this.#runs.push(Uint8Array.of((payload[0] & 0x81) | (type << 1), payload[1]));
    } else if (this.#fuType < 0) {
      throw new MediaParseError(
        `H.265 RTP: FU fragment of a type ${type} NAL unit without its start`,
        base + 2,
      );
    } else if (type !== this.#fuType) {
      throw new MediaParseError(
        `H.265 RTP: FU fragment of type ${type} inside a fragmented NAL unit of type ${this.#fuType}`,
        base + 2,
      );
    }
    if (payload.length > 3) this.#runs.push(payload.subarray(3));
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
      if (isIrap(nalType(data.subarray(start + 4)))) keyframe = true;
    }
    return { data, timestamp, keyframe };
  }
}
