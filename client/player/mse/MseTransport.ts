import { ByteRateMeter } from '../ByteRateMeter.ts';
import type {
  Transport,
  TransportContext,
  TransportObserver,
  TransportStats,
} from '../transport/Transport.ts';
import { DEFAULT_LIVE_EDGE, LiveEdgeController } from './LiveEdgeController.ts';
import { MediaSourceAttachment, mediaSourceClass } from './MediaSourceAttachment.ts';
import { type InitMessage, parseServerMessage, type TrackInfo } from './messages.ts';

/** Close codes of `GET /mse/{path}` (docs/protocols/mse.md) and what they mean to a viewer. */
const CLOSE_REASONS: Record<number, string> = {
  1000: 'the server closed the connection',
  1001: 'the server is going away',
  1009: 'the server refused a message as too big',
  4400: 'the server refused the stream path',
  4404: 'stream not live',
  4401: 'the server wants a valid token granting play on this stream',
  4403: 'the token grants no play on this stream',
};
/** Retrying cannot help with these. */
const FATAL_CLOSES = new Set([4400, 4401, 4403]);
const TICK_MS = 100;
/** Under quota pressure keep only this much behind the playhead. */
const QUOTA_KEEP_BEHIND = 1;

/** The WebSocket URL of a stream: ws:// or wss:// matching the server's scheme. */
export function mseUrl(server: string, path: string, token?: string): string {
  const url = new URL(`/mse/${path.split('/').map(encodeURIComponent).join('/')}`, server);
  if (token) url.searchParams.set('token', token);
  if (url.protocol === 'https:') url.protocol = 'wss:';
  else if (url.protocol === 'http:') url.protocol = 'ws:';
  return url.href;
}

/**
 * WebSocket + Media Source Extensions: per-frame fMP4 fragments appended to one SourceBuffer, the playhead
 * kept near the live edge by a LiveEdgeController.
 */
export class MseTransport implements Transport {
  static readonly kind = 'mse';
  readonly kind = 'mse';
  readonly #context: TransportContext;
  readonly #observer: TransportObserver;
  readonly #edge: LiveEdgeController;
  readonly #meter = new ByteRateMeter(2000);
  #socket: WebSocket | null = null;
  /** Increments on every connect and close, so late results of an earlier session are dropped. */
  #session = 0;
  /** Set by an `init` message until its init segment (the next binary message) arrives. */
  #awaitingInitSegment: InitMessage | null = null;
  #attachment: MediaSourceAttachment | null = null;
  #codecs = '';
  #tracks: TrackInfo[] = [];
  #serverError = '';
  #publisherPresent = false;
  #playingReported = false;
  #skippedFrames = 0;
  #tick: ReturnType<typeof setInterval> | null = null;

  static isSupported(): boolean {
    return typeof WebSocket !== 'undefined' && mediaSourceClass() !== null;
  }

