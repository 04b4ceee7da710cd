import type { Frame, Track } from '../media/Frame.ts';
import { FragmentWriter } from '../media/fmp4/fragment.ts';
import { writeInitSegment } from '../media/fmp4/init.ts';
import type { GopCacheLimits } from './GopCache.ts';
import { type FeedListener, SharedFeed } from './SharedFeed.ts';
import type { Stream } from './Stream.ts';

export interface CmafInit {
  /** ftyp + moov for every track, with no duration (live). */
  readonly bytes: Uint8Array;
  /** The MSE/HLS codecs list, e.g. `avc1.64001f,mp4a.40.2`. */
  readonly codecs: string;
  readonly tracks: readonly Track[];
  /** Increments on every new track set (republish, codec change). */
  readonly generation: number;
  /**
   * The same publish changed its decoder configuration (new parameter sets: a WebRTC encoder adapting, a new
   * sequence header) with the same tracks: timestamps continue, so a player may append this init to what it
   * has instead of starting over. False for a first publish and a republish.
   */
  readonly continues: boolean;
}

export interface CmafFragment {
  /** One moof+mdat holding exactly one frame. */
  readonly bytes: Uint8Array;
  /** A random access point for the whole stream (a video keyframe, or any frame without video). */
  readonly rap: boolean;
  readonly frame: Frame;
  readonly track: Track;
  readonly duration: number;
}

export type CmafListener = FeedListener<CmafInit, CmafFragment>;

const feeds = new WeakMap<Stream, CmafFeed>();

/**
 * The stream as CMAF: every frame muxed once into its own fragment, the same bytes handed to every listener
 * (WebSocket viewers, and later LL-HLS parts). Attached to the stream while it has listeners.
 */
export class CmafFeed extends SharedFeed<CmafInit, CmafFragment> {
  #writer = new FragmentWriter();
  #tracks = new Map<number, Track>();
  /** Per track: the last frame's dts and the last measured frame interval, for estimating durations. */
  #lastDts = new Map<number, number>();
  #lastInterval = new Map<number, number>();
  /** Per track: the duration written into the last fragment, which the next frame's gap is measured against. */
  #lastWritten = new Map<number, number>();
  #generation = 0;

  /** The feed of `stream`, created on first use. */
  static of(stream: Stream, limits?: GopCacheLimits): CmafFeed {
    let feed = feeds.get(stream);
    if (!feed) {
      feed = new CmafFeed(stream, limits);
      feeds.set(stream, feed);
    }
    return feed;
  }

  private constructor(stream: Stream, limits?: GopCacheLimits) {
    super(stream, limits);
  }

  protected onIdle(): void {
    feeds.delete(this.stream);
  }

  onTracks(tracks: readonly Track[]): void {
    // An init still held means no unpublish came between (SharedFeed.onUnpublish drops it).
    const previous = this.init?.tracks;
    const continues =
      previous !== undefined &&
      previous.length === tracks.length &&
      previous.every(
        (t, i) => t.id === tracks[i].id && t.kind === tracks[i].kind && t.codec === tracks[i].codec,
      );
    this.#tracks = new Map(tracks.map((t) => [t.id, t]));
    this.#lastDts.clear();
    this.#lastInterval.clear();
    this.#lastWritten.clear();
    this.#writer = new FragmentWriter();
    this.publishInit({
      bytes: writeInitSegment(tracks),
      codecs: tracks.map((t) => t.codecString).join(','),
      tracks,
      generation: ++this.#generation,
      continues,
    });
  }

  onFrame(frame: Frame): void {
    const track = this.#tracks.get(frame.trackId);
    if (!track || !this.init) return;
    const previous = this.#lastDts.get(track.id);
    const duration = this.#estimateDuration(frame, track);
    const rap = this.stream.isRandomAccess(frame);
    // MSE §3.5.8 (coded frame processing, step 6): a decode time more than twice the last frame's duration past
    // the last one is a discontinuity, after which the browser drops every frame until the next random access
    // point. A source that skipped frames (a WebRTC encoder under load) sends keyframes only when asked.
    const written = this.#lastWritten.get(track.id);
    if (track.kind === 'video' && !rap && previous !== undefined && written !== undefined) {
      if (frame.dts - previous > 2 * written) this.stream.publisher?.requestKeyframe?.();
    }
    this.#lastWritten.set(track.id, duration);
    const fragment: CmafFragment = {
      bytes: this.#writer.fragment(track, frame, duration),
      rap,
      frame,
      track,
      duration,
    };
    this.publishItem(fragment, rap, fragment.bytes.byteLength);
  }

  /**
   * A fragment per frame is written before the next frame exists, so its duration is the source's when known
   * (AAC: 1024 samples) and otherwise the last observed interval. tfdt of the next fragment is authoritative,
   * so an estimate that is off only shifts where one sample ends.
   */
  #estimateDuration(frame: Frame, track: Track): number {
    if (frame.duration > 0) return frame.duration;
    const last = this.#lastDts.get(track.id);
    this.#lastDts.set(track.id, frame.dts);
    if (last !== undefined && frame.dts > last) {
      const interval = frame.dts - last;
      this.#lastInterval.set(track.id, interval);
      return interval;
    }
    return (
      this.#lastInterval.get(track.id) ?? Math.round(track.timescale / (track.kind === 'video' ? 30 : 50))
    );
  }
}
