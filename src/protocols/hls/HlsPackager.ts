import { withPlaylistQuery } from '../../auth/MediaUriSigning.ts';
import type { CmafFragment, CmafInit, CmafListener } from '../../core/CmafFeed.ts';
import type { Track } from '../../media/Frame.ts';
import { writeInitSegment } from '../../media/fmp4/init.ts';
// The one HTTP error type, under the name hls/ and dash/ use until the segmenter gets its neutral home.
import { HttpError as HlsRequestError } from '../../transport/HttpError.ts';
import { MediaBody } from './MediaBody.ts';
import { renderMediaPlaylist, renderMultivariantPlaylist } from './playlist.ts';

export { HlsRequestError };

export interface HlsPackagerOptions {
  /** Seconds; segments are cut at the first random access point at or after it. */
  segmentTarget: number;
  /** Seconds; no part is longer (for a regular frame rate). */
  partTarget: number;
  /** Complete segments listed in the playlist. */
  playlistSegments: number;
  maxBytes: number;
  /** Milliseconds a blocking request may wait; 0: three target durations (RFC 8216bis §6.2.5.2). */
  blockTimeoutMs: number;
  /**
   * The query every media URI of the playlist carries (a signature, src/auth/MediaUriSigning.ts), the same
   * for every viewer of a window; absent or '': none.
   */
  mediaUriQuery?: () => string;
}

/** Segments at the start of a timeline during which its wall-clock anchor may move earlier. */
const ANCHOR_SETTLE_SEGMENTS = 2;
/**
 * A move of the anchor this small (ms) leaves a DASH player's clock close enough to its target; once none
 * larger happened for this much media (s), the start-up burst is over and the anchor counts as stable.
 */
const ANCHOR_STABLE_SHIFT_MS = 20;
const ANCHOR_STABLE_SECONDS = 1;
/** The init segment of one track set; segments after a republish or codec change use a new one. */
export interface HlsInit {
  /** Counts track sets within this packager: 1, 2, … */
  readonly generation: number;
  readonly bytes: Uint8Array;
  readonly codecs: string;
  readonly tracks: readonly Track[];
  /** Per track id, an init segment of that track alone (LL-DASH has one representation per track). */
  readonly trackInits: ReadonlyMap<number, Uint8Array>;
}

export class HlsPart {
  readonly msn: number;
  readonly index: number;
  /** Starts with a random access point: decodable without the parts before it (EXT-X-PART INDEPENDENT). */
  readonly independent: boolean;
  /** Decode time of its first fragment of the timing track, in that track's timescale. */
  readonly startDts: number;
  readonly body = new MediaBody();
  /** Seconds; final once the body is complete. */
  duration = 0;

  constructor(msn: number, index: number, independent: boolean, startDts: number) {
    this.msn = msn;
    this.index = index;
    this.independent = independent;
    this.startDts = startDts;
  }
}

export class HlsSegment {
  readonly msn: number;
  readonly init: HlsInit;
  /** An EXT-X-DISCONTINUITY precedes it: a new track set or a timestamp jump. */
  readonly discontinuity: boolean;
  /** Wall-clock time of its first sample, ms since the epoch (EXT-X-PROGRAM-DATE-TIME). */
  /** Wall-clock time of the segment's first frame; moves earlier while its timeline's anchor settles. */
  programDateTime: number;
  readonly startDts: number;
  readonly parts: HlsPart[] = [];
  readonly body = new MediaBody();
  /** The same fragments by track, for LL-DASH's one representation per track. */
  readonly #trackBodies = new Map<number, MediaBody>();
  /** Seconds; final once the body is complete. */
  duration = 0;
  /** Frames of the timing track, for the FRAME-RATE the multivariant playlist announces. */
  frames = 0;

  constructor(msn: number, init: HlsInit, discontinuity: boolean, programDateTime: number, startDts: number) {
    this.msn = msn;
    this.init = init;
    this.discontinuity = discontinuity;
    this.programDateTime = programDateTime;
    this.startDts = startDts;
  }

