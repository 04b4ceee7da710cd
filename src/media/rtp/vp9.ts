import { MediaParseError } from '../errors.ts';
import { vp9FrameSize } from '../vp9/vpcC.ts';
import { DEFAULT_MAX_PAYLOAD_SIZE } from './h264.ts';
import type { RtpPacket } from './packet.ts';
import {
  type DepacketizedFrame,
  FrameDepacketizer,
  type FrameDepacketizerOptions,
  type RtpPayloads,
} from './payload.ts';

/*
 * VP9 over RTP, RFC 9628 (was draft-ietf-payload-vp9). Each payload starts with the descriptor (§4.2):
 * I P L F B E V Z, then a 7- or 15-bit PictureID (I), layer indices (L) with TL0PICIDX in non-flexible mode,
 * up to three P_DIFF reference indices (flexible mode with P), and the scalability structure (V, §4.2.1).
 * B and E mark the first and last packet of a layer frame; the marker bit ends the picture (all spatial layers
 * of one timestamp).
 *
 * `Vp9Packetizer.packetize(frame)` sends a frame as one layer frame with a 15-bit PictureID, P from the frame
 * header, and on key frames a scalability structure giving the resolution. A superframe (VP9 bitstream spec
 * Annex B: libvpx puts a hidden alt-ref frame and the shown frame in one) travels whole: without layer
 * indices its frames cannot be told apart as layers, and browsers dropped every such picture when each frame
 * went as its own layer frame; their decoder reads the superframe index itself. `parseVp9Descriptor(payload)` reads a descriptor; `Vp9Depacketizer.push(packet)`
 * reassembles pictures: one
 * layer frame as is, several (spatial layers) joined into a superframe (VP9 bitstream spec Annex B) as MP4
 * stores them. Key frames are recognised from the VP9 uncompressed header of the base layer frame, not the P
 * bit alone (some senders, ffmpeg among them, never set it).
 */

export interface Vp9Descriptor {
  /** P: the frame uses inter-picture prediction. */
  interPicturePredicted: boolean;
  flexible: boolean;
  /** B: first packet of a layer frame. */
  beginsFrame: boolean;
  /** E: last packet of a layer frame. */
  endsFrame: boolean;
  /** Z: not used for inter-layer prediction. */
  notReferenceForUpperLayer: boolean;
  pictureId?: number;
  temporalId?: number;
  switchingUp?: boolean;
  spatialId?: number;
  interLayerDependency?: boolean;
  tl0PicIdx?: number;
  /** Reference picture differences (flexible mode). */
  pDiffs?: number[];
  /** From the scalability structure (V): the resolution of each spatial layer when it says so. */
  spatialLayers?: { width: number; height: number }[];
  /** Bytes of descriptor: where the VP9 data starts in the payload. */
  size: number;
}

/** Parses the payload descriptor; `offset` is added to error offsets (the payload's place in its packet). */
export function parseVp9Descriptor(payload: Uint8Array, offset = 0): Vp9Descriptor {
  let p = 0;
  const byte = (what: string): number => {
    if (p >= payload.length)
      throw new MediaParseError(`VP9 RTP: payload descriptor truncated reading ${what}`, offset + p);
    return payload[p++];
  };
  const b0 = byte('the first byte');
  const d: Vp9Descriptor = {
    interPicturePredicted: (b0 & 0x40) !== 0,
    flexible: (b0 & 0x10) !== 0,
    beginsFrame: (b0 & 0x08) !== 0,
    endsFrame: (b0 & 0x04) !== 0,
    notReferenceForUpperLayer: (b0 & 0x01) !== 0,
    size: 0,
  };
  if (b0 & 0x80) {
    const m = byte('PictureID');
    d.pictureId = m & 0x80 ? ((m & 0x7f) << 8) | byte('the 15-bit PictureID') : m;
  }
  if (b0 & 0x20) {
    const l = byte('layer indices');
    d.temporalId = l >> 5;
    d.switchingUp = (l & 0x10) !== 0;
    d.spatialId = (l >> 1) & 0x07;
    d.interLayerDependency = (l & 0x01) !== 0;
    if (!d.flexible) d.tl0PicIdx = byte('TL0PICIDX');
  }
  if (d.flexible && d.interPicturePredicted) {
    // §4.2: up to 3 reference indices, each with N saying whether another follows.
    d.pDiffs = [];
    for (;;) {
      const r = byte('P_DIFF');
      d.pDiffs.push(r >> 1);
      if (!(r & 0x01)) break;
      if (d.pDiffs.length === 3)
        throw new MediaParseError('VP9 RTP: more than 3 P_DIFF reference indices', offset + p - 1);
    }
  }
  if (b0 & 0x02) {
    // §4.2.1 scalability structure
    const ss = byte('the scalability structure');
    const layers = (ss >> 5) + 1;
    if (ss & 0x10) {
      d.spatialLayers = [];
      for (let i = 0; i < layers; i++) {
        const width = (byte('a layer width') << 8) | byte('a layer width');
        const height = (byte('a layer height') << 8) | byte('a layer height');
        d.spatialLayers.push({ width, height });
      }
    }
    if (ss & 0x08) {
      const groups = byte('N_G');
      for (let g = 0; g < groups; g++) {
        const refs = (byte('a picture group entry') >> 2) & 0x03;
        for (let r = 0; r < refs; r++) byte('a picture group P_DIFF');
      }
    }
  }
  d.size = p;
  return d;
}

