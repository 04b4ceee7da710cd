import { MediaParseError } from '../errors.ts';
import { HEVC_NAL_PPS, HEVC_NAL_SPS, HEVC_NAL_VPS, parseHevcDecoderConfig } from '../h265/hvcC.ts';
import { DEFAULT_MAX_PAYLOAD_SIZE } from './h264.ts';
import { NalDepacketizer, type NalFormat, packNalUnits, splitNalUnits, writeAggregate } from './nal.ts';
import type { FrameDepacketizerOptions, RtpPayloads } from './payload.ts';

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
    let irap = false;
    let hasParameterSets = false;
    const nalus = splitNalUnits(au, H265_FORMAT, (_nal, type) => {
      if (isIrap(type)) irap = true;
      else if (type === HEVC_NAL_SPS) hasParameterSets = true;
      return type !== NAL_AUD && type !== NAL_FD;
    });
    // A viewer can join at any IRAP picture, so each one must come with the parameter sets that decode it.
    if ((irap || keyframe) && !hasParameterSets) nalus.unshift(...this.#parameterSets);
    const payloads = packNalUnits(nalus, this.maxPayloadSize, H265_FORMAT, aggregate, fragment);
    return { payloads, markerIndex: payloads.length - 1 };
  }
}

/** §4.4.2: F is the OR of the units' F bits, LayerId and TID the lowest of theirs; then size-prefixed units. */
function aggregate(nalus: readonly Uint8Array[], from: number, to: number, size: number): Uint8Array {
  const out = writeAggregate(nalus, from, to, size, 2);
  let f = 0;
  let layerId = 63;
  let tid = 7;
  for (let k = from; k < to; k++) {
    const nal = nalus[k];
    f |= nal[0] & 0x80;
    layerId = Math.min(layerId, ((nal[0] & 0x01) << 5) | (nal[1] >> 3));
    tid = Math.min(tid, nal[1] & 0x07);
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

const H265_FORMAT: NalFormat = {
  codec: 'H.265',
  headerSize: 2,
  aggregateName: 'AP',
  fragmentName: 'FU',
  aggregateType: AP,
  fragmentType: FU,
  fuTypeMask: 0x3f,
  minAggregatedUnit: 2,
  type: nalType,
  checkType: checkNalType,
  // §4.4.3: F, LayerId and TID from the payload header, the type from the FU header.
  fragmentedHeader: (payload, type) => Uint8Array.of((payload[0] & 0x81) | (type << 1), payload[1]),
};

/** Reassembles access units in 4-byte length-prefixed form (a new buffer per unit). */
export class H265Depacketizer extends NalDepacketizer {
  constructor(options?: FrameDepacketizerOptions) {
    super(H265_FORMAT, options);
  }

  protected inspect(_nal: Uint8Array, type: number): boolean {
    return isIrap(type);
  }
}