  get complete(): boolean {
    return this.body.complete;
  }

  /** The fragments of one track; created on first use, so a request may follow it before its first frame. */
  trackBody(trackId: number): MediaBody {
    let body = this.#trackBodies.get(trackId);
    if (!body) {
      body = new MediaBody();
      if (this.complete) body.finish();
      this.#trackBodies.set(trackId, body);
    }
    return body;
  }

  finish(): void {
    for (const p of this.parts) p.body.finish();
    for (const b of this.#trackBodies.values()) b.finish();
    this.body.finish();
  }
}

/** A stretch of media with continuous timestamps and one init segment: an LL-DASH Period. */
export interface HlsTimeline {
  /** Counts timelines within this packager. */
  readonly id: number;
  readonly firstMsn: number;
  readonly startDts: number;
  readonly timescale: number;
  /** Wall-clock time of startDts, ms since the epoch. */
  readonly wallMs: number;
  readonly init: HlsInit;
}

/** Waiter.part codes beside part indexes. */
const WHOLE_SEGMENT = -1;
const SEGMENT_BEGUN = -2;
const ANCHOR_STABLE = -3;
/** A complete segment exists and the wall-clock anchor is stable: what a player joining now needs. */
const JOINABLE = -4;

interface Waiter {
  readonly msn: number;
  /** WHOLE_SEGMENT: segment `msn` must be complete; SEGMENT_BEGUN: it must have begun; ANCHOR_STABLE: the timeline's wall-clock anchor is stable. */
  readonly part: number;
  readonly resolve: () => void;
  readonly reject: (err: HlsRequestError) => void;
  timer: NodeJS.Timeout | null;
}

/** A request for a part or segment: its body, or why it cannot be had. */
export type MediaLookup = { body: MediaBody } | { missing: string };

/**
 * RTMP/FLV timestamps are whole milliseconds, so a 30 fps frame lasts 33 or 34 ms: a part may reach its
 * target this much late before the frame that would carry it past is moved to the next part.
 */
const TIMESTAMP_JITTER = 0.0015;

/**
 * One stream as LL-HLS: segments cut at random access points, each made of parts, both made of the per-frame
 * fragments CmafFeed muxed once for every viewer of every protocol (no second mux, no copy). Keeps a bounded
 * window of segments in memory, renders each playlist version once for all pollers, and holds blocking
 * playlist requests (RFC 8216bis §6.2.5.2) until the part they ask for exists.
 */
export class HlsPackager implements CmafListener {
  readonly path: string;
  /** Unique per packager, in every media URI: a stream that restarts later never reuses a cached URI. */
  readonly epoch: string;
  readonly options: HlsPackagerOptions;
  /** Complete segments still held, oldest first (the playlist lists the newest `playlistSegments`). */
  readonly segments: HlsSegment[] = [];
  current: HlsSegment | null = null;
  ended = false;
  /** Bumps whenever the playlist changes; rendered playlists are cached per version. */
  version = 0;
  /** Discontinuities of segments that are no longer held (EXT-X-DISCONTINUITY-SEQUENCE). */
  #droppedDiscontinuities = 0;
  #init: HlsInit | null = null;
  readonly #inits = new Map<number, HlsInit>();
  #generation = 0;
  #nextMsn = 0;
  #timingTrack: Track | null = null;
  /** The next segment follows a gap in the timeline (republish, codec change, timestamps going back). */
  #discontinuity = false;
  #lastDts = -1;
  #lastDuration = 0;
  #maxSegmentDuration = 0;
  /** Maps the timing track's dts to wall-clock time for the current track set. */
  #anchor = { dts: 0, wallMs: 0 };
  /** Until this dts the anchor may still move earlier (see #settleAnchor), never before #anchorFloor. */
  #settleUntilDts = 0;
  #anchorFloor = 0;
  /** The dts at which the anchor last moved by more than ANCHOR_STABLE_SHIFT_MS (-1: no timeline yet). */
  #anchorMovedDts = -1;
  #lastWallEnd = 0;
  #waiters = new Set<Waiter>();
  #cache: { version: number; query: string; full: Buffer | null; delta: Buffer | null } = {
    version: -1,
    query: '',
    full: null,
    delta: null,
  };
  #detachFeed: (() => void) | null = null;
  /** Something changed that held requests may be waiting for; answered at the end of the current input. */
  #dirty = false;
  /** Where the current continuous timeline began (a new one after every discontinuity), for LL-DASH. */
  timeline: HlsTimeline | null = null;

