import { MediaParseError } from '../errors.ts';
import { buildAvcDecoderConfig, parseAvcDecoderConfig } from '../h264/avcC.ts';
import { H264_NAL_AUD, H264_NAL_IDR, H264_NAL_PPS, H264_NAL_SPS } from '../h264/nal.ts';
import { NalDepacketizer, type NalFormat, packNalUnits, splitNalUnits, writeAggregate } from './nal.ts';
import type { DepacketizedFrame, FrameDepacketizerOptions, RtpPayloads } from './payload.ts';

/*
 * H.264 over RTP, RFC 6184, packetization-mode 1 (non-interleaved, §6.3): single NAL unit packets (§5.6),
 * STAP-A aggregation (§5.7.1) and FU-A fragmentation (§5.8).
 *
 * `H264Packetizer.packetize(au, keyframe)` turns an access unit in AVCC form (Frame.data) into RTP payloads no
 * bigger than `maxPayloadSize`, putting the avcC's SPS/PPS in front of every IDR that does not carry its own;
 * small NAL units are aggregated, big ones fragmented. `H264Depacketizer.push(packet)` turns packets back
 * into AVCC access units flagged keyframe when they hold an IDR slice, dropping any unit that lost a packet
 * or carried a malformed payload (reported, never thrown).
 */

/** RFC 6184 Table 1 / §5.2 packet types. */
const STAP_A = 24;
const STAP_B = 25;
const MTAP16 = 26;
const MTAP24 = 27;
const FU_A = 28;
const FU_B = 29;
/** Filler data, H.264 Table 7-1. */
const NAL_FILLER = 12;

/**
 * Default largest RTP payload, the usual WebRTC choice: with the RTP header, ~24 bytes of header extensions,
 * a 10-byte SRTP tag, UDP and IPv4 the datagram is about 1274 bytes, under any real path MTU (IPv6 adds 20).
 */
export const DEFAULT_MAX_PAYLOAD_SIZE = 1200;

export interface H264PacketizerOptions {
  /** Largest RTP payload to produce, in bytes (default 1200). */
  maxPayloadSize?: number;
}

export class H264Packetizer {
  readonly maxPayloadSize: number;
  #sps: Uint8Array[] = [];
  #pps: Uint8Array[] = [];

  /** `avcC` is Track.config; without one, IDRs go out with only the parameter sets they carry in band. */
  constructor(avcC?: Uint8Array, options: H264PacketizerOptions = {}) {
    const max = options.maxPayloadSize ?? DEFAULT_MAX_PAYLOAD_SIZE;
    if (!Number.isInteger(max) || max < 64 || max > 65535)
      throw new RangeError(`H.264 RTP payload size must be 64..65535 bytes, got ${max}`);
    this.maxPayloadSize = max;
    if (avcC) this.setConfig(avcC);
  }

  /** Takes SPS/PPS from a new avcC (the track's config changed); throws MediaParseError when it is malformed. */
  setConfig(avcC: Uint8Array): void {
    const config = parseAvcDecoderConfig(avcC);
    this.#sps = config.sps.map((n) => n.slice());
    this.#pps = config.pps.map((n) => n.slice());
  }