  constructor(context: TransportContext, observer: TransportObserver) {
    this.#context = context;
    this.#observer = observer;
    this.#edge = new LiveEdgeController(context.video, {
      ...DEFAULT_LIVE_EDGE,
      targetBuffer: context.targetBuffer,
    });
  }

  get tracks(): readonly TrackInfo[] {
    return this.#tracks;
  }

  connect(): void {
    this.#closeSocket();
    this.#session++;
    this.#serverError = '';
    this.#awaitingInitSegment = null;
    let opened = false;
    const socket = new WebSocket(mseUrl(this.#context.server, this.#context.path, this.#context.token));
    socket.binaryType = 'arraybuffer';
    socket.onopen = () => {
      opened = true;
    };
    socket.onmessage = (event: MessageEvent<string | ArrayBuffer>) => {
      if (socket === this.#socket) this.#onMessage(event.data);
    };
    socket.onclose = (event) => {
      if (socket !== this.#socket) return;
      this.#socket = null;
      this.#onSocketClosed(event.code, event.reason, opened);
    };
    this.#socket = socket;
    if (!this.#tick) {
      this.#tick = setInterval(this.#onTick, TICK_MS);
      const video = this.#context.video;
      video.addEventListener('playing', this.#onPlaying);
      video.addEventListener('waiting', this.#onTick);
      video.addEventListener('error', this.#onMediaError);
    }
  }

  close(): void {
    this.#session++;
    this.#closeSocket();
    if (this.#tick) clearInterval(this.#tick);
    this.#tick = null;
    const video = this.#context.video;
    video.removeEventListener('playing', this.#onPlaying);
    video.removeEventListener('waiting', this.#onTick);
    video.removeEventListener('error', this.#onMediaError);
    this.#attachment?.detach(true);
    this.#attachment = null;
    video.playbackRate = 1;
  }

  stats(): TransportStats {
    const plan = this.#edge.lastPlan;
    return {
      bufferAhead: plan?.bufferAhead ?? 0,
      targetBuffer: this.#edge.targetBuffer,
      latency: plan?.latency ?? 0,
      playbackRate: this.#context.video.playbackRate,
      bitrate: this.#meter.bitrate(),
      bytesReceived: this.#meter.total,
      codecs: this.#codecs,
      skippedFrames: this.#skippedFrames,
      stallRecoveries: this.#edge.stallRecoveries,
      liveSeeks: this.#edge.liveSeeks,
      underruns: this.#edge.underruns,
    };
  }

  #onMessage(data: string | ArrayBuffer): void {
    if (typeof data !== 'string') {
      this.#meter.add(data.byteLength);
      const init = this.#awaitingInitSegment;
      if (init) {
        this.#awaitingInitSegment = null;
        this.#startTrackSet(init, data);
      } else {
        this.#attachment?.append(data);
      }
      return;
    }
    const message = parseServerMessage(data);
    if (!message) return;
    switch (message.type) {
      case 'init':
        this.#awaitingInitSegment = message;
        break;
      case 'unpublished':
        this.#publisherPresent = false;
        this.#playingReported = false;
        this.#observer.onWaitingForPublisher();
        break;
      case 'skipped':
        this.#skippedFrames += message.frames;
        break;
      case 'error':
        this.#serverError = message.message;
        this.#observer.onError(message.message);
        break;
    }
  }

  #startTrackSet(init: InitMessage, initSegment: ArrayBuffer): void {
    const mimeType = `video/mp4; codecs="${init.codecs}"`;
    if (!MediaSourceAttachment.isTypeSupported(mimeType)) {
      this.#closeSocket();
      this.#observer.onClosed({ reason: `this browser cannot play ${mimeType} over MSE`, unavailable: true });
      return;
    }
    const sameTracks =
      init.tracks.length === this.#tracks.length &&
      init.tracks.every((t, i) => t.id === this.#tracks[i].id && t.kind === this.#tracks[i].kind);
    if (init.continues && sameTracks && this.#attachment?.continueWith(mimeType, initSegment)) {
      this.#codecs = init.codecs;
      this.#tracks = init.tracks;
      return;
    }
    // The old attachment's last frame stays on screen until the new MediaSource takes the element over.
    this.#attachment?.detach(false);
    this.#codecs = init.codecs;
    this.#tracks = init.tracks;
    this.#publisherPresent = true;
    this.#playingReported = false;
    this.#edge.reset();
    this.#attachment = new MediaSourceAttachment(this.#context.video, mimeType, initSegment, {
      onError: (message) => this.#fail(message),
      onQuotaExceeded: () => this.#quotaRange(),
    });
    this.#play();
  }

  #play(): void {
    const video = this.#context.video;
    video.play().catch((error: unknown) => {
      if (!(error instanceof DOMException) || error.name !== 'NotAllowedError') return; // AbortError: src changed
      // Autoplay with sound refused: play muted; the page offers an unmute button (watching `video.muted`).
      video.muted = true;
      video.play().catch((retry: unknown) => {
        if (retry instanceof DOMException && retry.name === 'NotAllowedError') {
          this.#observer.onError('the browser refused to autoplay, even muted: start playback with a click');
        }
      });
    });
  }

  #quotaRange(): { start: number; end: number } | null {
    const ranges = this.#attachment?.bufferedRanges() ?? [];
    if (ranges.length === 0) return null;
    const end = this.#context.video.currentTime - QUOTA_KEEP_BEHIND;
    return end - ranges[0][0] > 0.1 ? { start: ranges[0][0], end } : null;
  }

  #onTick = (): void => {
    const attachment = this.#attachment;
    if (!attachment) return;
    const plan = this.#edge.tick(attachment.bufferedRanges());
    if (plan.evict) attachment.remove(plan.evict.start, plan.evict.end);
    if (this.#edge.advancing) this.#reportPlaying();
  };

  #onPlaying = (): void => {
    if (this.#attachment?.bufferedRanges().length) this.#reportPlaying();
  };

  #reportPlaying(): void {
    if (this.#playingReported || !this.#publisherPresent) return;
    this.#playingReported = true;
    this.#observer.onPlaying();
  }

  #onMediaError = (): void => {
    const error = this.#context.video.error;
    if (!error || !this.#attachment) return;
    this.#fail(`media error ${error.code}${error.message ? `: ${error.message}` : ''}`);
  };

  /** The media pipeline broke: drop it and the socket, and let the player reconnect for a fresh init. */
  #fail(message: string): void {
    this.#attachment?.detach(false);
    this.#attachment = null;
    this.#publisherPresent = false;
    this.#playingReported = false;
    this.#closeSocket();
    this.#observer.onError(message);
    this.#observer.onClosed({ reason: message });
  }

  #onSocketClosed(code: number, reason: string, opened: boolean): void {
    this.#awaitingInitSegment = null;
    this.#publisherPresent = false;
    this.#playingReported = false;
    const why = this.#serverError || reason || CLOSE_REASONS[code];
    if (why || opened) {
      this.#observer.onClosed({
        reason: why || `connection lost (code ${code})`,
        fatal: FATAL_CLOSES.has(code),
      });
      return;
    }
    // A refused upgrade reaches the page as a bare 1006; ask the API why, for a reason a viewer understands.
    const session = this.#session;
    void this.#whyRefused().then((refused) => {
      if (session === this.#session) this.#observer.onClosed({ reason: refused });
    });
  }

  async #whyRefused(): Promise<string> {
    const { server, path } = this.#context;
    const url = new URL(`/api/v1/streams/${path.split('/').map(encodeURIComponent).join('/')}`, server);
    try {
      const token = this.#context.token;
      const response = await fetch(url, {
        signal: AbortSignal.timeout(2000),
        ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}),
      });
      if (response.status === 404) return 'stream not live';
      return `could not open the media WebSocket (the stream API answers ${response.status})`;
    } catch {
      return 'server unreachable';
    }
  }

  #closeSocket(): void {
    const socket = this.#socket;
    if (!socket) return;
    this.#socket = null;
    socket.onopen = null;
    socket.onmessage = null;
    socket.onclose = null;
    if (socket.readyState === WebSocket.CONNECTING || socket.readyState === WebSocket.OPEN)
      socket.close(1000);
  }
}
