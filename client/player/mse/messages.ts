/** Text messages of the `GET /mse/{path}` WebSocket (docs/protocols/mse.md). */

export interface TrackInfo {
  id: number;
  kind: 'video' | 'audio';
  codec: string;
  codecString: string;
  width?: number;
  height?: number;
  sampleRate?: number;
  channels?: number;
}

/** A track set begins; the next binary message is its init segment. */
export interface InitMessage {
  type: 'init';
  codecs: string;
  tracks: TrackInfo[];
  /** Same publish, same tracks, new decoder configuration: the timeline continues. */
  continues: boolean;
}

export type ServerMessage =
  | InitMessage
  | { type: 'unpublished' }
  | { type: 'skipped'; frames: number }
  | { type: 'error'; message: string };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalNumber(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function parseTrack(value: unknown): TrackInfo | null {
  if (!isRecord(value)) return null;
  const { id, kind, codec, codecString } = value;
  if (typeof id !== 'number' || (kind !== 'video' && kind !== 'audio')) return null;
  return {
    id,
    kind,
    codec: typeof codec === 'string' ? codec : '',
    codecString: typeof codecString === 'string' ? codecString : '',
    width: optionalNumber(value.width),
    height: optionalNumber(value.height),
    sampleRate: optionalNumber(value.sampleRate),
    channels: optionalNumber(value.channels),
  };
}

/**
 * Parses one text message. Returns null for anything this player does not understand (malformed JSON, or a
 * message type from a newer server), which the caller ignores.
 */
export function parseServerMessage(text: string): ServerMessage | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isRecord(value)) return null;
  switch (value.type) {
    case 'init': {
      if (typeof value.codecs !== 'string' || value.codecs === '') return null;
      const tracks = Array.isArray(value.tracks) ? value.tracks.map(parseTrack) : [];
      return {
        type: 'init',
        codecs: value.codecs,
        tracks: tracks.filter((track): track is TrackInfo => track !== null),
        continues: value.continues === true,
      };
    }
    case 'unpublished':
      return { type: 'unpublished' };
    case 'skipped': {
      const frames = optionalNumber(value.frames);
      return { type: 'skipped', frames: frames !== undefined && frames > 0 ? Math.floor(frames) : 0 };
    }
    case 'error':
      return {
        type: 'error',
        message:
          typeof value.message === 'string' ? value.message : 'the server reported an unspecified error',
      };
    default:
      return null;
  }
}
