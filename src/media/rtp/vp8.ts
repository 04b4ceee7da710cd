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
 * VP8 over RTP, RFC 7741. Every payload starts with the payload descriptor (§4.2): X R N S R PID, then when X
 * is set I L T K, a 7- or 15-bit PictureID, TL0PICIDX and TID/Y/KEYIDX. The first packet of a frame has S=1
 * and PID=0, and its data begins with the VP8 payload header (§4.3) whose P bit is 0 on key frames.
 *
 * `Vp8Packetizer.packetize(frame)` splits a frame into payloads with a 15-bit PictureID (browsers use it to
 * detect loss across frames); `Vp8Depacketizer.push(packet)` reassembles frames and flags key frames;
 * `vp8FrameSize(frame)` reads the dimensions of a key frame (RFC 6386 §9.1).
 */

export interface Vp8PacketizerOptions {
  /** Largest RTP payload, descriptor included (default 1200). */
  maxPayloadSize?: number;
  /** PictureID of the first frame (default random), then incremented modulo 2^15 per frame. */
  firstPictureId?: number;
}

/** Descriptor the packetizer writes: X=1, then I=1 and a 15-bit PictureID (M=1). */
const DESCRIPTOR_SIZE = 4;

export class Vp8Packetizer {
  readonly maxPayloadSize: number;
  #pictureId: number;

  constructor(options: Vp8PacketizerOptions = {}) {
    const max = options.maxPayloadSize ?? DEFAULT_MAX_PAYLOAD_SIZE;
    if (!Number.isInteger(max) || max < 64 || max > 65535)
      throw new RangeError(`VP8 RTP payload size must be 64..65535 bytes, got ${max}`);
    this.maxPayloadSize = max;
    this.#pictureId = (options.firstPictureId ?? Math.floor(Math.random() * 0x8000)) & 0x7fff;
  }

  /** The payloads of one VP8 frame, split into near-equal parts; the last carries the marker (§4.1). */
  packetize(frame: Uint8Array): RtpPayloads {
    if (frame.length === 0) return { payloads: [], markerIndex: -1 };
    const room = this.maxPayloadSize - DESCRIPTOR_SIZE;
    const count = Math.ceil(frame.length / room);
    const base = Math.floor(frame.length / count);
    const longer = frame.length % count;
    const pictureId = this.#pictureId;
    this.#pictureId = (pictureId + 1) & 0x7fff;
    const payloads: Uint8Array[] = [];
    for (let k = 0, p = 0; k < count; k++) {
      const end = p + base + (k < longer ? 1 : 0);
      const payload = new Uint8Array(DESCRIPTOR_SIZE + end - p);
      payload[0] = 0x80 | (k === 0 ? 0x10 : 0); // X, S on the first; PID 0: one partition run
      payload[1] = 0x80; // I
      payload[2] = 0x80 | (pictureId >> 8); // M: 15-bit PictureID
      payload[3] = pictureId & 0xff;
      payload.set(frame.subarray(p, end), DESCRIPTOR_SIZE);
      payloads.push(payload);
      p = end;
    }
    return { payloads, markerIndex: payloads.length - 1 };
  }
}

/** The RFC 7741 §4.2 payload descriptor of one packet. */
export interface Vp8Descriptor {
  /** Non-reference frame: can be discarded without affecting other frames. */
  nonReference: boolean;
  start: boolean;
  partitionId: number;
  pictureId?: number;
  tl0PicIdx?: number;
  temporalLayer?: number;
  layerSync?: boolean;
  keyIndex?: number;
  /** Bytes of descriptor: where the VP8 data starts in the payload. */
  size: number;
}

/** Parses the payload descriptor; `offset` is added to error offsets (the payload's place in its packet). */
export function parseVp8Descriptor(payload: Uint8Array, offset = 0): Vp8Descriptor {
  const fail = (what: string, at: number): never => {
    throw new MediaParseError(`VP8 RTP: payload descriptor truncated reading ${what}`, offset + at);
  };
  if (payload.length < 1) fail('the first byte', 0);
  const b0 = payload[0];
  const d: Vp8Descriptor = {
    nonReference: (b0 & 0x20) !== 0,
    start: (b0 & 0x10) !== 0,
    partitionId: b0 & 0x07,
    size: 1,
  };
  if (b0 & 0x80) {
    if (payload.length < 2) fail('the extension byte', 1);
    const x = payload[1];
    let p = 2;
    if (x & 0x80) {
      if (p >= payload.length) fail('PictureID', p);
      if (payload[p] & 0x80) {
        if (p + 1 >= payload.length) fail('the 15-bit PictureID', p);
        d.pictureId = ((payload[p] & 0x7f) << 8) | payload[p + 1];
        p += 2;
      } else d.pictureId = payload[p++];
    }
    if (x & 0x40) {
      if (p >= payload.length) fail('TL0PICIDX', p);
      d.tl0PicIdx = payload[p++];
    }
    if (x & 0x30) {
      if (p >= payload.length) fail('TID/KEYIDX', p);
      const t = payload[p++];
      if (x & 0x20) {
        d.temporalLayer = t >> 6;
        d.layerSync = (t & 0x20) !== 0;
      }
      if (x & 0x10) d.keyIndex = t & 0x1f;
    }
    d.size = p;
  }
  return d;
}

