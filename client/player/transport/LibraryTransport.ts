import { ByteRateMeter } from '../ByteRateMeter.ts';
import type { TransportKind } from '../PlayerTypes.ts';
import type { Transport, TransportContext, TransportObserver, TransportStats } from './Transport.ts';

/** `/{prefix}/{path}/{entry}` on the server, each path segment encoded. */
export function streamUrl(
  server: string,
  prefix: string,
  path: string,
  entry: string,
  token?: string,
): string {
  const url = new URL(`/${prefix}/${path.split('/').map(encodeURIComponent).join('/')}/${entry}`, server);
  if (token) url.searchParams.set('token', token);
  return url.href;
}

/**
 * A large player library (hls.js, dash.js) is its own bundle beside this one (web/dist/{file}, a fixed name),
 * imported once, on first use.
 */
export function lazyLibrary<T>(file: string, pick: (module: unknown) => T): () => Promise<T> {
  let loaded: Promise<T> | null = null;
  return () => {
    loaded ??= import(new URL(`./${file}`, import.meta.url).href).then(pick);
    return loaded;
  };
}

/** The stats a library transport measures itself; the rest comes from the library's player. */
export type LibraryStats = Pick<TransportStats, 'targetBuffer' | 'latency' | 'stallRecoveries'>;

/**
 * What the transports that play through a separately loaded library share: loading it on connect, sessions
 * (a callback of an older session is ignored), the first `playing` reported once, a poll timer, the
 * bytes and codecs seen, and stopping. Subclasses start and tear down the library's player.
 */
export abstract class LibraryTransport<Library> implements Transport {
  abstract readonly kind: TransportKind;
  protected readonly context: TransportContext;
  protected readonly observer: TransportObserver;
  protected readonly meter = new ByteRateMeter(2000);
  /** Bumped by every connect and close; callbacks carry the session they were made for. */
  protected session = 0;
  protected codecs = '';
  /** A check the subclass schedules (the publisher's return, the manifest's liveness); cleared on stop. */
  protected poll: ReturnType<typeof setTimeout> | null = null;
  readonly #load: () => Promise<Library>;
  readonly #libraryName: string;
  #playingReported = false;

  constructor(
    context: TransportContext,
    observer: TransportObserver,
    library: { name: string; load: () => Promise<Library> },
  ) {
    this.context = context;
    this.observer = observer;
    this.#load = library.load;
    this.#libraryName = library.name;
  }

  connect(): void {
    this.stop();
    const session = ++this.session;
    this.#playingReported = false;
    this.context.video.addEventListener('playing', this.#onPlaying);
    this.#load().then(
      (library) => {
        if (session === this.session) this.start(library, session);
      },
      (err: unknown) => {
        if (session !== this.session) return;
        this.observer.onClosed({
          reason: `cannot load ${this.#libraryName}: ${String(err)}`,
          unavailable: true,
        });
      },
    );
  }

  /** Creates the library's player for this session and attaches it to the video element. */
  protected abstract start(library: Library, session: number): void;

  /** Destroys the library's player, if there is one. */
  protected abstract teardown(): void;

  /** Called once per session when the playhead first advances, before the observer hears of it. */
  protected onFirstPlaying(): void {}

  /** The session stops: no timer, no listener, no library player is left. */
  protected stop(): void {
    if (this.poll) clearTimeout(this.poll);
    this.poll = null;
    this.context.video.removeEventListener('playing', this.#onPlaying);
    this.teardown();
  }

  close(): void {
    this.session++;
    this.stop();
  }

  protected abstract libraryStats(): LibraryStats;

  stats(): TransportStats {
    const video = this.context.video;
    const buffered = video.buffered;
    const end = buffered.length > 0 ? buffered.end(buffered.length - 1) : 0;
    return {
      bufferAhead: Math.max(0, end - video.currentTime),
      playbackRate: video.playbackRate,
      bitrate: this.meter.bitrate(),
      bytesReceived: this.meter.total,
      codecs: this.codecs,
      skippedFrames: 0,
      liveSeeks: 0,
      underruns: 0,
      ...this.libraryStats(),
    };
  }

  #onPlaying = (): void => {
    if (this.#playingReported) return;
    this.#playingReported = true;
    this.onFirstPlaying();
    this.observer.onPlaying();
  };
}
