import { parseStreamPath } from '../../src/shared/streamPath.ts';
import type { MessagingPeer } from '../webrtc/MessagingPeer.ts';
import { Backoff } from './Backoff.ts';
import { DashTransport } from './dash/DashTransport.ts';
import { Emitter } from './Emitter.ts';
import { HlsTransport } from './hls/HlsTransport.ts';
import { MseTransport } from './mse/MseTransport.ts';
import {
  PlayerEvent,
  type PlayerEvents,
  type PlayerOptions,
  type PlayerState,
  type PlayerStats,
  type StateChange,
  type TransportKind,
} from './PlayerTypes.ts';
import type {
  Transport,
  TransportClosed,
  TransportFactory,
  TransportObserver,
} from './transport/Transport.ts';
import { WhepTransport } from './webrtc/WhepTransport.ts';

/**
 * Every transport, best (lowest latency) first; 'auto' tries them in this order, falling back when one
 * reports itself unavailable (WebRTC that cannot connect within a few seconds falls back to MSE). LL-HLS
 * takes its place after MSE when it exists.
 */
export const TRANSPORTS: readonly TransportFactory[] = [
  {
    kind: 'webrtc',
    isSupported: () => WhepTransport.isSupported(),
    create: (context, observer) => new WhepTransport(context, observer),
  },
  {
    kind: 'mse',
    isSupported: () => MseTransport.isSupported(),
    create: (context, observer) => new MseTransport(context, observer),
  },
  {
    kind: 'hls',
    isSupported: () => HlsTransport.isSupported(),
    create: (context, observer) => new HlsTransport(context, observer),
  },
  {
    kind: 'dash',
    isSupported: () => DashTransport.isSupported(),
    create: (context, observer) => new DashTransport(context, observer),
  },
];

/**
 * Plays one live stream into a video element over the best transport available, reconnecting with
 * back-off until the stream is back, and reporting state, stats and errors as typed events.
 *
 * ```ts
 * const player = new SubsecondPlayer(video, { path: 'live/cam1' });
 * player.on(PlayerEvent.State, ({ state }) => console.log(state));
 * player.start();
 * ```
 */
export class SubsecondPlayer extends Emitter<PlayerEvents> {
  readonly video: HTMLVideoElement;
  readonly server: string;
  readonly path: string;
  readonly transportPreference: 'auto' | TransportKind;
  readonly #transportOrder: readonly TransportKind[] | undefined;
  readonly #targetBuffer: number;
  readonly #statsIntervalMs: number;
  readonly #messaging: MessagingPeer | undefined;
  readonly #token: string | undefined;
  readonly #backoff = new Backoff(250, 10_000);
  #state: PlayerState = 'stopped';
  #candidates: TransportFactory[] = [];
  #candidateIndex = 0;
  #transport: Transport | null = null;
  #retryTimer: ReturnType<typeof setTimeout> | null = null;
  #statsTimer: ReturnType<typeof setInterval> | null = null;
  #reconnects = 0;

  constructor(video: HTMLVideoElement, options: PlayerOptions) {
    super();
    this.video = video;
    this.path = parseStreamPath(options.path);
    this.server = new URL(options.server ?? globalThis.location.origin).origin;
    this.transportPreference = options.transport ?? 'auto';
    if (options.transports) {
      const unknown = options.transports.filter((kind) => !TRANSPORTS.some((f) => f.kind === kind));
      if (unknown.length > 0 || options.transports.length === 0) {
        throw new Error(
          `invalid transports ${JSON.stringify(options.transports)}: list one or more of ${TRANSPORTS.map((f) => f.kind).join(', ')}`,
        );
      }
      this.#transportOrder = [...options.transports];
    }
    this.#targetBuffer = options.targetBuffer ?? 0.15;
    this.#token = options.token;
    this.#statsIntervalMs = options.statsIntervalMs ?? 1000;
    this.#messaging = options.messaging;
  }

  get state(): PlayerState {
    return this.#state;
  }

  /** The transport in use (or being tried), or null when stopped. */
  get transport(): TransportKind | null {
    return this.#transport?.kind ?? null;
  }