  constructor(path: string, options: HlsPackagerOptions) {
    if (!(options.partTarget < options.segmentTarget)) {
      throw new RangeError(
        `hls.partTargetMs (${options.partTarget * 1000}) must be below hls.segmentTargetMs (${options.segmentTarget * 1000})`,
      );
    }
    this.path = path;
    this.options = options;
    this.epoch = `${Date.now().toString(36)}${Math.floor(Math.random() * 1296)
      .toString(36)
      .padStart(2, '0')}`;
  }

  /** Whether a feed is attached (the stream is live). */
  get attached(): boolean {
    return this.#detachFeed !== null;
  }

  attach(detach: () => void): void {
    this.#detachFeed?.();
    this.#detachFeed = detach;
  }

  detach(): void {
    this.#detachFeed?.();
    this.#detachFeed = null;
  }

  get init(): HlsInit | null {
    return this.#init;
  }

  initFor(generation: number): HlsInit | undefined {
    return this.#inits.get(generation);
  }

  /** Integer seconds no listed segment exceeds (§4.4.3.1); it only grows, as the spec wants it constant. */
  get targetDuration(): number {
    const configured = Math.ceil(this.options.segmentTarget - 1e-9);
    return Math.max(configured, Math.ceil(this.#maxSegmentDuration - 1e-9));
  }

  get blockTimeoutMs(): number {
    return this.options.blockTimeoutMs > 0 ? this.options.blockTimeoutMs : 3000 * this.targetDuration;
  }

  /** Segments the playlist lists, oldest first. */
  get listed(): HlsSegment[] {
    return this.segments.slice(-this.options.playlistSegments);
  }

  get discontinuitySequence(): number {
    let n = this.#droppedDiscontinuities;
    const firstListed = this.segments.length - this.listed.length;
    for (let i = 0; i < firstListed; i++) if (this.segments[i].discontinuity) n++;
    return n;
  }

  /** Bytes of media held (each fragment counted once, though a segment and its part both refer to it). */
  get bytes(): number {
    let n = this.current?.body.bytes ?? 0;
    for (const s of this.segments) n += s.body.bytes;
    return n;
  }

  /** The newest complete part, or null. */
  get lastPart(): HlsPart | null {
    const cur = this.current;
    if (cur) {
      for (let i = cur.parts.length - 1; i >= 0; i--) if (cur.parts[i].body.complete) return cur.parts[i];
    }
    const last = this.segments.at(-1);
    return last ? (last.parts.at(-1) ?? null) : null;
  }

  /** The part being produced: what EXT-X-PRELOAD-HINT names. */
  get openPart(): HlsPart | null {
    const part = this.current?.parts.at(-1);
    return part && !part.body.complete ? part : null;
  }

  // CmafListener

  onInit(init: CmafInit): void {
    this.#closeSegment(this.#endDts());
    this.#init = {
      generation: ++this.#generation,
      bytes: init.bytes,
      codecs: init.codecs,
      tracks: init.tracks,
      trackInits: new Map(init.tracks.map((t) => [t.id, writeInitSegment([t])])),
    };
    this.#inits.set(this.#init.generation, this.#init);
    this.#timingTrack = init.tracks.find((t) => t.kind === 'video') ?? init.tracks[0] ?? null;
    this.#discontinuity = this.#nextMsn > 0;
    this.#lastDts = -1;
    this.#anchorMovedDts = -1;
    if (this.ended) {
      this.ended = false;
      this.#changed();
    }
    this.#flush();
  }

  onItem(fragment: CmafFragment): void {
    const timing = this.#timingTrack;
    if (!this.#init || !timing || this.ended) return;
    if (fragment.track.id === timing.id) this.#onTimingFragment(fragment, timing);
    const segment = this.current;
    if (!segment) return; // waiting for the first random access point
    const part = segment.parts[segment.parts.length - 1];
    part.body.append(fragment.bytes);
    segment.body.append(fragment.bytes);
    segment.trackBody(fragment.track.id).append(fragment.bytes);
    if (fragment.track.id === timing.id) segment.frames++;
    if (segment.body.bytes > this.options.maxBytes) {
      // A stream without keyframes cannot grow memory without bound: end the segment, wait for a keyframe.
      this.#abandonSegment();
    }
    this.#flush();
  }

  onUnpublish(): void {
    this.#closeSegment(this.#endDts());
    this.ended = true;
    this.#discontinuity = true;
    this.#changed();
    this.#flush();
  }

  #onTimingFragment(fragment: CmafFragment, timing: Track): void {
    const dts = fragment.frame.dts;
    const segment = this.current;
    if (segment && dts < this.#lastDts) {
      // Timestamps went back without a new track set: the old timeline ends here.
      this.#closeSegment(this.#endDts());
      this.#discontinuity = true;
    }
    const ts = timing.timescale;
    if (this.timeline && dts < this.#settleUntilDts) this.#settleAnchor(fragment, dts, ts);
    const cur = this.current;
    if (!cur) {
      if (fragment.rap) this.#openSegment(fragment, dts);
    } else {
      const part = cur.parts[cur.parts.length - 1];
      const inSegment = (dts - cur.startDts) / ts;
      if (fragment.rap && inSegment >= this.options.segmentTarget - TIMESTAMP_JITTER) {
        this.#closeSegment(dts);
        this.#openSegment(fragment, dts);
      } else {
        // Close the part before this frame if the frame would carry it past the part target.
        const endWithThis = (dts + fragment.duration - part.startDts) / ts;
        if (dts > part.startDts && endWithThis > this.options.partTarget + TIMESTAMP_JITTER) {
          this.#closePart(part, dts);
          cur.parts.push(new HlsPart(cur.msn, cur.parts.length, fragment.rap, dts));
        }
      }
    }
    this.#lastDts = dts;
    this.#lastDuration = fragment.duration;
  }

  #openSegment(fragment: CmafFragment, dts: number): void {
    const init = this.#init!;
    const ts = this.#timingTrack!.timescale;
    if (this.#discontinuity || this.#nextMsn === 0 || this.#lastDts < 0) {
      // A new timeline: anchor its dts to the frame's arrival, never before the previous segment's end.
      const arrivalWall = performance.timeOrigin + fragment.frame.arrival;
      this.#anchor = { dts, wallMs: Math.max(arrivalWall, this.#lastWallEnd) };
      this.#settleUntilDts = dts + ANCHOR_SETTLE_SEGMENTS * this.options.segmentTarget * ts;
      this.#anchorMovedDts = dts;
      // The previous timeline's end: a new one never starts before it.
      this.#anchorFloor = this.#lastWallEnd;
      this.timeline = {
        id: (this.timeline?.id ?? 0) + 1,
        firstMsn: this.#nextMsn,
        startDts: dts,
        timescale: ts,
        wallMs: this.#anchor.wallMs,
        init,
      };
    }
    const pdt = this.#anchor.wallMs + ((dts - this.#anchor.dts) / ts) * 1000;
    const segment = new HlsSegment(this.#nextMsn++, init, this.#discontinuity, pdt, dts);
    this.#discontinuity = false;
    segment.parts.push(new HlsPart(segment.msn, 0, true, dts));
    this.current = segment;
    this.#dirty = true;
  }

  /**
   * Whether a player may join from the playlist as it is: it lists two complete segments and its
   * PROGRAM-DATE-TIMEs no longer move. GStreamer's hlsdemux2 cannot parse a playlist made of parts only, and
   * from one holding a single segment it cannot advance and then fails to match the next playlist to it
   * ("Could not synchronize media playlists") and stalls. Only joins in a stream's first seconds wait.
   */
  get joinable(): boolean {
    return this.segments.length >= 2 && this.lastPart !== null && this.anchorStable;
  }

  /** Whether the current timeline's wall-clock anchor may still move (its first segments). */
  get anchorSettling(): boolean {
    return this.timeline !== null && this.#lastDts < this.#settleUntilDts;
  }

  /**
   * Whether the anchor has stopped moving in any way that matters: settled, or no move of more than
   * ANCHOR_STABLE_SHIFT_MS over the last ANCHOR_STABLE_SECONDS of media (the encoder's start-up burst is over
   * and frames arrive in real time). Before a new timeline's first segment it is not.
   */
  get anchorStable(): boolean {
    if (!this.anchorSettling) return true;
    if (this.#lastDts < 0 || this.#anchorMovedDts < 0) return false;
    return (this.#lastDts - this.#anchorMovedDts) / this.timeline!.timescale >= ANCHOR_STABLE_SECONDS;
  }

  /**
   * A timeline's first frame often arrives late: an encoder that starts while its source is already running
   * sends the backlog in a burst (ffmpeg: ~1.2 s after capture, then ~0.1 s). Anchored there, the wall clock
   * of every PROGRAM-DATE-TIME and of the DASH availabilityStartTime runs that much behind, and a DASH player
   * plays that much later than its target while believing it is on it. So for the first segments the anchor
   * follows the earliest wall time any frame implies; moving earlier is safe, as a segment asked for before it
   * begins is held until it does.
   */
  #settleAnchor(fragment: CmafFragment, dts: number, ts: number): void {
    const implied = performance.timeOrigin + fragment.frame.arrival - ((dts - this.#anchor.dts) / ts) * 1000;
    const wallMs = Math.max(implied, this.#anchorFloor);
    const shift = this.#anchor.wallMs - wallMs;
    if (shift <= 1) return;
    if (shift > ANCHOR_STABLE_SHIFT_MS) this.#anchorMovedDts = dts;
    this.#anchor = { dts: this.#anchor.dts, wallMs };
    this.timeline = { ...this.timeline!, wallMs };
    const first = this.timeline.firstMsn;
    for (const segment of [...this.segments, ...(this.current ? [this.current] : [])]) {
      if (segment.msn >= first) segment.programDateTime -= shift;
    }
    this.#dirty = true;
  }

  #closePart(part: HlsPart, endDts: number): void {
    part.duration = (endDts - part.startDts) / this.#timingTrack!.timescale;
    part.body.finish();
    this.#changed();
  }

  #closeSegment(endDts: number): void {
    const segment = this.current;
    if (!segment) return;
    const ts = this.#timingTrack!.timescale;
    const part = segment.parts[segment.parts.length - 1];
    if (!part.body.complete) part.duration = (endDts - part.startDts) / ts;
    segment.duration = (endDts - segment.startDts) / ts;
    segment.finish();
    this.current = null;
    this.#lastWallEnd = segment.programDateTime + segment.duration * 1000;
    if (segment.duration > this.#maxSegmentDuration) this.#maxSegmentDuration = segment.duration;
    this.segments.push(segment);
    this.#evict();
    this.#changed();
  }

  /** Ends the segment where it is and starts the next at the next random access point, after a gap. */
  #abandonSegment(): void {
    this.#closeSegment(this.#endDts());
    this.#discontinuity = true;
  }

  /** Where the timeline ends now: the last timing frame's end. */
  #endDts(): number {
    return this.#lastDts + this.#lastDuration;
  }

  /**
   * Segments stay downloadable after leaving the playlist for as long as the playlist lasts (RFC 8216bis
   * §6.2.2: the segment's duration plus the longest playlist holding it), so twice the listed count is held,
   * within the byte budget.
   */
  #evict(): void {
    const keep = this.options.playlistSegments * 2;
    let bytes = this.bytes;
    while (this.segments.length > keep || (this.segments.length > 1 && bytes > this.options.maxBytes)) {
      const dropped = this.segments.shift()!;
      bytes -= dropped.body.bytes;
      if (dropped.discontinuity) this.#droppedDiscontinuities++;
    }
    const used = new Set(this.segments.map((s) => s.init.generation));
    if (this.current) used.add(this.current.init.generation);
    if (this.#init) used.add(this.#init.generation);
    for (const g of this.#inits.keys()) if (!used.has(g)) this.#inits.delete(g);
  }

  #changed(): void {
    this.version++;
    this.#dirty = true;
  }

  /**
   * Answers the requests the changes of this call satisfy, once the state is whole again: a closed part's
   * successor exists, so the playlist they get names it in EXT-X-PRELOAD-HINT.
   */
  #flush(): void {
    if (!this.#dirty) return;
    this.#dirty = false;
    for (const w of this.#waiters) {
      if (this.ended || this.#satisfies(w.msn, w.part)) this.#release(w);
    }
  }

  #release(w: Waiter): void {
    if (w.timer) clearTimeout(w.timer);
    this.#waiters.delete(w);
    w.resolve();
  }

  #satisfies(msn: number, part: number): boolean {
    if (part === ANCHOR_STABLE) return this.anchorStable;
    if (part === JOINABLE) return this.joinable;
    if (part === SEGMENT_BEGUN) {
      if (this.current && this.current.msn >= msn) return true;
      const last = this.segments.at(-1);
      return last !== undefined && last.msn >= msn;
    }
    if (part < 0) {
      const last = this.segments.at(-1);
      return last !== undefined && last.msn >= msn;
    }
    const p = this.lastPart;
    if (!p) return false;
    return p.msn > msn || (p.msn === msn && p.index >= part);
  }

  // Requests

  /**
   * Resolves once the playlist holds segment `msn` (with `part`: that part, or a later one), per RFC 8216bis
   * §6.2.5.2. Throws 400 for requests too far ahead, 503 when the wait outlasts the block timeout.
   * `onCancel` receives the function that abandons the wait (the client went away); abandoning resolves it.
   */
  async waitFor(
    msn: number | undefined,
    part: number | undefined,
    onCancel?: (cancel: () => void) => void,
    /** The multivariant playlist a player joins from: held until the stream is `joinable`. */
    join = false,
  ) {
    const target = this.#target(msn, part, join);
    if (!target) return;
    return new Promise<void>((resolve, reject) => {
      const cancel = this.#hold(target.msn, target.part, resolve, reject);
      onCancel?.(() => {
        cancel();
        resolve();
      });
    });
  }

  /**
   * The same as waitFor, without a promise: `ready` is called synchronously the moment the part is complete
   * (so every held request is answered in that same turn, with no queued continuation in between), or
   * `fail` with a 503. Returns null when nothing needs waiting for (answer now), else the function that
   * abandons the hold. `ready` and `fail` must not throw: they run on the publisher's input path.
   */
  holdFor(
    msn: number | undefined,
    part: number | undefined,
    ready: () => void,
    fail: (err: HlsRequestError) => void,
  ): (() => void) | null {
    const target = this.#target(msn, part);
    return target ? this.#hold(target.msn, target.part, ready, fail) : null;
  }

  /** What a request with these directives waits for, or null when the playlist already satisfies it. */
  #target(
    msn: number | undefined,
    part: number | undefined,
    join = false,
  ): { msn: number; part: number } | null {
    if (part !== undefined && msn === undefined) {
      throw new HlsRequestError(400, `_HLS_part=${part} needs _HLS_msn as well (RFC 8216bis §6.2.5.2)`);
    }
    if (this.ended) return null;
    // A plain request: anything with at least one part will do (a joining player: see `joinable`).
    if (msn === undefined) {
      if (join) return this.joinable ? null : { msn: 0, part: JOINABLE };
      return this.lastPart ? null : { msn: 0, part: 0 };
    }
    const lastMsn = this.current?.msn ?? this.segments.at(-1)?.msn ?? 0;
    if (msn > lastMsn + 2) {
      throw new HlsRequestError(
        400,
        `_HLS_msn=${msn} is more than two segments past the last one in the playlist (${lastMsn})`,
      );
    }
    if (part !== undefined) {
      const limit = this.options.partTarget < 1 ? Math.ceil(3 / this.options.partTarget) : 3;
      const last = this.lastPart;
      const ahead = last && msn === last.msn ? part - last.index : part + 1;
      if (ahead > limit) {
        throw new HlsRequestError(
          400,
          `_HLS_part=${part} of _HLS_msn=${msn} is more than ${limit} parts past the last part in the playlist`,
        );
      }
    }
    const p = part ?? WHOLE_SEGMENT;
    return this.#satisfies(msn, p) ? null : { msn, part: p };
  }

  /**
   * Resolves once segment `msn` has begun (it is then streamed as it is produced): LL-DASH clients ask for a
   * segment by the clock, a moment before it starts. 404 for one further ahead than the next.
   */
  async waitForSegmentStart(msn: number, onCancel?: (cancel: () => void) => void): Promise<void> {
    if (this.#satisfies(msn, SEGMENT_BEGUN) || this.ended) return;
    const next = (this.current?.msn ?? this.segments.at(-1)?.msn ?? -1) + 1;
    if (msn > next) throw new HlsRequestError(404, `segment ${msn} of "${this.path}" does not exist yet`);
    return new Promise<void>((resolve, reject) => {
      const cancel = this.#hold(msn, SEGMENT_BEGUN, resolve, reject);
      onCancel?.(() => {
        cancel();
        resolve();
      });
    });
  }

  /**
   * Resolves once the current timeline's wall-clock anchor is stable (at once if it is, or when the stream
   * ends): LL-DASH's availabilityStartTime is that anchor, and a player that read it before a later move
   * earlier keeps its clock late. Throws 503 after the block timeout.
   */
  async waitForStableAnchor(onCancel?: (cancel: () => void) => void): Promise<void> {
    if (this.anchorStable || this.ended) return;
    return new Promise<void>((resolve, reject) => {
      const cancel = this.#hold(0, ANCHOR_STABLE, resolve, reject);
      onCancel?.(() => {
        cancel();
        resolve();
      });
    });
  }

  #hold(msn: number, part: number, ready: () => void, fail: (err: HlsRequestError) => void): () => void {
    const timeout = this.blockTimeoutMs;
    const waiter: Waiter = { msn, part, resolve: ready, reject: fail, timer: null };
    waiter.timer = setTimeout(() => {
      this.#waiters.delete(waiter);
      const what =
        part === ANCHOR_STABLE
          ? 'a stable clock anchor'
          : part === JOINABLE
            ? 'two complete segments'
            : part < 0
              ? `segment ${msn}`
              : `part ${part} of segment ${msn}`;
      fail(new HlsRequestError(503, `${what} of "${this.path}" did not appear within ${timeout} ms`));
    }, timeout);
    this.#waiters.add(waiter);
    return () => {
      if (waiter.timer) clearTimeout(waiter.timer);
      this.#waiters.delete(waiter);
    };
  }

  get waiting(): number {
    return this.#waiters.size;
  }

  /** The media playlist, rendered once per version (and delta form) and shared by every request. */
  mediaPlaylist(skip: boolean): Buffer {
    const query = this.options.mediaUriQuery?.() ?? '';
    if (this.#cache.version !== this.version || this.#cache.query !== query)
      this.#cache = { version: this.version, query, full: null, delta: null };
    if (skip) {
      this.#cache.delta ??= Buffer.from(withPlaylistQuery(renderMediaPlaylist(this, true), query));
      return this.#cache.delta;
    }
    this.#cache.full ??= Buffer.from(withPlaylistQuery(renderMediaPlaylist(this, false), query));
    return this.#cache.full;
  }

  multivariantPlaylist(): string {
    return renderMultivariantPlaylist(this);
  }

  /** Measured from the listed segments (or the one being made): peak and average bits per second, frame rate. */
  measure(): { peak: number; average: number; frameRate: number } {
    let peak = 0;
    let bytes = 0;
    let seconds = 0;
    let frames = 0;
    const measured = this.listed.filter((s) => s.duration > 0);
    for (const s of measured) {
      peak = Math.max(peak, (s.body.bytes * 8) / s.duration);
      bytes += s.body.bytes;
      seconds += s.duration;
      frames += s.frames;
    }
    const cur = this.current;
    if (seconds === 0 && cur) {
      const done = cur.parts.filter((p) => p.body.complete);
      seconds = done.reduce((n, p) => n + p.duration, 0);
      bytes = done.reduce((n, p) => n + p.body.bytes, 0);
      frames = cur.frames;
      peak = seconds > 0 ? (bytes * 8) / seconds : 0;
    }
    const average = seconds > 0 ? (bytes * 8) / seconds : 0;
    return {
      peak: Math.ceil(peak),
      average: Math.ceil(average),
      frameRate: seconds > 0 ? frames / seconds : 0,
    };
  }

  findSegment(msn: number): MediaLookup {
    if (this.current && this.current.msn === msn) return { body: this.current.body };
    const s = this.#segment(msn);
    if (s) return { body: s.body };
    return { missing: this.#whyMissing(msn, `segment ${msn}`) };
  }

  /** One track's fragments of segment `msn` (LL-DASH). */
  findTrackSegment(msn: number, trackId: number): MediaLookup {
    const segment = this.current?.msn === msn ? this.current : this.#segment(msn);
    if (!segment) return { missing: this.#whyMissing(msn, `segment ${msn}`) };
    if (!segment.init.tracks.some((t) => t.id === trackId)) {
      return { missing: `segment ${msn} of "${this.path}" has no track ${trackId}` };
    }
    return { body: segment.trackBody(trackId) };
  }

  findPart(msn: number, index: number): MediaLookup {
    const segment = this.current?.msn === msn ? this.current : this.#segment(msn);
    const part = segment?.parts[index];
    if (part) return { body: part.body };
    if (segment) return { missing: `part ${index} of segment ${msn} of "${this.path}" does not exist` };
    return { missing: this.#whyMissing(msn, `part ${index} of segment ${msn}`) };
  }

  #segment(msn: number): HlsSegment | undefined {
    const first = this.segments[0];
    if (!first) return undefined;
    const s = this.segments[msn - first.msn];
    return s?.msn === msn ? s : undefined;
  }

  #whyMissing(msn: number, what: string): string {
    const oldest = this.segments[0]?.msn ?? this.current?.msn;
    if (oldest !== undefined && msn < oldest)
      return `${what} of "${this.path}" is no longer held (oldest is ${oldest})`;
    return `${what} of "${this.path}" does not exist`;
  }

  /** Ends every held request and follower: the packager is being dropped. */
  close(): void {
    this.detach();
    this.current?.finish();
    for (const w of [...this.#waiters]) this.#release(w);
  }
}
