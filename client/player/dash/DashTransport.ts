import type { FragmentLoadingCompletedEvent, MediaPlayerClass, MediaPlayerErrorEvent } from 'dashjs';
import {
  type LibraryStats,
  LibraryTransport,
  lazyLibrary,
  streamUrl,
} from '../transport/LibraryTransport.ts';
import type { TransportContext, TransportObserver } from '../transport/Transport.ts';

/** `/dash/{path}/manifest.mpd` on the server. */
export function dashUrl(server: string, path: string, token?: string): string {
  return streamUrl(server, 'dash', path, 'manifest.mpd', token);
}

/** How often the manifest is checked for the publisher leaving or the timeline restarting. */
const LIVENESS_POLL_MS = 1000;

type DashModule = Pick<typeof import('dashjs'), 'MediaPlayer'>;
const loadDash = lazyLibrary('dashjs.js', (m) => m as DashModule);

/**
 * Low-latency DASH through dash.js: segments fetched while they are produced (chunked transfer), the clock
 * synchronised through the MPD's UTCTiming, the latency target and catch-up rates from its
 * ServiceDescription (dash.js's low-latency catch-up).
 */
export class DashTransport extends LibraryTransport<DashModule> {
  readonly kind = 'dash';
  #player: MediaPlayerClass | null = null;

  static isSupported(): boolean {
    return typeof MediaSource !== 'undefined' || 'ManagedMediaSource' in globalThis;
  }

  constructor(context: TransportContext, observer: TransportObserver) {
    super(context, observer, { name: 'dash.js', load: loadDash });
  }

  protected start(dash: DashModule, session: number): void {
    const url = dashUrl(this.context.server, this.context.path, this.context.token);
    const player = dash.MediaPlayer().create();
    this.#player = player;
    player.updateSettings({
      debug: { logLevel: 0 },
      streaming: { liveCatchup: { enabled: true, playbackRate: { min: -0.04, max: 0.25 } } },
    });
    player.on('error', (e) => {
      if (session !== this.session) return;
      const error = (e as MediaPlayerErrorEvent).error;
      this.stop();
      this.observer.onClosed({ reason: `dash.js error ${error.code}: ${error.message}` });
    });
    // With chunked (low-latency) loading the event carries no response body; the request counts the bytes.
    player.on('fragmentLoadingCompleted', (e) => {
      const loaded = (e as FragmentLoadingCompletedEvent).request?.bytesLoaded;
      if (loaded > 0) this.meter.add(loaded);
    });
    player.on('streamInitialized', () => {
      const codecs = ['video', 'audio'].map(
        (type) => player.getCurrentRepresentationForType(type as 'video' | 'audio')?.codecs ?? '',
      );
      this.codecs = codecs.filter(Boolean).join(',');
    });
    player.initialize(this.context.video, url, true);
    this.#watch(url, session);
  }

  /**
   * dash.js keeps asking for segments that will never come when the publisher left, and plays on an old
   * timeline when it came back; the manifest says both: 404 while it is away, a new Period when it is back.
   */
  #watch(url: string, session: number): void {
    let period: string | null = null;
    const check = async () => {
      this.poll = null;
      if (session !== this.session) return;
      let status = 0;
      let text = '';
      try {
        const res = await fetch(url, { cache: 'no-store' });
        status = res.status;
        if (res.ok) text = await res.text();
      } catch {
        // unreachable for now: keep playing what is buffered, check again
      }
      if (session !== this.session) return;
      const current = /<Period id="([^"]*)"/.exec(text)?.[1] ?? null;
      if (status === 404 || (period !== null && current !== null && current !== period)) {
        this.stop();
        this.observer.onClosed({ reason: status === 404 ? 'stream not live' : 'the stream restarted' });
        return;
      }
      period ??= current;
      this.poll = setTimeout(check, LIVENESS_POLL_MS);
    };
    void check();
  }

  protected teardown(): void {
    this.#player?.destroy();
    this.#player = null;
  }

  protected libraryStats(): LibraryStats {
    const player = this.#player;
    const latency = player ? player.getCurrentLiveLatency() : 0;
    return {
      targetBuffer: player?.getTargetLiveDelay?.() ?? this.context.targetBuffer,
      latency: Number.isFinite(latency) ? latency : 0,
      stallRecoveries: 0,
    };
  }
}
