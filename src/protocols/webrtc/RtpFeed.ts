import type { RtpCodecName } from './sdp.ts';

/*
 * A stream as RTP: the packets of its video and audio, built (or received) once, handed to every WHEP viewer,
 * which patches only the header (SSRC, sequence number, timestamp, payload type) on its way out. A WHIP
 * publisher feeds one with the packets as they came; an RTMP stream feeds one through a packetizer.
 */

export type FeedKind = 'video' | 'audio';

export interface FeedTrack {
  readonly kind: FeedKind;
  readonly codec: RtpCodecName;
  readonly clockRate: number;
  readonly channels?: number;
  /** The source's fmtp (H.264 profile-level-id…), so a viewer's answer can name a matching profile. */
  readonly fmtp: string;
}

export interface RtpFeedListener {
  /**
   * One packet of `kind`. `packet` is shared with every listener: a listener may patch bytes 1..11 in place
   * for its own send (the next listener patches them again) and must not keep it.
   */
  onRtp(
    kind: FeedKind,
    packet: Buffer,
    sequence: number,
    timestamp: number,
    ssrc: number,
    keyframeStart: boolean,
  ): void;
  /** The source's tracks changed (a codec switch): viewers whose answer no longer fits must leave. */
  onTracksChanged(): void;
  /** The source is gone. */
  onEnd(reason: string): void;
}

/** The last packets of a track by sequence number, to answer NACKs (RFC 4585 §6.2.1) without the source. */
export class RetransmissionCache {
  readonly #packets: (Buffer | undefined)[];
  readonly #sequences: Int32Array;
  readonly #timestamps: Uint32Array;
  readonly #mask: number;

  /** `size` is rounded up to a power of two. */
  constructor(size = 1024) {
    let n = 1;
    while (n < size) n <<= 1;
    this.#packets = new Array<Buffer | undefined>(n);
    this.#sequences = new Int32Array(n).fill(-1);
    this.#timestamps = new Uint32Array(n);
    this.#mask = n - 1;
  }

  add(packet: Buffer, sequence: number, timestamp: number): void {
    const slot = sequence & this.#mask;
    this.#packets[slot] = packet;
    this.#sequences[slot] = sequence;
    this.#timestamps[slot] = timestamp;
  }

  /** The packet with source `sequence` and its source timestamp, or undefined once it has been overwritten. */
  get(sequence: number): { packet: Buffer; timestamp: number } | undefined {
    const slot = sequence & this.#mask;
    const packet = this.#packets[slot];
    if (!packet || this.#sequences[slot] !== sequence) return undefined;
    return { packet, timestamp: this.#timestamps[slot] };
  }

  clear(): void {
    this.#packets.fill(undefined);
    this.#sequences.fill(-1);
  }
}

/** The fan-out half every feed shares: listeners, per-track caches, keyframe requests rate-limited. */
export abstract class RtpFeed {
  readonly path: string;
  video: FeedTrack | null = null;
  audio: FeedTrack | null = null;
  readonly listeners = new Set<RtpFeedListener>();
  readonly cache = { video: new RetransmissionCache(1024), audio: new RetransmissionCache(128) };
  packetsOut = 0;
  keyframeRequests = 0;
  readonly #minKeyframeIntervalMs: number;
  #lastKeyframeRequest = Number.NEGATIVE_INFINITY;
  #pendingKeyframeRequest: NodeJS.Timeout | null = null;

  constructor(path: string, minKeyframeIntervalMs: number) {
    this.path = path;
    this.#minKeyframeIntervalMs = minKeyframeIntervalMs;
  }

  addListener(listener: RtpFeedListener): () => void {
    this.listeners.add(listener);
    this.onListenersChanged();
    return () => {
      if (this.listeners.delete(listener)) this.onListenersChanged();
    };
  }

  /**
   * A viewer needs a keyframe (it joined, or sent PLI/FIR). Requests closer together than the configured
   * interval are merged into one sent when the interval has passed, so a crowd joining costs one keyframe.
   */
  requestKeyframe(): void {
    if (this.#pendingKeyframeRequest) return;
    const wait = this.#lastKeyframeRequest + this.#minKeyframeIntervalMs - performance.now();
    if (wait <= 0) {
      this.#sendKeyframeRequest();
      return;
    }
    this.#pendingKeyframeRequest = setTimeout(() => {
      this.#pendingKeyframeRequest = null;
      this.#sendKeyframeRequest();
    }, wait);
    this.#pendingKeyframeRequest.unref();
  }

  #sendKeyframeRequest(): void {
    this.#lastKeyframeRequest = performance.now();
    this.keyframeRequests++;
    this.askSourceForKeyframe();
  }

  /** Delivers one packet to every listener and keeps it for retransmission. */
  protected deliver(
    kind: FeedKind,
    packet: Buffer,
    sequence: number,
    timestamp: number,
    ssrc: number,
    keyframeStart: boolean,
  ): void {
    this.cache[kind].add(packet, sequence, timestamp);
    for (const listener of this.listeners) {
      listener.onRtp(kind, packet, sequence, timestamp, ssrc, keyframeStart);
      this.packetsOut++;
    }
  }

  protected end(reason: string): void {
    if (this.#pendingKeyframeRequest) clearTimeout(this.#pendingKeyframeRequest);
    this.#pendingKeyframeRequest = null;
    for (const listener of [...this.listeners]) listener.onEnd(reason);
    this.listeners.clear();
    this.cache.video.clear();
    this.cache.audio.clear();
  }

  /** Ask whoever produces the video for a keyframe (PLI to a WHIP publisher; nothing for RTMP). */
  protected abstract askSourceForKeyframe(): void;

  /** The first listener arrived or the last left (RTMP feeds attach to their stream only while watched). */
  protected onListenersChanged(): void {}
}