export interface Vp9PacketizerOptions {
  /** Largest RTP payload, descriptor included (default 1200). */
  maxPayloadSize?: number;
  /** PictureID of the first picture (default random), then incremented modulo 2^15 per picture. */
  firstPictureId?: number;
}

/** The frames of a superframe (Annex B), or `data` itself when it carries no superframe index. */
export function splitVp9Superframe(data: Uint8Array): Uint8Array[] {
  if (data.length === 0) return [];
  const marker = data[data.length - 1];
  if ((marker & 0xe0) !== 0xc0) return [data];
  const frames = (marker & 0x07) + 1;
  const mag = ((marker >> 3) & 0x03) + 1;
  const indexSize = 2 + mag * frames;
  if (indexSize > data.length || data[data.length - indexSize] !== marker) return [data];
  const out: Uint8Array[] = [];
  let p = 0;
  let q = data.length - indexSize + 1;
  for (let i = 0; i < frames; i++) {
    let size = 0;
    for (let b = 0; b < mag; b++) size |= data[q++] << (8 * b);
    size >>>= 0;
    if (p + size > data.length - indexSize) {
      throw new MediaParseError(
        `VP9 superframe: frame ${i} of ${size} bytes runs past the index, ${data.length - indexSize - p} bytes left`,
        data.length - indexSize,
      );
    }
    // Annex B: a zero size marks a frame that is not there (dropped by the encoder).
    if (size > 0) out.push(data.subarray(p, p + size));
    p += size;
  }
  return out;
}

export class Vp9Packetizer {
  readonly maxPayloadSize: number;
  #pictureId: number;

  constructor(options: Vp9PacketizerOptions = {}) {
    const max = options.maxPayloadSize ?? DEFAULT_MAX_PAYLOAD_SIZE;
    if (!Number.isInteger(max) || max < 64 || max > 65535)
      throw new RangeError(`VP9 RTP payload size must be 64..65535 bytes, got ${max}`);
    this.maxPayloadSize = max;
    this.#pictureId = (options.firstPictureId ?? Math.floor(Math.random() * 0x8000)) & 0x7fff;
  }

  /** The payloads of one picture; throws MediaParseError when a frame header or superframe index is malformed. */
  packetize(data: Uint8Array): RtpPayloads {
    const frames = splitVp9Superframe(data);
    const payloads: Uint8Array[] = [];
    if (frames.length === 0) return { payloads, markerIndex: -1 };
    const pictureId = this.#pictureId;
    this.#pictureId = (pictureId + 1) & 0x7fff;
    // A key frame comes first in its superframe; whatever follows it predicts from it.
    const size = vp9FrameSize(frames[0]);
    // §4.2.1: on a key frame, the scalability structure: one spatial layer (N_S = 0), its resolution (Y).
    const ss = size ? [0x10, size.width >> 8, size.width & 0xff, size.height >> 8, size.height & 0xff] : [];
    const first = 3 + ss.length;
    // Every part leaves room for the scalability structure, so the first one fits with it.
    const room = this.maxPayloadSize - first;
    const count = Math.max(1, Math.ceil(data.length / room));
    const base = Math.floor(data.length / count);
    const longer = data.length % count;
    for (let k = 0, p = 0; k < count; k++) {
      const end = p + base + (k < longer ? 1 : 0);
      const header = k === 0 ? first : 3;
      const payload = new Uint8Array(header + end - p);
      payload[0] =
        0x80 |
        (size ? 0 : 0x40) |
        (k === 0 ? 0x08 : 0) |
        (k === count - 1 ? 0x04 : 0) |
        (k === 0 && size ? 0x02 : 0);
      payload[1] = 0x80 | (pictureId >> 8);
      payload[2] = pictureId & 0xff;
      if (k === 0) payload.set(ss, 3);
      payload.set(data.subarray(p, end), header);
      payloads.push(payload);
      p = end;
    }
    return { payloads, markerIndex: payloads.length - 1 };
  }
}

