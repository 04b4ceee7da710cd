import { EventEmitter } from 'node:events';
import type { Frame, Track } from '../media/Frame.ts';
import { GopCache, type GopCacheLimits, type GopEntry } from './GopCache.ts';
import { log } from './log.ts';

/** Who feeds a stream. `close` is how the server kicks it (API DELETE, shutdown). */
export interface Publisher {
  readonly protocol: string;
  readonly remoteAddress: string;
  readonly id: string;
  close(reason: string): void;
  /**
   * A consumer needs a random access point soon (a gap in the media broke decoding for its viewers). A
   * publisher that can ask its source does (WebRTC: PLI, rate-limited); others ignore it (RTMP has a GOP).
   */
  requestKeyframe?(): void;
}

/**
 * Anything that takes a stream's frames in process: a muxer that serves many viewers (the fMP4 feed), an RTMP
 * player, a recorder. Called synchronously from the publisher's input path, so it must not block.
 */
export interface FrameConsumer {
  /** A new track set: the first publish, a republish, or a codec change. Frames that follow belong to it. */
  onTracks(tracks: readonly Track[]): void;
  onFrame(frame: Frame): void;
  /** The publisher left; the stream may come back on the same path (onTracks again). */
  onUnpublish(): void;
}

export interface StreamEvents {
  tracks: [readonly Track[]];
  unpublished: [];
  viewers: [];
}

const BITRATE_WINDOW_MS = 2000;

/** A named live broadcast: its tracks, its GOP cache and whoever consumes its frames. */
export class Stream extends EventEmitter<StreamEvents> {
  readonly path: string;
  readonly createdAt = Date.now();
  publisher: Publisher | null = null;
  publishedAt = 0;
  tracks: readonly Track[] = [];
  readonly gop: GopCache<Frame>;
  readonly consumers = new Set<FrameConsumer>();
  readonly viewers = new Map<string, number>();
  /** Counts since the stream object was created, across republishes. */
  framesIn = 0;
  bytesIn = 0;
  /** Non-fatal facts about the source a user should see (B-frames, missing audio transcoder...). */
  readonly warnings = new Set<string>();
  #videoTrackId = 0;
  #bitrateBytes = 0;
  #bitrateStart = 0;
  #bitrate = 0;

  constructor(path: string, gopLimits?: GopCacheLimits) {
    super();
    this.path = path;
    this.gop = new GopCache<Frame>(gopLimits);
  }

  get live(): boolean {
    return this.publisher !== null;
  }

  get ready(): boolean {
    return this.publisher !== null && this.tracks.length > 0;
  }

  get videoTrack(): Track | undefined {
    return this.tracks.find((t) => t.kind === 'video');
  }

  /** Bits per second received over the last ~2 s. */
  get bitrate(): number {
    const elapsed = performance.now() - this.#bitrateStart;
    if (elapsed > 2 * BITRATE_WINDOW_MS) return 0;
    return this.#bitrate;
  }

  get viewerCount(): number {
    let n = 0;
    for (const v of this.viewers.values()) n += v;
    return n;
  }

  /** Called by the publisher once it knows every track (and again if they change). */
  setTracks(tracks: readonly Track[]): void {
    if (!this.publisher) throw new Error(`setTracks on "${this.path}" without a publisher`);
    if (tracks.length === 0) throw new Error(`stream "${this.path}" published no track`);
    this.tracks = tracks;
    this.#videoTrackId = tracks.find((t) => t.kind === 'video')?.id ?? 0;
    this.gop.clear();
    this.emit('tracks', tracks);
    for (const c of this.consumers) this.#deliver(c, 'onTracks', tracks);
  }

  pushFrame(frame: Frame): void {
    this.framesIn++;
    const size = frame.data.byteLength;
    this.bytesIn += size;
    this.#countBitrate(size, frame.arrival);
    this.gop.add(frame, this.isRandomAccess(frame), size);
    for (const c of this.consumers) this.#deliver(c, 'onFrame', frame);
  }

  /** A random access point for the stream: a video keyframe, or any keyframe of a stream without video. */
  isRandomAccess(frame: Frame): boolean {
    if (this.#videoTrackId === 0) return frame.keyframe;
    return frame.keyframe && frame.trackId === this.#videoTrackId;
  }

  /**
   * Attaches a consumer. If the stream is ready it gets the tracks and the GOP cache at once, so it can start
   * on a keyframe. Returns the function that detaches it.
   */
  addConsumer(consumer: FrameConsumer): () => void {
    this.consumers.add(consumer);
    if (this.ready) {
      consumer.onTracks(this.tracks);
      for (const entry of this.replayable(this.gop)) consumer.onFrame(entry.item);
    }
    return () => {
      this.consumers.delete(consumer);
    };
  }

  /**
   * What a joiner is replayed of a GOP cache (the stream's, or a feed's of built items): all of it, unless it
   * spans more than `gop.maxReplayMs` and the publisher makes keyframes on request (WebRTC): then nothing, and a
   * keyframe is asked for, so the joiner starts a moment later at the live edge instead of with a burst of
   * seconds of old frames.
   */
  replayable<T>(gop: GopCache<T>): readonly GopEntry<T>[] {
    const max = gop.limits.maxReplayMs;
    if (max === undefined || gop.spanMs <= max || !this.publisher?.requestKeyframe) return gop.entries;
    this.publisher.requestKeyframe();
    return [];
  }

  /** Counts a viewer of `protocol` (for the dashboard and API); returns the function that uncounts it. */
  addViewer(protocol: string): () => void {
    this.viewers.set(protocol, (this.viewers.get(protocol) ?? 0) + 1);
    this.emit('viewers');
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.viewers.get(protocol) ?? 1) - 1;
      if (n <= 0) this.viewers.delete(protocol);
      else this.viewers.set(protocol, n);
      this.emit('viewers');
    };
  }

  /** @internal Use StreamRegistry.publish. */
  attachPublisher(publisher: Publisher): void {
    this.publisher = publisher;
    this.publishedAt = Date.now();
    this.tracks = [];
    this.warnings.clear();
    this.gop.clear();
    this.#bitrate = 0;
    this.#bitrateBytes = 0;
    this.#bitrateStart = performance.now();
  }

  /** @internal Use StreamRegistry.unpublish. */
  detachPublisher(): void {
    this.publisher = null;
    this.tracks = [];
    this.gop.clear();
    this.#bitrate = 0;
    this.emit('unpublished');
    for (const c of this.consumers) this.#deliver(c, 'onUnpublish', undefined);
  }

  /**
   * A consumer that throws is a bug in that consumer: it is detached and logged, and the publisher and every
   * other consumer carry on.
   */
  #deliver<K extends 'onTracks' | 'onFrame' | 'onUnpublish'>(
    consumer: FrameConsumer,
    method: K,
    arg: Parameters<FrameConsumer[K]>[0],
  ): void {
    try {
      (consumer[method] as (a: typeof arg) => void).call(consumer, arg);
    } catch (err) {
      this.consumers.delete(consumer);
      log.error(
        { path: this.path, err, consumer: consumer.constructor.name },
        `stream consumer failed in ${method}; detached`,
      );
    }
  }

  #countBitrate(bytes: number, now: number): void {
    this.#bitrateBytes += bytes;
    const elapsed = now - this.#bitrateStart;
    if (elapsed >= BITRATE_WINDOW_MS) {
      this.#bitrate = Math.round((this.#bitrateBytes * 8 * 1000) / elapsed);
      this.#bitrateBytes = 0;
      this.#bitrateStart = now;
    }
  }
}
