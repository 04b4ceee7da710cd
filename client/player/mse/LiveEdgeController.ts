/**
 * Keeps an MSE playhead close to the live edge (after hls.js's latency and gap controllers): start at the
 * first buffered frame, speed up slightly while more than the target is buffered, seek when far behind,
 * step over gaps and stalls, and evict what lies far behind the playhead.
 */

export interface LiveEdgeConfig {
  /** Seconds of buffer to keep ahead of the playhead. */
  targetBuffer: number;
  /** Playback rate used when the excess buffer reaches `rateRampBuffer`; proportional below that. */
  maxRate: number;
  rateRampBuffer: number;
  /** Past this many seconds behind the live edge (or 0.5 s past the target, if later), seek instead of speeding up. */
  maxBehind: number;
  /** Seconds of media kept behind the playhead; older media is removed in chunks of `evictionChunk`. */
  keepBehind: number;
  evictionChunk: number;
  /** A playhead that has not moved for this long while data lies ahead is nudged forward by `stallNudge` s. */
  stallAfterMs: number;
  stallNudge: number;
  /**
   * Each buffer underrun (the playhead ran out of media) raises the buffer target by this much, up to
   * `maxTargetIncrease` above `targetBuffer`, so a jittery connection settles at a latency it can sustain;
   * after `targetDecayMs` without an underrun it steps back down.
   */
  underrunTargetStep: number;
  maxTargetIncrease: number;
  targetDecayMs: number;
}

/**
 * Catch-up reaches 1.25× at 0.4 s of excess buffer: the latency benchmark showed a burst after an upstream
 * stall leaving ~0.6 s of excess, which 1.1× took 6 s to drain (p50 doubled while it did); at 1.25× it takes
 * about 2.5 s, and Chromium keeps the pitch. Past 1 s behind a seek is cheaper than any rate.
 */
export const DEFAULT_LIVE_EDGE: LiveEdgeConfig = {
  targetBuffer: 0.15,
  maxRate: 1.25,
  rateRampBuffer: 0.4,
  maxBehind: 1,
  keepBehind: 10,
  evictionChunk: 2,
  stallAfterMs: 500,
  stallNudge: 0.1,
  underrunTargetStep: 0.1,
  maxTargetIncrease: 0.5,
  targetDecayMs: 30_000,
};

export type TimeRange = readonly [start: number, end: number];

export interface PlayheadSnapshot {
  currentTime: number;
  paused: boolean;
  seeking: boolean;
  /** Buffered ranges in ascending order. */
  ranges: readonly TimeRange[];
  /** How long the playhead has not advanced although the element is playing. */
  stalledMs: number;
}

export type SeekReason = 'start' | 'gap' | 'behind' | 'stall';

export interface LiveEdgePlan {
  seekTo: number | null;
  seekReason: SeekReason | null;
  rate: number;
  evict: { start: number; end: number } | null;
  /** Seconds playable ahead of the playhead without a gap. */
  bufferAhead: number;
  /** Seconds between the playhead and the end of the newest buffered media. */
  latency: number;
}

/** The playhead may sit this far outside a range and still count as in it (frame-boundary rounding). */
const RANGE_TOLERANCE = 0.05;
/** Excess buffer below which the rate stays at 1.0, so jitter of a frame or two does not wobble it. */
const RATE_DEADBAND = 0.03;

/**
 * Decides what to do with the playhead, aiming at `target` seconds of buffer; pure, so it is tested without
 * a browser.
 */
export function planLiveEdge(s: PlayheadSnapshot, c: LiveEdgeConfig, target = c.targetBuffer): LiveEdgePlan {
  const plan: LiveEdgePlan = {
    seekTo: null,
    seekReason: null,
    rate: 1,
    evict: null,
    bufferAhead: 0,
    latency: 0,
  };
  const count = s.ranges.length;
  if (count === 0) return plan;
  const t = s.currentTime;
  const [lastStart, liveEdge] = s.ranges[count - 1];
  plan.latency = Math.max(0, liveEdge - t);

  const index = s.ranges.findIndex(([start, end]) => t >= start - RANGE_TOLERANCE && t <= end);
  if (index === -1) {
    // Before the first range (playback beginning, or after eviction) or in a gap: go to the next media.
    const next = s.ranges.find(([start]) => start > t);
    if (next && !s.seeking) {
      plan.seekTo = next[0];
      plan.seekReason = t < s.ranges[0][0] ? 'start' : 'gap';
    }
    return plan;
  }

  const [, end] = s.ranges[index];
  const ahead = Math.max(0, end - t);
  plan.bufferAhead = ahead;

  if (!s.seeking && !s.paused) {
    // A large target (configured, or raised by underruns) moves the seek point with it: never seek to the
    // very latency the target asks for.
    if (plan.latency > Math.max(c.maxBehind, target + 0.5)) {
      plan.seekTo = Math.max(lastStart, liveEdge - target);
      plan.seekReason = 'behind';
    } else if (s.stalledMs >= c.stallAfterMs) {
      if (ahead > c.stallNudge * 2) {
        plan.seekTo = t + c.stallNudge;
        plan.seekReason = 'stall';
      } else if (index < count - 1) {
        plan.seekTo = s.ranges[index + 1][0];
        plan.seekReason = 'gap';
      }
    }
  }

  const excess = ahead - target;
  if (plan.seekTo === null && excess > RATE_DEADBAND) {
    const rate = 1 + (c.maxRate - 1) * Math.min(1, excess / c.rateRampBuffer);
    plan.rate = Math.round(rate * 100) / 100;
  }

  const oldest = s.ranges[0][0];
  const keepFrom = t - c.keepBehind;
  if (keepFrom - oldest >= c.evictionChunk) plan.evict = { start: oldest, end: keepFrom };
  return plan;
}