  /**
   * The RTP payloads of one access unit (4-byte length-prefixed NAL units). Single NAL unit payloads are views
   * of `au`; aggregates and fragments are new. AUD and filler NAL units are left out: over RTP the marker
   * bit ends an access unit (§5.1) and padding is RTP's job. Throws MediaParseError when a NAL length runs
   * past the end of `au`.
   */
  packetize(au: Uint8Array, keyframe = false): RtpPayloads {
    let hasIdr = false;
    let hasSps = false;
    let hasPps = false;
    const nalus = splitNalUnits(au, H264_FORMAT, (_nal, type) => {
      if (type === H264_NAL_IDR) hasIdr = true;
      else if (type === H264_NAL_SPS) hasSps = true;
      else if (type === H264_NAL_PPS) hasPps = true;
      return type !== H264_NAL_AUD && type !== NAL_FILLER;
    });
    // A viewer can join at any IDR, so each one must come with the parameter sets that decode it.
    if ((hasIdr || keyframe) && !(hasSps && hasPps) && this.#sps.length > 0) {
      nalus.unshift(...(hasSps ? [] : this.#sps), ...(hasPps ? [] : this.#pps));
    }
    const payloads = packNalUnits(nalus, this.maxPayloadSize, H264_FORMAT, aggregate, fragment);
    return { payloads, markerIndex: payloads.length - 1 };
  }
}

/** §5.7.1: STAP-A header (F = OR of the units' F bits, NRI = their maximum), then size-prefixed units. */
function aggregate(nalus: readonly Uint8Array[], from: number, to: number, size: number): Uint8Array {
  const out = writeAggregate(nalus, from, to, size, 1);
  let f = 0;
  let nri = 0;
  for (let k = from; k < to; k++) {
    f |= nalus[k][0] & 0x80;
    nri = Math.max(nri, nalus[k][0] & 0x60);
  }
  out[0] = f | nri | STAP_A;
  return out;
}

/**
 * §5.8: the NAL header becomes FU indicator (F, NRI, type 28) and FU header (S, E, original type); the rest
 * is split into fragments of near-equal size so no packet is left with a tiny tail.
 */
function fragment(nal: Uint8Array, max: number, out: Uint8Array[]): void {
  const header = nal[0];
  const body = nal.length - 1;
  const count = Math.ceil(body / (max - 2));
  const base = Math.floor(body / count);
  const longer = body % count;
  const indicator = (header & 0xe0) | FU_A;
  const type = header & 0x1f;
  for (let k = 0, p = 1; k < count; k++) {
    const end = p + base + (k < longer ? 1 : 0);
    const payload = new Uint8Array(2 + end - p);
    payload[0] = indicator;
    payload[1] = (k === 0 ? 0x80 : 0) | (k === count - 1 ? 0x40 : 0) | type;
    payload.set(nal.subarray(p, end), 2);
    out.push(payload);
    p = end;
  }
}

/**
 * Whether an RTP payload begins an access unit a decoder can start at, from its first bytes only (for
 * forwarding without depacketizing): an SPS or IDR as a single NAL unit, inside a STAP-A, or starting a FU-A.
 */
export function h264StartsKeyframe(payload: Uint8Array): boolean {
  if (payload.length === 0) return false;
  const type = payload[0] & 0x1f;
  if (type === H264_NAL_IDR || type === H264_NAL_SPS) return true;
  if (type === STAP_A) {
    for (let p = 1; p + 2 < payload.length; p += 2 + ((payload[p] << 8) | payload[p + 1])) {
      const inner = payload[p + 2] & 0x1f;
      if (inner === H264_NAL_IDR || inner === H264_NAL_SPS) return true;
    }
    return false;
  }
  if (type === FU_A && payload.length > 1) {
    const inner = payload[1] & 0x1f;
    return (payload[1] & 0x80) !== 0 && (inner === H264_NAL_IDR || inner === H264_NAL_SPS);
  }
  return false;
}

function checkNalType(type: number, where: string, offset: number): void {
  if (type >= 1 && type <= 23) return;
  if (type === 0 || type >= 30)
    throw new MediaParseError(
      `H.264 RTP: ${where} has NAL unit type ${type}, which RFC 6184 leaves undefined`,
      offset,
    );
  if (type === STAP_B || type === MTAP16 || type === MTAP24 || type === FU_B)
    throw new MediaParseError(
      `H.264 RTP: ${where} has packet type ${type}, which is only allowed in interleaved mode (packetization-mode 2)`,
      offset,
    );
  throw new MediaParseError(`H.264 RTP: ${where} nests packet type ${type} inside another aggregate`, offset);
}

const H264_FORMAT: NalFormat = {
  codec: 'H.264',
  headerSize: 1,
  aggregateName: 'STAP-A',
  fragmentName: 'FU-A',
  aggregateType: STAP_A,
  fragmentType: FU_A,
  fuTypeMask: 0x1f,
  minAggregatedUnit: 1,
  type: (header) => header[0] & 0x1f,
  checkType: checkNalType,
  // §5.8: F and NRI from the FU indicator, the type from the FU header.
  fragmentedHeader: (payload, type) => Uint8Array.of((payload[0] & 0xe0) | type),
};

/**
 * Reassembles access units. The result's `frame.data` is a new AVCC buffer; `frame.config` is a new avcC
 * whenever in-band SPS/PPS differ from the last ones seen.
 */
export class H264Depacketizer extends NalDepacketizer {
  #sps: Uint8Array | undefined;
  #pps: Uint8Array | undefined;
  /** The first SPS / PPS of the access unit being built. */
  #unitSps: Uint8Array | undefined;
  #unitPps: Uint8Array | undefined;

  constructor(options?: FrameDepacketizerOptions) {
    super(H264_FORMAT, options);
  }

  protected inspect(nal: Uint8Array, type: number): boolean {
    if (type === H264_NAL_SPS) this.#unitSps ??= nal;
    else if (type === H264_NAL_PPS) this.#unitPps ??= nal;
    return type === H264_NAL_IDR;
  }

  protected override finish(frame: DepacketizedFrame): DepacketizedFrame {
    const sps = this.#unitSps;
    const pps = this.#unitPps;
    this.#unitSps = undefined;
    this.#unitPps = undefined;
    // A publisher may resend only the set that changed; the other one still holds.
    if (sps || pps) {
      const nextSps = sps ?? this.#sps;
      const nextPps = pps ?? this.#pps;
      if (nextSps && nextPps && !(sameBytes(nextSps, this.#sps) && sameBytes(nextPps, this.#pps))) {
        frame.config = buildAvcDecoderConfig([nextSps], [nextPps]);
        this.#sps = nextSps;
        this.#pps = nextPps;
      }
    }
    return frame;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array | undefined): boolean {
  if (!b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
