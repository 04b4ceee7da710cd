/**
 * Glass-to-glass latency of a playing video whose frames carry a time stamp (barcode.ts): on every frame the
 * browser presents (requestVideoFrameCallback), the band is read from the decoded picture and compared with
 * the time the frame is expected on screen. Source and viewer must share a clock: the same machine, or clocks
 * kept in step (NTP) to well under the latencies measured.
 *
 * Resolution: one display refresh. The presentation time is the compositor's estimate on its frame clock, so a
 * very short path (WHIP → WHEP on loopback, ~20 ms) can read a few milliseconds under zero.
 *
 * A stream without the band costs a readback of a thin strip per frame until `giveUpAfter` frames have shown
 * no band, then nothing.
 */
import { bandHeight, decodeRgba } from './barcode.ts';

export interface LatencyReport {
  /** Frames presented while measuring. */
  frames: number;
  /** Frames whose band decoded: one latency sample each, in `samples`. */
  decoded: number;
  /** Frames with a band whose check failed (corrupted, mid-transition): counted, never guessed. */
  failed: number;
  /** Frames in which no band was found. */
  noBand: number;
  /** Milliseconds, in presentation order (the most recent `maxSamples`). */
  samples: number[];
  /** Presentation time of the first decoded frame, ms since the meter started. */
  firstFrameMs: number | null;
}

type FrameCallbackVideo = HTMLVideoElement & {
  requestVideoFrameCallback?(cb: (now: number, meta: { expectedDisplayTime: number }) => void): number;
  cancelVideoFrameCallback?(handle: number): void;
};

export class LatencyMeter {
  readonly report: LatencyReport = {
    frames: 0,
    decoded: 0,
    failed: 0,
    noBand: 0,
    samples: [],
    firstFrameMs: null,
  };
  readonly #video: FrameCallbackVideo;
  readonly #canvas: HTMLCanvasElement;
  readonly #context: CanvasRenderingContext2D | null;
  readonly #maxSamples: number;
  readonly #giveUpAfter: number;
  readonly #startedAt = performance.now();
  #handle = 0;
  #stopped = false;

  constructor(video: HTMLVideoElement, options: { maxSamples?: number; giveUpAfter?: number } = {}) {
    this.#video = video as FrameCallbackVideo;
    this.#canvas = document.createElement('canvas');
    this.#context = this.#canvas.getContext('2d', { willReadFrequently: true });
    this.#maxSamples = options.maxSamples ?? 20_000;
    this.#giveUpAfter = options.giveUpAfter ?? 150;
  }

  static isSupported(): boolean {
    return (
      typeof HTMLVideoElement !== 'undefined' && 'requestVideoFrameCallback' in HTMLVideoElement.prototype
    );
  }

  /** Whether a band has been read at least once. */
  get active(): boolean {
    return this.report.decoded > 0;
  }

  /** The median of the last `n` samples, in ms, or null before the first. */
  recentMedian(n = 30): number | null {
    const recent = this.report.samples.slice(-n).sort((a, b) => a - b);
    return recent.length ? recent[Math.floor(recent.length / 2)] : null;
  }

  start(): this {
    if (!this.#video.requestVideoFrameCallback || !this.#context) return this;
    this.#handle = this.#video.requestVideoFrameCallback(this.#onFrame);
    return this;
  }

  stop(): void {
    this.#stopped = true;
    this.#video.cancelVideoFrameCallback?.(this.#handle);
  }

  /** Forget the samples so far (e.g. the warm-up a benchmark drops). */
  reset(): void {
    Object.assign(this.report, { frames: 0, decoded: 0, failed: 0, noBand: 0, samples: [] });
  }

  #onFrame = (_now: number, meta: { expectedDisplayTime: number }): void => {
    if (this.#stopped) return;
    // On the wall clock, read now: each page's timeOrigin is fixed when it loads, so pages loaded at different
    // times (the publisher's and the viewer's) can disagree by several milliseconds; Date.now() agrees.
    const shownAt = Date.now() + (meta.expectedDisplayTime - performance.now());
    this.#read(shownAt);
    const r = this.report;
    if (r.decoded === 0 && r.noBand >= this.#giveUpAfter) return;
    this.#handle = this.#video.requestVideoFrameCallback!(this.#onFrame);
  };

  #read(shownAt: number): void {
    const video = this.#video;
    const context = this.#context!;
    const width = video.videoWidth;
    const height = bandHeight(video.videoHeight);
    if (width === 0 || height === 0) return;
    if (this.#canvas.width !== width || this.#canvas.height !== height) {
      this.#canvas.width = width;
      this.#canvas.height = height;
    }
    context.drawImage(video, 0, 0, width, height, 0, 0, width, height);
    const result = decodeRgba(context.getImageData(0, 0, width, height).data, width, height);
    const r = this.report;
    r.frames++;
    if (!result.ok) {
      if (result.reason === 'check') r.failed++;
      else r.noBand++;
      return;
    }
    r.decoded++;
    r.firstFrameMs ??= performance.now() - this.#startedAt;
    r.samples.push(shownAt - result.timeMs);
    if (r.samples.length > this.#maxSamples) r.samples.splice(0, r.samples.length - this.#maxSamples);
  }
}
