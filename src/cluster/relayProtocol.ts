import type { Frame, Track } from '../media/Frame.ts';

/**
 * The relay between nodes: one WebSocket from an edge to the origin per stream, binary messages whose first
 * byte is their type. Media is the stream's own frames (timestamps, keyframe flag, payload as MP4 stores it),
 * so the edge packages them for every transport exactly as the origin does.
 */
export const RelayMessage = {
  /** origin → edge, JSON: the claim this relay serves ({ node, generation, publishedAt }). */
  hello: 1,
  /** origin → edge, JSON: the track set (decoder configs in base64); the first publish, a republish, a change. */
  tracks: 2,
  /** origin → edge: one frame (FRAME_HEADER bytes, then the payload). */
  frame: 3,
  /** origin → edge: the publisher left; a tracks message follows if it comes back to this origin. */
  unpublish: 4,
  /** edge → origin: a viewer needs a keyframe (WebRTC PLI/FIR), passed to the publisher. */
  keyframeRequest: 5,
} as const;

export class RelayProtocolError extends Error {}

export interface RelayHello {
  node: string;
  generation: number;
  publishedAt: number;
}

/** type u8, track u8, flags u8 (bit 0 keyframe), reserved u8, dts f64, pts f64, duration u32. */
export const FRAME_HEADER = 24;

export function encodeJson(type: number, value: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(value));
  const out = Buffer.allocUnsafe(1 + body.byteLength);
  out[0] = type;
  body.copy(out, 1);
  return out;
}

export function encodeTracks(tracks: readonly Track[]): Buffer {
  return encodeJson(
    RelayMessage.tracks,
    tracks.map((t) => ({ ...t, config: Buffer.from(t.config).toString('base64') })),
  );
}

/** One copy of the payload per frame, shared by every edge pulling the stream. */
export function encodeFrame(frame: Frame): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER + frame.data.byteLength);
  out[0] = RelayMessage.frame;
  out[1] = frame.trackId;
  out[2] = frame.keyframe ? 1 : 0;
  out[3] = 0;
  out.writeDoubleBE(frame.dts, 4);
  out.writeDoubleBE(frame.pts, 12);
  out.writeUInt32BE(Math.max(0, Math.min(0xffffffff, Math.round(frame.duration))), 20);
  out.set(frame.data, FRAME_HEADER);
  return out;
}

export function decodeFrame(message: Buffer, arrival: number): Frame {
  if (message.byteLength < FRAME_HEADER) {
    throw new RelayProtocolError(`relay frame of ${message.byteLength} bytes is shorter than its header`);
  }
  return {
    trackId: message[1],
    keyframe: (message[2] & 1) === 1,
    dts: message.readDoubleBE(4),
    pts: message.readDoubleBE(12),
    duration: message.readUInt32BE(20),
    data: message.subarray(FRAME_HEADER),
    arrival,
  };
}

const KINDS = new Set(['video', 'audio']);

export function decodeTracks(message: Buffer): Track[] {
  const list = decodeJson(message, 'tracks');
  if (!Array.isArray(list) || list.length === 0)
    throw new RelayProtocolError('relay tracks: not a track list');
  return list.map((t: Record<string, unknown>) => {
    if (
      typeof t.id !== 'number' ||
      !KINDS.has(t.kind as string) ||
      typeof t.codec !== 'string' ||
      typeof t.timescale !== 'number' ||
      typeof t.config !== 'string' ||
      typeof t.codecString !== 'string'
    ) {
      throw new RelayProtocolError(`relay tracks: malformed track ${JSON.stringify(t).slice(0, 200)}`);
    }
    return { ...t, config: new Uint8Array(Buffer.from(t.config, 'base64')) } as unknown as Track;
  });
}

export function decodeJson(message: Buffer, what: string): unknown {
  try {
    return JSON.parse(message.subarray(1).toString());
  } catch {
    throw new RelayProtocolError(`relay ${what}: not JSON`);
  }
}