/** Annex B: marker byte 110mmfff (m = bytes per size - 1, f = frames - 1), sizes little-endian, marker again. */
function superframe(frames: readonly Uint8Array[]): Uint8Array {
  let largest = 0;
  let total = 0;
  for (const f of frames) {
    largest = Math.max(largest, f.length);
    total += f.length;
  }
  const mag = largest < 0x100 ? 1 : largest < 0x10000 ? 2 : largest < 0x1000000 ? 3 : 4;
  const marker = 0xc0 | ((mag - 1) << 3) | (frames.length - 1);
  const out = new Uint8Array(total + 2 + mag * frames.length);
  let p = 0;
  for (const f of frames) {
    out.set(f, p);
    p += f.length;
  }
  out[p++] = marker;
  for (const f of frames) {
    for (let b = 0; b < mag; b++) out[p++] = (f.length >>> (8 * b)) & 0xff;
  }
  out[p] = marker;
  return out;
}

/**
 * Whether an RTP payload begins a VP9 key frame: B set, base spatial layer, P clear, and the VP9 uncompressed
 * header in the packet says KEY_FRAME (the P bit alone is not enough: some senders never set it).
 */
export function vp9StartsKeyframe(payload: Uint8Array): boolean {
  try {
    const d = parseVp9Descriptor(payload);
    if (!d.beginsFrame || d.interPicturePredicted || (d.spatialId ?? 0) !== 0) return false;
    return vp9FrameSize(payload.subarray(d.size)) !== undefined;
  } catch {
    return false;
  }
}

/** Reassembles VP9 pictures; a superframe when a picture holds several layer frames. */
export class Vp9Depacketizer extends FrameDepacketizer {
  /** Completed layer frames of the open picture, each as its byte runs. */
  #frames: Uint8Array[][] = [];
  /** Byte runs of the layer frame being received, undefined between an E and the next B. */
  #current: Uint8Array[] | undefined;

  constructor(options?: FrameDepacketizerOptions) {
    super(options);
  }

  protected override startsFrame(packet: RtpPacket): boolean {
    try {
      const d = parseVp9Descriptor(packet.payload);
      return d.beginsFrame && (d.spatialId ?? 0) === 0;
    } catch {
      return false; // append reports it
    }
  }

  protected begin(): void {
    this.discard();
  }

  protected discard(): void {
    this.#frames = [];
    this.#current = undefined;
  }

  protected complete(): boolean {
    return this.#current === undefined && this.#frames.length > 0;
  }

  protected append(packet: RtpPacket): void {
    const d = parseVp9Descriptor(packet.payload, packet.headerSize);
    const data = packet.payload.subarray(d.size);
    if (data.length === 0)
      throw new MediaParseError(
        'VP9 RTP: no VP9 data after the payload descriptor',
        packet.headerSize + d.size,
      );
    if (d.beginsFrame) {
      if (this.#current)
        throw new MediaParseError(
          'VP9 RTP: a layer frame begins before the previous one ended',
          packet.headerSize,
        );
      if (this.#frames.length === 8)
        throw new MediaParseError('VP9 RTP: more than 8 layer frames in one picture', packet.headerSize);
      this.#current = [];
    } else if (!this.#current) {
      throw new MediaParseError(
        'VP9 RTP: a layer frame continues without having begun (no B bit)',
        packet.headerSize,
      );
    }
    this.#current.push(data);
    if (d.endsFrame) {
      this.#frames.push(this.#current);
      this.#current = undefined;
    }
  }

  protected build(timestamp: number): DepacketizedFrame | undefined {
    const frames = this.#frames.map(joinRuns);
    const data = frames.length === 1 ? frames[0] : superframe(frames);
    // The base layer frame comes first; a key frame is the one whose uncompressed header says KEY_FRAME.
    return { data, timestamp, keyframe: vp9FrameSize(frames[0]) !== undefined };
  }
}

function joinRuns(runs: readonly Uint8Array[]): Uint8Array {
  if (runs.length === 1) return runs[0].slice();
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
