import { type TimeRange, timeRanges } from './LiveEdgeController.ts';
import { SourceBufferQueue, type SourceBufferQueueHooks } from './SourceBufferQueue.ts';

/** ManagedMediaSource (Safari 17+, iOS) where MediaSource is missing or restricted; otherwise MediaSource. */
export function mediaSourceClass(): typeof MediaSource | null {
  const scope = globalThis as { ManagedMediaSource?: typeof MediaSource; MediaSource?: typeof MediaSource };
  return scope.MediaSource ?? scope.ManagedMediaSource ?? null;
}

/**
 * One MediaSource with one SourceBuffer, attached to a video element for one track set (one `init`). A new
 * track set gets a new attachment: rebuilding is simpler and sturdier than `changeType` plus timestamp
 * offsets when a publisher restarts its clock.
 */
export class MediaSourceAttachment {
  mimeType: string;
  readonly mediaSource: MediaSource;
  readonly #video: HTMLVideoElement;
  readonly #hooks: SourceBufferQueueHooks;
  #queue: SourceBufferQueue | null = null;
  /** Media that arrives before `sourceopen`, the init segment first. */
  #pending: ArrayBuffer[] = [];
  #detached = false;

  static isTypeSupported(mimeType: string): boolean {
    return mediaSourceClass()?.isTypeSupported(mimeType) ?? false;
  }

  constructor(
    video: HTMLVideoElement,
    mimeType: string,
    initSegment: ArrayBuffer,
    hooks: SourceBufferQueueHooks,
  ) {
    const MediaSourceImpl = mediaSourceClass();
    if (!MediaSourceImpl) throw new Error('this browser has no Media Source Extensions');
    this.#video = video;
    this.mimeType = mimeType;
    this.#hooks = hooks;
    this.#pending.push(initSegment);
    this.mediaSource = new MediaSourceImpl();
    // ManagedMediaSource only opens when remote playback (AirPlay) is off.
    if (MediaSourceImpl !== (globalThis as { MediaSource?: unknown }).MediaSource)
      video.disableRemotePlayback = true;
    const url = URL.createObjectURL(this.mediaSource);
    this.mediaSource.addEventListener(
      'sourceopen',
      () => {
        URL.revokeObjectURL(url);
        this.#open();
      },
      { once: true },
    );
    video.src = url;
  }

  get queue(): SourceBufferQueue | null {
    return this.#queue;
  }

  append(data: ArrayBuffer): void {
    if (this.#detached) return;
    if (this.#queue) this.#queue.append(data);
    else this.#pending.push(data);
  }

  remove(start: number, end: number): void {
    if (this.#queue && !this.#queue.removing) this.#queue.remove(start, end);
  }

  /**
   * Takes a new init segment for the same tracks whose timeline continues (new parameter sets mid-stream),
   * without a new MediaSource: what is buffered stays and playback does not restart. It goes through changeType
   * (MSE §3.2) even for the same codecs string, so the parser expects a new configuration either way. Returns
   * false when that cannot be done here and the caller must rebuild.
   */
  continueWith(mimeType: string, initSegment: ArrayBuffer): boolean {
    if (this.#detached || !this.#queue) return false;
    if (typeof this.#queue.sourceBuffer.changeType !== 'function') return false;
    this.#queue.changeType(mimeType);
    this.mimeType = mimeType;
    this.#queue.append(initSegment);
    return true;
  }

  /** Buffered media (the intersection of all tracks), or nothing before the SourceBuffer exists. */
  bufferedRanges(): TimeRange[] {
    if (!this.#queue || this.#detached) return [];
    try {
      return timeRanges(this.#queue.sourceBuffer.buffered);
    } catch {
      // InvalidStateError: the SourceBuffer was removed from its MediaSource.
      return [];
    }
  }

  /**
   * Stops feeding the element. With `release`, also empties the element; without, the last frame stays on
   * screen until the caller points `src` at a new attachment.
   */
  detach(release: boolean): void {
    if (this.#detached) return;
    this.#detached = true;
    this.#pending = [];
    this.#queue?.dispose();
    this.#queue = null;
    if (release) {
      this.#video.removeAttribute('src');
      this.#video.load();
    }
  }

  #open(): void {
    if (this.#detached) return;
    let sourceBuffer: SourceBuffer;
    try {
      sourceBuffer = this.mediaSource.addSourceBuffer(this.mimeType);
    } catch (error) {
      this.#detached = true;
      this.#hooks.onError(`could not create a SourceBuffer for ${this.mimeType}: ${String(error)}`);
      return;
    }
    // Fragments carry their own decode times (tfdt); 'segments' keeps them.
    sourceBuffer.mode = 'segments';
    this.#queue = new SourceBufferQueue(sourceBuffer, this.#hooks);
    for (const data of this.#pending) this.#queue.append(data);
    this.#pending = [];
  }
}