  start(): void {
    if (this.#state !== 'stopped') return;
    const preference = this.transportPreference;
    const order = this.#transportOrder;
    this.#candidates = order
      ? order
          .map((kind) => TRANSPORTS.find((factory) => factory.kind === kind))
          .filter((factory): factory is TransportFactory => factory?.isSupported() === true)
      : TRANSPORTS.filter(
          (factory) => (preference === 'auto' || factory.kind === preference) && factory.isSupported(),
        );
    if (this.#candidates.length === 0) {
      this.emit(PlayerEvent.Error, {
        message: order
          ? `this browser can use none of the transports ${order.join(', ')}`
          : preference === 'auto'
            ? 'this browser supports none of the player transports (it lacks WebSocket or Media Source Extensions)'
            : `this browser cannot use the "${preference}" transport`,
        fatal: true,
      });
      return;
    }
    this.#candidateIndex = 0;
    this.#backoff.reset();
    this.#statsTimer = setInterval(() => this.emit(PlayerEvent.Stats, this.stats()), this.#statsIntervalMs);
    this.#connect();
  }

  stop(): void {
    if (this.#state === 'stopped') return;
    this.#clearRetry();
    if (this.#statsTimer) clearInterval(this.#statsTimer);
    this.#statsTimer = null;
    this.#transport?.close();
    this.#transport = null;
    this.#setState({ state: 'stopped' });
  }

  stats(): PlayerStats {
    const video = this.video;
    const quality =
      typeof video.getVideoPlaybackQuality === 'function' ? video.getVideoPlaybackQuality() : null;
    const t = this.#transport?.stats();
    return {
      state: this.#state,
      transport: this.transport,
      bufferAhead: t?.bufferAhead ?? 0,
      targetBuffer: t?.targetBuffer ?? this.#targetBuffer,
      latency: t?.latency ?? 0,
      playbackRate: video.playbackRate,
      currentTime: video.currentTime,
      decodedFrames: quality?.totalVideoFrames ?? 0,
      droppedFrames: quality?.droppedVideoFrames ?? 0,
      bitrate: t?.bitrate ?? 0,
      bytesReceived: t?.bytesReceived ?? 0,
      width: video.videoWidth,
      height: video.videoHeight,
      codecs: t?.codecs ?? '',
      reconnects: this.#reconnects,
      skippedFrames: t?.skippedFrames ?? 0,
      stallRecoveries: t?.stallRecoveries ?? 0,
      liveSeeks: t?.liveSeeks ?? 0,
      underruns: t?.underruns ?? 0,
      ...(t?.webrtc ? { webrtc: t.webrtc } : {}),
    };
  }

  #connect(): void {
    this.#retryTimer = null;
    const factory = this.#candidates[this.#candidateIndex];
    if (!this.#transport || this.#transport.kind !== factory.kind) {
      this.#transport?.close();
      this.#transport = this.#createTransport(factory);
    }
    this.#setState({ state: 'connecting' });
    this.#transport.connect();
  }

  #createTransport(factory: TransportFactory): Transport {
    // Reports from a transport that was replaced or stopped meanwhile are dropped.
    let transport: Transport | null = null;
    const current = (): boolean =>
      transport !== null && this.#transport === transport && this.#state !== 'stopped';
    const observer: TransportObserver = {
      onPlaying: () => {
        if (!current()) return;
        this.#backoff.reset();
        this.#setState({ state: 'playing' });
      },
      onWaitingForPublisher: () => {
        if (current()) this.#setState({ state: 'waiting-for-publisher' });
      },
      onError: (message) => {
        if (current()) this.emit(PlayerEvent.Error, { message, transport: factory.kind, fatal: false });
      },
      onClosed: (closed) => {
        if (current()) this.#onClosed(closed);
      },
    };
    transport = factory.create(
      {
        video: this.video,
        server: this.server,
        path: this.path,
        targetBuffer: this.#targetBuffer,
        messaging: this.#messaging,
        ...(this.#token ? { token: this.#token } : {}),
      },
      observer,
    );
    return transport;
  }

  #onClosed(closed: TransportClosed): void {
    if (closed.fatal) {
      const kind = this.transport ?? undefined;
      this.stop();
      this.emit(PlayerEvent.Error, { message: closed.reason, transport: kind, fatal: true });
      return;
    }
    if (closed.unavailable && this.#candidateIndex + 1 < this.#candidates.length) {
      // This transport cannot work here; the next one might, so try it at once.
      this.emit(PlayerEvent.Error, {
        message: closed.reason,
        transport: this.transport ?? undefined,
        fatal: false,
      });
      this.#candidateIndex++;
      this.#connect();
      return;
    }
    if (closed.unavailable) {
      this.emit(PlayerEvent.Error, {
        message: closed.reason,
        transport: this.transport ?? undefined,
        fatal: false,
      });
      // Nothing else to try; the publisher may change codecs, so start over from the best transport later.
      this.#candidateIndex = 0;
    }
    const retryInMs = this.#backoff.next();
    this.#reconnects++;
    this.#setState({ state: 'reconnecting', retryInMs, reason: closed.reason });
    this.#retryTimer = setTimeout(() => this.#connect(), retryInMs);
  }

  #clearRetry(): void {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
  }

  #setState(change: StateChange): void {
    // 'reconnecting' repeats with a new delay; other states are reported once per change.
    if (change.state === this.#state && change.state !== 'reconnecting') return;
    this.#state = change.state;
    this.emit(PlayerEvent.State, change);
  }
}
