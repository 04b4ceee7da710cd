import type Hls from 'hls.js';
import type { ErrorData, HlsConfig, LevelUpdatedData } from 'hls.js';
import { ByteRateMeter } from '../ByteRateMeter.ts';
import type {
  Transport,
  TransportContext,
  TransportObserver,
  TransportStats,
} from '../transport/Transport.ts';

/** `/hls/{path}/index.m3u8` on the server. */
export function hlsUrl(server: string, path: string): string {
  return new URL(`/hls/${path.split('/').map(encodeURIComponent).join('/')}/index.m3u8`, server).href;
}

/** How often an ended playlist is checked for the publisher's return. */
const REPUBLISH_POLL_MS = 1000;

/**
 * hls.js tuned for LL-HLS: parts and blocking reloads, the playhead held PART-HOLD-BACK behind the live edge
 * and caught up at up to 1.25× when it falls behind (hls.js's latency controller).
 */
const HLS_CONFIG: Partial<HlsConfig> = {
  lowLatencyMode: true,
  maxLiveSyncPlaybackRate: 1.25,
  backBufferLength: 10,
  liveDurationInfinity: true,
  manifestLoadingMaxRetry: 2,
  levelLoadingMaxRetry: 4,
  fragLoadingMaxRetry: 4,
};

type HlsClass = typeof Hls;
let hlsModule: Promise<HlsClass> | null = null;
/**
 * hls.js is large: it is its own bundle beside this one (web/dist/hlsjs.js, a fixed name), loaded only when
 * this transport is used.
 */
function loadHls(): Promise<HlsClass> {
  const url = new URL('./hlsjs.js', import.meta.url).href;
  hlsModule ??= (import(url) as Promise<{ default: HlsClass }>).then((m) => m.default);
  return hlsModule;
}

/**
 * Low-Latency HLS through hls.js over MSE (or the browser's own HLS where MSE is missing, as on iPhone Safari).
 * When the publisher leaves the playlist ends (EXT-X-ENDLIST); the transport waits, polling the playlist, and
 * starts again on the same video element when it is live again.
 */
export class HlsTransport implements Transport {
  readonly kind = 'hls';
  readonly #context: TransportContext;
  readonly #observer: TransportObserver;
  readonly #meter = new ByteRateMeter(2000);
  #hls: Hls | null = null;
  #session = 0;
  #codecs = '';
  #playingReported = false;
  #mediaRecoveries = 0;
  #poll: ReturnType<typeof setTimeout> | null = null;

  static isSupported(): boolean {
    const mse = typeof MediaSource !== 'undefined' || 'ManagedMediaSource' in globalThis;
    return mse || HlsTransport.#nativeHls();
  }

