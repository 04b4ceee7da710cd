import type { WebRtcConfig } from '../../../config/schema.ts';
import type { FeedKind, FeedTrack } from '../RtpFeed.ts';
import type { ChosenCodec, OfferSummary } from '../sdp.ts';

/*
 * The control messages between the main process and a WHEP worker, over the fork's IPC channel (JSON). Media
 * never travels here: RTP packets take the socket pair of RtpChannel.ts.
 */

export type Anchor = Record<FeedKind, { unixMs: number; rtp: number } | null>;

export interface FeedDescription {
  readonly feedId: number;
  readonly path: string;
  readonly video: FeedTrack | null;
  readonly audio: FeedTrack | null;
  readonly anchor: Anchor;
}

export type ToWorker =
  | {
      type: 'start';
      index: number;
      config: WebRtcConfig;
      udpPort: number;
      logLevel: string;
    }
  /** Creates or refreshes the worker's copy of a feed (its tracks, its NTP↔RTP mapping). */
  | ({ type: 'feed' } & FeedDescription)
  | { type: 'anchor'; feedId: number; anchor: Anchor }
  | { type: 'feedTracksChanged'; feedId: number }
  | { type: 'feedEnd'; feedId: number; reason: string }
  /** The worker has no viewer of the feed left and main stopped sending its packets. */
  | { type: 'feedDrop'; feedId: number }
  | {
      type: 'offer';
      requestId: number;
      feedId: number;
      path: string;
      remoteAddress: string;
      clientIsLoopback: boolean;
      offer: string;
      summary: OfferSummary;
      /** Per m-section of `summary`, the codec main chose for it, or null (answered inactive). */
      chosen: (ChosenCodec | null)[];
    }
  | { type: 'trickle'; requestId: number; sessionId: string; body: string }
  | { type: 'close'; sessionId: string; reason: string }
  | { type: 'describe'; requestId: number }
  | { type: 'stats'; requestId: number }
  | { type: 'shutdown' };

export interface WorkerStats {
  readonly index: number;
  readonly pid: number;
  readonly sessions: number;
  readonly packetsSent: number;
  readonly bytesSent: number;
  readonly packetsReceivedFromMain: number;
  readonly cpuSeconds: number;
  readonly rssBytes: number;
  readonly eventLoopUtilization: number;
}

export type FromWorker =
  | { type: 'ready'; udpPort: number }
  | { type: 'answer'; requestId: number; sessionId: string; etag: string; answer: string }
  | { type: 'trickled'; requestId: number; ok: boolean }
  | { type: 'described'; requestId: number; sessions: Record<string, unknown>[] }
  | { type: 'stats'; requestId: number; stats: WorkerStats }
  | { type: 'failed'; requestId: number; status: number; message: string }
  | { type: 'closed'; sessionId: string; reason: string }
  /** A viewer asked for a keyframe (joined, PLI/FIR): main asks the feed's source, rate-limited there. */
  | { type: 'keyframe'; feedId: number };