/**
 * Width and height of a VP8 key frame (RFC 6386 §9.1: 3-byte frame tag, start code 9d 01 2a, 14-bit
 * little-endian sizes), undefined for an interframe; MediaParseError when a key frame is malformed. `offset`
 * is added to error offsets.
 */
export function vp8FrameSize(frame: Uint8Array, offset = 0): { width: number; height: number } | undefined {
  if (frame.length < 3)
    throw new MediaParseError(`VP8 frame: ${frame.length} bytes, the frame tag needs 3`, offset);
  if (frame[0] & 0x01) return undefined;
  if (frame.length < 10)
    throw new MediaParseError(`VP8 key frame: ${frame.length} bytes, its header needs 10`, offset + 3);
  if (frame[3] !== 0x9d || frame[4] !== 0x01 || frame[5] !== 0x2a) {
    const code = Buffer.from(frame.subarray(3, 6)).toString('hex');
    throw new MediaParseError(`VP8 key frame: start code ${code}, expected 9d012a`, offset + 3);
  }
  return { width: (frame[6] | (frame[7] << 8)) & 0x3fff, height: (frame[8] | (frame[9] << 8)) & 0x3fff };
}

/** Whether an RTP payload begins a VP8 key frame: S=1, PID=0 and the payload header's P bit clear (§4.3). */
export function vp8StartsKeyframe(payload: Uint8Array): boolean {
  try {
    const d = parseVp8Descriptor(payload);
    return d.start && d.partitionId === 0 && d.size < payload.length && (payload[d.size] & 0x01) === 0;
  } catch {
    return false;
  }
}

/** Reassembles VP8 frames (the concatenated data after each descriptor), flagging key frames. */
export class Vp8Depacketizer extends FrameDepacketizer {
  #parts: Uint8Array[] = [];
  #size = 0;
  #keyframe = false;

  constructor(options?: FrameDepacketizerOptions) {
    super(options);
  }

  protected override startsFrame(packet: RtpPacket): boolean {
    const p = packet.payload;
    // S=1, PID=0 (a descriptor that does not parse is reported by append)
    return p.length > 0 && (p[0] & 0x17) === 0x10;
  }

  protected begin(): void {
    this.discard();
  }

  protected discard(): void {
    this.#parts.length = 0;
    this.#size = 0;
    this.#keyframe = false;
  }

  protected complete(): boolean {
    return this.#parts.length > 0;
  }

  protected append(packet: RtpPacket): void {
    const descriptor = parseVp8Descriptor(packet.payload, packet.headerSize);
    const data = packet.payload.subarray(descriptor.size);
    const at = packet.headerSize + descriptor.size;
    if (data.length === 0) throw new MediaParseError('VP8 RTP: no VP8 data after the payload descriptor', at);
    const first = descriptor.start && descriptor.partitionId === 0;
    if (this.#parts.length === 0) {
      if (!first) {
        throw new MediaParseError(
          `VP8 RTP: frame begins with partition ${descriptor.partitionId}${descriptor.start ? '' : ' continued'}, not the start of partition 0`,
          packet.headerSize,
        );
      }
      // §4.3: the VP8 payload header; P (inverse key frame flag) is 0 on key frames.
      if (data.length < 3)
        throw new MediaParseError(`VP8 RTP: ${data.length} bytes of VP8 payload header, 3 needed`, at);
      this.#keyframe = (data[0] & 0x01) === 0;
      if (this.#keyframe && data.length >= 10) vp8FrameSize(data, at);
    } else if (first) {
      throw new MediaParseError('VP8 RTP: a second frame start within one timestamp', packet.headerSize);
    }
    this.#parts.push(data);
    this.#size += data.length;
  }

  protected build(timestamp: number): DepacketizedFrame | undefined {
    const data = new Uint8Array(this.#size);
    let p = 0;
    for (const part of this.#parts) {
      data.set(part, p);
      p += part.length;
    }
    return { data, timestamp, keyframe: this.#keyframe };
  }
}
