import { EventEmitter } from 'node:events';
import type { GopCacheLimits } from './GopCache.ts';
import { type Publisher, Stream } from './Stream.ts';

export class StreamBusyError extends Error {
  readonly path: string;
  constructor(path: string) {
    super(`publish refused for "${path}": stream already has a publisher`);
    this.path = path;
  }
}

export interface RegistryEvents {
  /** A publisher started; `republished` when the path had viewers waiting from an earlier publish. */
  published: [Stream, { republished: boolean }];
  unpublished: [Stream];
  /** Tracks, viewer counts or warnings changed: dashboards refresh. */
  changed: [Stream];
  removed: [Stream];
}

/**
 * What a cluster adds to the registry (src/cluster): streams this node does not have are looked up in the
 * cluster's directory, and a publish is confirmed against it. Without one the registry is this node alone.
 */
export interface StreamResolver {
  /** Makes `path` local if another node is its origin (an edge pulls it); resolves when ready or not found. */
  resolve(path: string): Promise<void>;
  /** A viewer asked for `path` (every request of a polling protocol): keeps a pulled stream held. */
  touch(path: string): void;
  /** Rejects with StreamBusyError when another node is the origin of `stream.path`. */
  confirmPublish(stream: Stream, publisher: Publisher): Promise<void>;
}

/**
 * Every stream on this node by path. A stream stays registered while it has a publisher or consumers (viewers
 * waiting for the publisher to come back), and is removed when it has neither.
 */
export class StreamRegistry extends EventEmitter<RegistryEvents> {
  readonly #streams = new Map<string, Stream>();
  readonly gopLimits: GopCacheLimits | undefined;
  resolver: StreamResolver | null = null;

  constructor(gopLimits?: GopCacheLimits) {
    super();
    this.gopLimits = gopLimits;
  }

  get(path: string): Stream | undefined {
    return this.#streams.get(path);
  }

  /**
   * The stream at `path` as a viewer needs it: local, or (in a cluster) pulled from its origin first. Every
   * transport looks streams up through this, so one hook makes all of them work on an edge.
   */
  async acquire(path: string): Promise<Stream | undefined> {
    const local = this.#streams.get(path);
    if (!this.resolver) return local;
    this.resolver.touch(path);
    if (local?.ready) return local;
    await this.resolver.resolve(path);
    return this.#streams.get(path);
  }

  /** Resolves once the cluster (if any) agrees this node is the origin of `stream`; rejects StreamBusyError. */
  async confirmPublish(stream: Stream, publisher: Publisher): Promise<void> {
    if (this.resolver) await this.resolver.confirmPublish(stream, publisher);
  }

  list(): Stream[] {
    return [...this.#streams.values()];
  }

  /** Live streams (with a publisher), sorted by path. */
  live(): Stream[] {
    return this.list()
      .filter((s) => s.live)
      .sort((a, b) => a.path.localeCompare(b.path));
  }

  /** Claims `path` for a publisher; throws StreamBusyError when it already has one. */
  publish(path: string, publisher: Publisher): Stream {
    let stream = this.#streams.get(path);
    if (stream?.publisher) throw new StreamBusyError(path);
    const republished = stream !== undefined;
    if (!stream) {
      stream = new Stream(path, this.gopLimits);
      this.#streams.set(path, stream);
      const s = stream;
      s.on('tracks', () => this.emit('changed', s));
      s.on('viewers', () => {
        this.emit('changed', s);
        this.#collect(s);
      });
    }
    stream.attachPublisher(publisher);
    this.emit('published', stream, { republished });
    return stream;
  }

  /** Ends `publisher`'s claim on its stream; a stale publisher (already replaced) is ignored. */
  unpublish(stream: Stream, publisher: Publisher): void {
    if (stream.publisher !== publisher) return;
    stream.detachPublisher();
    this.emit('unpublished', stream);
    this.#collect(stream);
  }

  /** Call after detaching a consumer or viewer: drops the stream once nobody holds it. */
  release(stream: Stream): void {
    this.#collect(stream);
  }

  /** Kicks the publisher of `path`; returns false when there is none. */
  kick(path: string, reason: string): boolean {
    const stream = this.#streams.get(path);
    if (!stream?.publisher) return false;
    const publisher = stream.publisher;
    publisher.close(reason);
    this.unpublish(stream, publisher);
    return true;
  }

  #collect(stream: Stream): void {
    if (stream.live || stream.consumers.size > 0 || stream.viewerCount > 0) return;
    if (this.#streams.get(stream.path) !== stream) return;
    this.#streams.delete(stream.path);
    this.emit('removed', stream);
  }
}
