import type { MessagingPeer } from '../../webrtc/MessagingPeer.ts';
import type { TransportKind } from '../PlayerTypes.ts';

/** What a transport needs to play one stream into one video element. */
export interface TransportContext {
  readonly video: HTMLVideoElement;
  /** Server origin, e.g. `https://live.example.com`. */
  readonly server: string;
  /** Normalised stream path, e.g. `live/cam1`. */
  readonly path: string;
  /** Seconds of buffer a buffering transport aims to hold ahead of the playhead. */
  readonly targetBuffer: number;
  /** A token granting play on the path (auth.play: token), if the application has one. */
  readonly token?: string;
  /** WebRTC only: lend the peer connection to messaging (a data channel in the offer). */
  readonly messaging?: MessagingPeer;
}

export interface TransportClosed {
  reason: string;
  /** This transport cannot work here (browser lacks the API or codec, server lacks the endpoint): try the next. */
  unavailable?: boolean;
  /** Retrying cannot help (e.g. the server refused the path). */
  fatal?: boolean;
}

/** How a transport reports to the player. Calls made after `close()` are ignored by the player. */
export interface TransportObserver {
  /** Media flows and the playhead advances. */
  onPlaying(): void;
  /** The server says the publisher left; the connection stays open while it waits for it to return. */
  onWaitingForPublisher(): void;
  /** The session ended without `close()` being called; the player decides whether and when to reconnect. */
  onClosed(closed: TransportClosed): void;
  /** Something went wrong that the transport recovers from (or that `onClosed` follows). */
  onError(message: string): void;
}

/** What a WebRTC receiver reports beyond the common stats (RTCInboundRtpStreamStats). */
export interface WebRtcStats {
  jitterBufferMs: number;
  packetsLost: number;
  nacks: number;
  freezes: number;
  rttMs: number;
  framesPerSecond: number;
  /**
   * Source clock to playout, ms: the receiver's clock minus the video's `estimatedPlayoutTimestamp` (the NTP
   * time of the frame on screen, from the RTCP sender reports' NTP↔RTP mapping: the publisher's capture clock
   * for a WHIP source, the server's arrival clock for RTMP). Needs the clocks in step (same machine, or NTP);
   * null when the browser gives no estimate or it is not plausible (clocks apart).
   */
  senderToPlayoutMs: number | null;
}

export interface TransportStats {
  bufferAhead: number;
  targetBuffer: number;
  latency: number;
  playbackRate: number;
  bitrate: number;
  bytesReceived: number;
  codecs: string;
  skippedFrames: number;
  stallRecoveries: number;
  liveSeeks: number;
  underruns: number;
  webrtc?: WebRtcStats;
}

/** One delivery family. The player drives it; reconnection policy lives in the player, not here. */
export interface Transport {
  readonly kind: TransportKind;
  /** Opens a session. After `onClosed` the player may call it again; what is on screen stays until new media. */
  connect(): void;
  /** Ends the session and releases the video element. No observer call follows. */
  close(): void;
  stats(): TransportStats;
}

/** A transport class as the player's 'auto' selection sees it. */
export interface TransportFactory {
  readonly kind: TransportKind;
  /** Whether this browser has what the transport needs. */
  isSupported(): boolean;
  create(context: TransportContext, observer: TransportObserver): Transport;
}
