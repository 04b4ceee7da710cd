import type { GopCacheLimits } from '../core/GopCache.ts';
import { SharedFeed } from '../core/SharedFeed.ts';
import type { Stream } from '../core/Stream.ts';
import type { Frame, Track } from '../media/Frame.ts';
import { encodeFrame, encodeTracks } from './relayProtocol.ts';

export interface RelayItem {
  readonly bytes: Buffer;
  readonly rap: boolean;
}

const feeds = new WeakMap<Stream, RelayFeed>();

/**
 * A stream as relay messages, encoded once per frame for every edge pulling it, with its own GOP cache so an
 * edge that connects mid-GOP starts on a keyframe.
 */
export class RelayFeed extends SharedFeed<Buffer, RelayItem> {
  static of(stream: Stream, limits?: GopCacheLimits): RelayFeed {
    let feed = feeds.get(stream);
    if (!feed) {
      feed = new RelayFeed(stream, limits);
      feeds.set(stream, feed);
    }
    return feed;
  }

  protected onIdle(): void {
    feeds.delete(this.stream);
  }

  onTracks(tracks: readonly Track[]): void {
    this.publishInit(encodeTracks(tracks));
  }

  onFrame(frame: Frame): void {
    const rap = this.stream.isRandomAccess(frame);
    const bytes = encodeFrame(frame);
    this.publishItem({ bytes, rap }, rap, bytes.byteLength);
  }
}
