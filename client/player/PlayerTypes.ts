/** Public types of the Subsecond player: options, states, events and stats. */
import type { MessagingPeer } from '../webrtc/MessagingPeer.ts';
import type { WebRtcStats } from './transport/Transport.ts';

/** The delivery families the player can use, best first: WebRTC (WHEP), WebSocket + MSE, LL-HLS, LL-DASH. */
export type TransportKind = 'webrtc' | 'mse' | 'hls' | 'dash';

export interface PlayerOptions {
  /** Origin of the Subsecond server, e.g. `https://live.example.com`. Default: the page's origin. */
  server?: string;
  /** Stream path, e.g. `live/cam1`. */
  path: string;
  /** 'auto' tries every available transport, best first, falling back in order. Default 'auto'. */
  transport?: 'auto' | TransportKind;
  /**
   * The transports to try, in this order (e.g. `['webrtc', 'hls']`); takes precedence over `transport`.
   * Unsupported ones are skipped. Default: every transport, best first.
   */
  transports?: readonly TransportKind[];
  /** Buffer the live-edge controller aims to keep ahead of the playhead, in seconds. Default 0.15. */
  targetBuffer?: number;
  /** How often the `stats` event fires, in milliseconds. Default 1000. */
  statsIntervalMs?: number;
  /**
   * A token granting `play` on the path, for a server with `auth.play: token`: sent as a bearer (WHEP) or
   * `?token=` (WebSocket, LL-HLS, LL-DASH).
   */
  token?: string;
  /** Over WebRTC, carry messaging channels on the session's data channels (`channel(name, { peer })`). */
  messaging?: MessagingPeer;
}

export type PlayerState = 'connecting' | 'playing' | 'waiting-for-publisher' | 'reconnecting' | 'stopped';

export interface StateChange {
  state: PlayerState;
  /** Only for 'reconnecting': the delay before the next attempt. */
  retryInMs?: number;
  /** Why the player left 'playing' or 'connecting', when known (e.g. `stream not live`). */
  reason?: string;
}

export interface PlayerError {
  message: string;
  /** The transport that met it, if any. */
  transport?: TransportKind;
  /** True when the player gave up (nothing left to try); otherwise it recovers on its own. */
  fatal: boolean;
}

export interface PlayerStats {
  state: PlayerState;
  transport: TransportKind | null;
  /** Seconds of media buffered ahead of the playhead. */
  bufferAhead: number;
  /** The buffer the player aims at now; it grows after underruns on a jittery connection. */
  targetBuffer: number;
  /** Estimated latency in seconds: live edge (end of buffer) minus the playhead. */
  latency: number;
  playbackRate: number;
  currentTime: number;
  decodedFrames: number;
  droppedFrames: number;
  /** Received bits per second over the last 2 s. */
  bitrate: number;
  bytesReceived: number;
  width: number;
  height: number;
  /** The codecs the media pipeline was set up for, e.g. `avc1.64001f,mp4a.40.2`. */
  codecs: string;
  reconnects: number;
  /** Frames the server dropped because this viewer fell behind. */
  skippedFrames: number;
  /** Playhead nudges and gap jumps made to recover from stalls. */
  stallRecoveries: number;
  /** Seeks to the live edge after falling too far behind. */
  liveSeeks: number;
  /** Times playback ran out of media while the stream was live. */
  underruns: number;
  /** WebRTC only: the receiver's own counters. */
  webrtc?: WebRtcStats;
}

/** Event names: the one way to listen to a player (`player.on(PlayerEvent.State, …)`). */
export const PlayerEvent = {
  State: 'state',
  Stats: 'stats',
  Error: 'error',
} as const;

export type PlayerEvent = (typeof PlayerEvent)[keyof typeof PlayerEvent];

export type PlayerEvents = {
  [PlayerEvent.State]: StateChange;
  [PlayerEvent.Stats]: PlayerStats;
  [PlayerEvent.Error]: PlayerError;
};
