import type { FragmentLoadingCompletedEvent, MediaPlayerClass, MediaPlayerErrorEvent } from 'dashjs';
import { ByteRateMeter } from '../ByteRateMeter.ts';
import type {
  Transport,
  TransportContext,
  TransportObserver,
  TransportStats,
} from '../transport/Transport.ts';

/** `/dash/{path}/manifest.mpd` on the server. */
export function dashUrl(server: string, path: string): string {
  return new URL(`/dash/${path.split('/').map(encodeURIComponent).join('/')}/manifest.mpd`, server).href;
}

/** How often the manifest is checked for the publisher leaving or the timeline restarting. */
const LIVENESS_POLL_MS = 1000;

type DashModule = Pick<typeof import('dashjs'), 'MediaPlayer'>;
let dashModule: Promise<DashModule> | null = null;
/**
 * dash.js is large: it is its own bundle beside this one (web/dist/dashjs.js, a fixed name), loaded only when
 * this transport is used.
 */
function loadDash(): Promise<DashModule> {
  const url = new URL('./dashjs.js', import.meta.url).href;
  dashModule ??= import(url) as Promise<DashModule>;
  return dashModule;
}

/**
 * Low-latency DASH through dash.js: segments fetched while they are produced (chunked transfer), the clock
 * synchronised through the MPD's UTCTiming, the latency target and catch-up rates from its
 * ServiceDescription (dash.js's low-latency catch-up).
 */
export class DashTransport implements Transport {
  readonly kind = 'dash';
  readonly #context: TransportContext;
  readonly #observer: TransportObserver;
  readonly #meter = new ByteRateMeter(2000);
  #player: MediaPlayerClass | null = null;
  #session = 0;
  #codecs = '';
  #playingReported = false;
  #poll: ReturnType<typeof setTimeout> | null = null;

  static isSupported(): boolean {
    return typeof MediaSource !== 'undefined' || 'ManagedMediaSource' in globalThis;
  }

  constructor(context: TransportContext, observer: TransportObserver) {
    this.#context = context;
    this.#observer = observer;
  }

  connect(): void {
    this.#stop();
    const session = ++this.#session;
    this.#context.video.addEventListener('playing', this.#onPlaying);
    loadDash().then(
      (dash) => {
        if (session === this.#session) this.#start(dash, session);
      },
      (err: unknown) => {
        if (session !== this.#session) return;
        this.#observer.onClosed({ reason: `cannot load dash.js: ${String(err)}`, unavailable: true });
      },
    );
  }

  #start(dash: DashModule, session: number): void {
    const url = dashUrl(this.#context.server, this.#context.path);
    this.#playingReported = false;
    const player = dash.MediaPlayer().create();
    this.#player = player;
    player.updateSettings({
      debug: { logLevel: 0 },
      streaming: { liveCatchup: { enabled: true, playbackRate: { min: -0.04, max: 0.25 } } },
    });
    player.on('error', (e) => {
      if (session !== this.#session) return;
      const error = (e as MediaPlayerErrorEvent).error;
      this.#stop();
      this.#observer.onClosed({ reason: `dash.js error ${error.code}: ${error.message}` });
    });
    // With chunked (low-latency) loading the event carries no response body; the request counts the bytes.
    player.on('fragmentLoadingCompleted', (e) => {
      const loaded = (e as FragmentLoadingCompletedEvent).request?.bytesLoaded;
      if (loaded > 0) this.#meter.add(loaded);
    });
    player.on('streamInitialized', () => {
      const codecs = ['video', 'audio'].map(
        (type) => player.getCurrentRepresentationForType(type as 'video' | 'audio')?.codecs ?? '',
      );
      this.#codecs = codecs.filter(Boolean).join(',');
    });
    player.initialize(this.#context.video, url, true);
    this.#watch(url, session);
  }

  /**
   * dash.js keeps asking for segments that will never come when the publisher left, and plays on an old
   * timeline when it came back; the manifest says both: 404 while it is away, a new Period when it is back.
   */
  #watch(url: string, session: number): void {
    let period: string | null = null;
    const check = async () => {
      this.#poll = null;
      if (session !== this.#session) return;
      let status = 0;
      let text = '';
      try {
        const res = await fetch(url, { cache: 'no-store' });
        status = res.status;
        if (res.ok) text = await res.text();
      } catch {
        // unreachable for now: keep playing what is buffered, check again
      }
      if (session !== this.#session) return;
      const current = /<Period id="([^"]*)"/.exec(text)?.[1] ?? null;
      if (status === 404 || (period !== null && current !== null && current !== period)) {
        this.#stop();
        this.#observer.onClosed({ reason: status === 404 ? 'stream not live' : 'the stream restarted' });
        return;
      }
      period ??= current;
      this.#poll = setTimeout(check, LIVENESS_POLL_MS);
    };
    void check();
  }

  #onPlaying = (): void => {
    if (this.#playingReported) return;
    this.#playingReported = true;
    this.#observer.onPlaying();
  };

  #stop(): void {
    if (this.#poll) clearTimeout(this.#poll);
    this.#poll = null;
    this.#context.video.removeEventListener('playing', this.#onPlaying);
    this.#player?.destroy();
    this.#player = null;
  }

  close(): void {
    this.#session++;
    this.#stop();
  }

  stats(): TransportStats {
    const video = this.#context.video;
    const buffered = video.buffered;
    const end = buffered.length > 0 ? buffered.end(buffered.length - 1) : 0;
    const player = this.#player;
    const latency = player ? player.getCurrentLiveLatency() : 0;
    return {
      bufferAhead: Math.max(0, end - video.currentTime),
      targetBuffer: player?.getTargetLiveDelay?.() ?? this.#context.targetBuffer,
      latency: Number.isFinite(latency) ? latency : 0,
      playbackRate: video.playbackRate,
      bitrate: this.#meter.bitrate(),
      bytesReceived: this.#meter.total,
      codecs: this.#codecs,
      skippedFrames: 0,
      stallRecoveries: 0,
      liveSeeks: 0,
      underruns: 0,
    };
  }
}