  static #nativeHls(): boolean {
    return (
      typeof document !== 'undefined' &&
      document.createElement('video').canPlayType('application/vnd.apple.mpegurl') !== ''
    );
  }

  constructor(context: TransportContext, observer: TransportObserver) {
    this.#context = context;
    this.#observer = observer;
  }

  connect(): void {
    this.#stop();
    const session = ++this.#session;
    this.#context.video.addEventListener('playing', this.#onPlaying);
    loadHls().then(
      (HlsJs) => {
        if (session === this.#session) this.#start(HlsJs, session);
      },
      (err: unknown) => {
        if (session !== this.#session) return;
        this.#observer.onClosed({ reason: `cannot load hls.js: ${String(err)}`, unavailable: true });
      },
    );
  }

  #start(HlsJs: HlsClass, session: number): void {
    const video = this.#context.video;
    const url = hlsUrl(this.#context.server, this.#context.path);
    this.#playingReported = false;
    if (!HlsJs.isSupported()) {
      if (!HlsTransport.#nativeHls()) {
        this.#observer.onClosed({
          reason: 'this browser can play HLS neither through MSE nor natively',
          unavailable: true,
        });
        return;
      }
      video.src = url;
      void video.play().catch(() => {});
      return;
    }
    const hls = new HlsJs(HLS_CONFIG);
    this.#hls = hls;
    hls.on(HlsJs.Events.MANIFEST_PARSED, (_event, data) => {
      this.#codecs = [data.levels[0]?.videoCodec, data.levels[0]?.audioCodec].filter(Boolean).join(',');
      void video.play().catch(() => {});
    });
    // A part load reports its own stats; its fragment's stats would count the same bytes again.
    hls.on(HlsJs.Events.FRAG_LOADED, (_event, data) =>
      this.#meter.add((data.part ?? data.frag).stats.loaded),
    );
    hls.on(HlsJs.Events.LEVEL_UPDATED, (_event, data: LevelUpdatedData) => {
      if (!data.details.live && session === this.#session) this.#publisherLeft(session);
    });
    hls.on(HlsJs.Events.ERROR, (_event, data: ErrorData) => this.#onError(HlsJs, data, session));
    hls.loadSource(url);
    hls.attachMedia(video);
  }

  #onError(HlsJs: HlsClass, data: ErrorData, session: number): void {
    if (session !== this.#session || !data.fatal) return;
    if (data.type === HlsJs.ErrorTypes.MEDIA_ERROR && this.#mediaRecoveries < 2) {
      this.#mediaRecoveries++;
      this.#observer.onError(`media error ${data.details}; recovering`);
      this.#hls?.recoverMediaError();
      return;
    }
    const status = data.response?.code;
    const reason = status === 404 ? 'stream not live' : `${data.details}${status ? ` (HTTP ${status})` : ''}`;
    this.#stop();
    this.#observer.onClosed({ reason });
  }

  /** The playlist ended: the publisher left. Poll until it is live again, then start over. */
  #publisherLeft(session: number): void {
    if (this.#poll) return;
    this.#observer.onWaitingForPublisher();
    const media = hlsUrl(this.#context.server, this.#context.path).replace(/index\.m3u8$/, 'media.m3u8');
    const check = async () => {
      this.#poll = null;
      if (session !== this.#session) return;
      let live = false;
      try {
        const res = await fetch(media, { cache: 'no-store' });
        live = res.ok && !(await res.text()).includes('#EXT-X-ENDLIST');
      } catch {
        // the server is unreachable for now; keep polling
      }
      if (session !== this.#session) return;
      if (live) this.connect();
      else this.#poll = setTimeout(check, REPUBLISH_POLL_MS);
    };
    this.#poll = setTimeout(check, REPUBLISH_POLL_MS);
  }

  #onPlaying = (): void => {
    if (this.#playingReported) return;
    this.#playingReported = true;
    this.#mediaRecoveries = 0;
    this.#observer.onPlaying();
  };

  #stop(): void {
    if (this.#poll) clearTimeout(this.#poll);
    this.#poll = null;
    this.#context.video.removeEventListener('playing', this.#onPlaying);
    if (this.#hls) {
      this.#hls.destroy();
      this.#hls = null;
    } else if (this.#context.video.src.includes('/hls/')) {
      this.#context.video.removeAttribute('src');
      this.#context.video.load();
    }
  }

  close(): void {
    this.#session++;
    this.#stop();
  }

  stats(): TransportStats {
    const video = this.#context.video;
    const buffered = video.buffered;
    const end = buffered.length > 0 ? buffered.end(buffered.length - 1) : 0;
    const hls = this.#hls;
    return {
      bufferAhead: Math.max(0, end - video.currentTime),
      targetBuffer: hls?.targetLatency ?? this.#context.targetBuffer,
      latency: hls?.latency ?? 0,
      playbackRate: video.playbackRate,
      bitrate: this.#meter.bitrate(),
      bytesReceived: this.#meter.total,
      codecs: this.#codecs,
      skippedFrames: 0,
      stallRecoveries: this.#mediaRecoveries,
      liveSeeks: 0,
      underruns: 0,
    };
  }
}