export function timeRanges(ranges: TimeRanges): TimeRange[] {
  const out: TimeRange[] = [];
  for (let i = 0; i < ranges.length; i++) out.push([ranges.start(i), ranges.end(i)]);
  return out;
}

/** Below this much buffer ahead a stalled playhead has run out of media (an underrun), not hit a decoder hiccup. */
const UNDERRUN_BUFFER = 0.05;

/** Applies `planLiveEdge` to a video element on every tick, tracking stalls and counting interventions. */
export class LiveEdgeController {
  readonly config: LiveEdgeConfig;
  liveSeeks = 0;
  stallRecoveries = 0;
  underruns = 0;
  lastPlan: LiveEdgePlan | null = null;
  readonly #video: HTMLVideoElement;
  #lastTime = -1;
  #stalledSince = 0;
  #advancing = false;
  #hasPlayed = false;
  #inUnderrun = false;
  #target: number;
  #targetChangedAt = 0;

  constructor(video: HTMLVideoElement, config: LiveEdgeConfig) {
    this.#video = video;
    this.config = config;
    this.#target = config.targetBuffer;
  }

  /** The buffer currently aimed at: the configured target plus what underruns added. */
  get targetBuffer(): number {
    return this.#target;
  }

  /** Whether the playhead moved since the previous tick. */
  get advancing(): boolean {
    return this.#advancing;
  }

  /** Forgets the playhead history, for a new media timeline. */
  reset(): void {
    this.#lastTime = -1;
    this.#stalledSince = 0;
    this.#advancing = false;
    this.#hasPlayed = false;
    this.#inUnderrun = false;
    this.#target = this.config.targetBuffer;
    this.lastPlan = null;
  }

  tick(ranges: readonly TimeRange[], now = performance.now()): LiveEdgePlan {
    const video = this.#video;
    const t = video.currentTime;
    const playing = !video.paused && !video.seeking;
    this.#advancing = playing && this.#lastTime >= 0 && t > this.#lastTime;
    if (!playing || t !== this.#lastTime) this.#stalledSince = 0;
    else if (this.#stalledSince === 0) this.#stalledSince = now;
    this.#lastTime = t;
    if (this.#advancing) {
      this.#hasPlayed = true;
      this.#inUnderrun = false;
    }

    const plan = planLiveEdge(
      {
        currentTime: t,
        paused: video.paused,
        seeking: video.seeking,
        ranges,
        stalledMs: this.#stalledSince === 0 ? 0 : now - this.#stalledSince,
      },
      this.config,
      this.#target,
    );
    this.#adaptTarget(plan, now);
    if (plan.seekTo !== null) {
      video.currentTime = plan.seekTo;
      this.#stalledSince = 0;
      if (plan.seekReason === 'behind') this.liveSeeks++;
      else if (plan.seekReason === 'stall' || plan.seekReason === 'gap') this.stallRecoveries++;
    }
    if (video.playbackRate !== plan.rate) video.playbackRate = plan.rate;
    this.lastPlan = plan;
    return plan;
  }

  #adaptTarget(plan: LiveEdgePlan, now: number): void {
    const c = this.config;
    const ceiling = c.targetBuffer + c.maxTargetIncrease;
    if (
      this.#hasPlayed &&
      !this.#inUnderrun &&
      this.#stalledSince !== 0 &&
      plan.bufferAhead < UNDERRUN_BUFFER
    ) {
      this.#inUnderrun = true;
      this.underruns++;
      this.#target = Math.min(ceiling, this.#target + c.underrunTargetStep);
      this.#targetChangedAt = now;
    } else if (this.#target > c.targetBuffer && now - this.#targetChangedAt > c.targetDecayMs) {
      this.#target = Math.max(c.targetBuffer, this.#target - c.underrunTargetStep);
      this.#targetChangedAt = now;
    }
  }
}
