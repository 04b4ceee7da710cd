import type Hls from 'hls.js';
import type { ErrorData, HlsConfig, LevelUpdatedData } from 'hls.js';
import {
  type LibraryStats,
  LibraryTransport,
  lazyLibrary,
  streamUrl,
} from '../transport/LibraryTransport.ts';
import type { TransportContext, TransportObserver } from '../transport/Transport.ts';

/** `/hls/{path}/index.m3u8` on the server. */
export function hlsUrl(server: string, path: string, token?: string): string {
  return streamUrl(server, 'hls', path, 'index.m3u8', token);
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
const loadHls = lazyLibrary('hlsjs.js', (m) => (m as { default: HlsClass }).default);

/**
 * Low-Latency HLS through hls.js over MSE (or the browser's own HLS where MSE is missing, as on iPhone Safari).
 * When the publisher leaves the playlist ends (EXT-X-ENDLIST); the transport waits, polling the playlist, and
 * starts again on the same video element when it is live again.
 */
export class HlsTransport extends LibraryTransport<HlsClass> {
  readonly kind = 'hls';
  #hls: Hls | null = null;
  #mediaRecoveries = 0;

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
    super(context, observer, { name: 'hls.js', load: loadHls });
  }

  protected start(HlsJs: HlsClass, session: number): void {
    const video = this.context.video;
    const url = hlsUrl(this.context.server, this.context.path, this.context.token);
    if (!HlsJs.isSupported()) {
      if (!HlsTransport.#nativeHls()) {
        this.observer.onClosed({
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
      this.codecs = [data.levels[0]?.videoCodec, data.levels[0]?.audioCodec].filter(Boolean).join(',');
      void video.play().catch(() => {});
    });
    // A part load reports its own stats; its fragment's stats would count the same bytes again.
    hls.on(HlsJs.Events.FRAG_LOADED, (_event, data) => this.meter.add((data.part ?? data.frag).stats.loaded));
    hls.on(HlsJs.Events.LEVEL_UPDATED, (_event, data: LevelUpdatedData) => {
      if (!data.details.live && session === this.session) this.#publisherLeft(session);
    });
    hls.on(HlsJs.Events.ERROR, (_event, data: ErrorData) => this.#onError(HlsJs, data, session));
    hls.loadSource(url);
    hls.attachMedia(video);
  }

  #onError(HlsJs: HlsClass, data: ErrorData, session: number): void {
    if (session !== this.session || !data.fatal) return;
    if (data.type === HlsJs.ErrorTypes.MEDIA_ERROR && this.#mediaRecoveries < 2) {
      this.#mediaRecoveries++;
      this.observer.onError(`media error ${data.details}; recovering`);
      this.#hls?.recoverMediaError();
      return;
    }
    const status = data.response?.code;
    const reason = status === 404 ? 'stream not live' : `${data.details}${status ? ` (HTTP ${status})` : ''}`;
    this.stop();
    // 401/403: the token is missing, expired or grants no play here; retrying with it cannot help.
    this.observer.onClosed({ reason, ...(status === 401 || status === 403 ? { fatal: true } : {}) });
  }

  /** The playlist ended: the publisher left. Poll until it is live again, then start over. */
  #publisherLeft(session: number): void {
    if (this.poll) return;
    this.observer.onWaitingForPublisher();
    const media = streamUrl(this.context.server, 'hls', this.context.path, 'media.m3u8', this.context.token);
    const check = async () => {
      this.poll = null;
      if (session !== this.session) return;
      let live = false;
      try {
        const res = await fetch(media, { cache: 'no-store' });
        live = res.ok && !(await res.text()).includes('#EXT-X-ENDLIST');
      } catch {
        // the server is unreachable for now; keep polling
      }
      if (session !== this.session) return;
      if (live) this.connect();
      else this.poll = setTimeout(check, REPUBLISH_POLL_MS);
    };
    this.poll = setTimeout(check, REPUBLISH_POLL_MS);
  }

  protected override onFirstPlaying(): void {
    this.#mediaRecoveries = 0;
  }

  protected teardown(): void {
    if (this.#hls) {
      this.#hls.destroy();
      this.#hls = null;
    } else if (this.context.video.src.includes('/hls/')) {
      this.context.video.removeAttribute('src');
      this.context.video.load();
    }
  }

  protected libraryStats(): LibraryStats {
    return {
      targetBuffer: this.#hls?.targetLatency ?? this.context.targetBuffer,
      latency: this.#hls?.latency ?? 0,
      stallRecoveries: this.#mediaRecoveries,
    };
  }
}
