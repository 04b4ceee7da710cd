import type { Frame, Track } from '../media/Frame.ts';
import { GopCache, type GopCacheLimits } from './GopCache.ts';
import type { FrameConsumer, Stream } from './Stream.ts';

/** A viewer of a shared feed: the init of each track set, then the items built from each frame. */
export interface FeedListener<I, T> {
  onInit(init: I): void;
  onItem(item: T): void;
  onUnpublish(): void;
}

/**
 * The fan-out engine: a stream turned once per frame into one protocol's bytes (`T`), handed to every listener
 * of that protocol. It attaches to the stream with its first listener and detaches with its last, and keeps its
 * own GOP cache of built items so a joining viewer starts on a keyframe without anything being built again.
 * Subclasses (CmafFeed, RtmpPlayFeed, …) only turn tracks into an init and frames into items.
 */
export abstract class SharedFeed<I, T> implements FrameConsumer {
  readonly stream: Stream;
  init: I | null = null;
  readonly gop: GopCache<T>;
  readonly listeners = new Set<FeedListener<I, T>>();
  #detach: (() => void) | null = null;

  constructor(stream: Stream, limits?: GopCacheLimits) {
    this.stream = stream;
    this.gop = new GopCache<T>(limits);
  }

  abstract onTracks(tracks: readonly Track[]): void;
  abstract onFrame(frame: Frame): void;

  /** Called when the last listener left and the feed detached from its stream. */
  protected abstract onIdle(): void;

  /**
   * Adds a listener; if the stream is ready it receives the init and the GOP cache at once. Returns the
   * function that removes it.
   */
  addListener(listener: FeedListener<I, T>): () => void {
    this.listeners.add(listener);
    if (!this.#detach) {
      // The stream replays its own GOP cache into onTracks/onFrame, which reaches this listener.
      this.#detach = this.stream.addConsumer(this);
    } else if (this.init) {
      listener.onInit(this.init);
      for (const entry of this.stream.replayable(this.gop)) listener.onItem(entry.item);
    }
    return () => {
      if (!this.listeners.delete(listener)) return;
      if (this.listeners.size === 0 && this.#detach) {
        this.#detach();
        this.#detach = null;
        this.init = null;
        this.gop.clear();
        this.onIdle();
      }
    };
  }

  onUnpublish(): void {
    this.init = null;
    this.gop.clear();
    for (const l of this.listeners) l.onUnpublish();
  }

  /** A new track set: items built before it are of no use to anyone joining after. */
  protected publishInit(init: I): void {
    this.init = init;
    this.gop.clear();
    for (const l of this.listeners) l.onInit(init);
  }

  /** `rap`: a random access point for the stream (Stream.isRandomAccess). */
  protected publishItem(item: T, rap: boolean, bytes: number): void {
    this.gop.add(item, rap, bytes);
    for (const l of this.listeners) l.onItem(item);
  }
}
