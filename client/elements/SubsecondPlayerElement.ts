import { mountChat } from '../chat-panel.ts';
import type { SubsecondChannel } from '../messaging/index.ts';
import {
  type PlayerError,
  PlayerEvent,
  type PlayerStats,
  type StateChange,
  SubsecondPlayer,
  TRANSPORTS,
  type TransportKind,
} from '../player/index.ts';
import { ELEMENT_STYLE, ElementBase, parseStreamSource } from './base.ts';

/** DOM events the element dispatches (`CustomEvent` with the SDK's payload as `detail`). */
export interface SubsecondPlayerElementEventMap {
  state: CustomEvent<StateChange>;
  stats: CustomEvent<PlayerStats>;
  error: CustomEvent<PlayerError>;
}

const OBSERVED = ['src', 'transport', 'target-buffer', 'chat', 'stats', 'muted', 'controls'] as const;

/**
 * `<subsecond-player src="https://host/live/cam1">`: a live stream played over the best transport, on any
 * page (the server's `http.corsOrigin` decides which origins may embed it).
 *
 * Attributes: `src` (required); `transport` (`auto`, one of webrtc mse hls dash, or several in the order to
 * try, e.g. `"webrtc mse"`); `target-buffer` (seconds); `muted` and `controls` (passed to the video; muted
 * is needed for sound-on autoplay policies); `stats` (show the live stats); `chat` (show the stream's chat,
 * `{path}:chat`, or the channel named by the attribute's value).
 */
export class SubsecondPlayerElement extends ElementBase {
  static readonly observedAttributes: readonly string[] = OBSERVED;
  /** Set by connectedCallback: attribute changes restart the player only after it was started once. */
  #connected = false;
  /** The SDK player while connected; null before the element is in a document or after it left. */
  player: SubsecondPlayer | null = null;
  /** The chat channel when the `chat` attribute is set. */
  chat: SubsecondChannel | null = null;
  readonly video: HTMLVideoElement;
  readonly #badge: HTMLElement;
  readonly #error: HTMLElement;
  readonly #stats: HTMLDListElement;
  readonly #chatRoot: HTMLElement;

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    const style = document.createElement('style');
    style.textContent = ELEMENT_STYLE;
    this.video = document.createElement('video');
    this.video.setAttribute('part', 'video');
    this.video.playsInline = true;
    this.video.autoplay = true;
    const overlay = document.createElement('div');
    overlay.className = 'overlay';
    this.#badge = document.createElement('span');
    this.#badge.className = 'badge';
    this.#badge.setAttribute('part', 'state');
    overlay.append(this.#badge);
    this.#error = document.createElement('p');
    this.#error.className = 'error';
    this.#error.setAttribute('part', 'error');
    this.#error.setAttribute('role', 'alert');
    this.#stats = document.createElement('dl');
    this.#stats.className = 'stats';
    this.#stats.setAttribute('part', 'stats');
    this.#chatRoot = document.createElement('div');
    this.#chatRoot.className = 'chat';
    this.#chatRoot.setAttribute('part', 'chat');
    root.append(style, this.video, overlay, this.#error, this.#stats, this.#chatRoot);
  }

  connectedCallback(): void {
    this.#connected = true;
    this.#stop();
    this.#start();
  }

  disconnectedCallback(): void {
    this.#connected = false;
    this.#stop();
  }

  attributeChangedCallback(name: string, old: string | null, value: string | null): void {
    if (name === 'muted') this.video.muted = value !== null;
    else if (name === 'controls') this.video.controls = value !== null;
    // An element upgraded in the document (the SDK loaded after the markup) gets one call per attribute before
    // connectedCallback, which starts the player: restarting here too ran two players on one video element,
    // and whichever attached its MediaSource last reset the other's playback.
    else if (old !== value && this.#connected) {
      this.#stop();
      this.#start();
    }
  }

  /** The player's stats now (zeros while stopped). */
  getStats(): PlayerStats | null {
    return this.player?.stats() ?? null;
  }

  #transportOption(): { transport?: 'auto' | TransportKind; transports?: TransportKind[] } {
    const words = (this.getAttribute('transport') ?? 'auto').split(/[\s,]+/).filter(Boolean);
    if (words.length === 0 || (words.length === 1 && words[0] === 'auto')) return { transport: 'auto' };
    const kinds = TRANSPORTS.map((factory) => factory.kind);
    const unknown = words.filter((word) => !kinds.includes(word as TransportKind));
    if (unknown.length > 0) {
      throw new Error(
        `unknown transport ${JSON.stringify(unknown[0])} in transport="${this.getAttribute('transport')}": use auto or ${kinds.join(', ')}`,
      );
    }
    return { transports: words as TransportKind[] };
  }

  #start(): void {
    this.video.muted = this.hasAttribute('muted');
    this.video.controls = this.hasAttribute('controls');
    this.#error.textContent = '';
    const src = this.getAttribute('src');
    if (!src) {
      this.#fail('set the src attribute to the stream URL, e.g. https://host/live/cam1');
      return;
    }
    let player: SubsecondPlayer;
    let path: string;
    let server: string;
    try {
      ({ server, path } = parseStreamSource(src));
      const targetBuffer = this.getAttribute('target-buffer');
      player = new SubsecondPlayer(this.video, {
        server,
        path,
        ...this.#transportOption(),
        ...(targetBuffer ? { targetBuffer: Number(targetBuffer) } : {}),
      });
    } catch (error) {
      this.#fail((error as Error).message);
      return;
    }
    this.player = player;
    player.on(PlayerEvent.State, (change) => {
      this.#badge.dataset.state = change.state;
      this.#badge.textContent = change.state === 'playing' ? 'LIVE' : change.state.replace(/-/g, ' ');
      if (change.state === 'playing') this.#error.textContent = '';
      this.dispatchEvent(new CustomEvent('state', { detail: change }));
    });
    player.on(PlayerEvent.Stats, (stats) => {
      if (this.hasAttribute('stats')) this.#showStats(stats);
      this.dispatchEvent(new CustomEvent('stats', { detail: stats }));
    });
    player.on(PlayerEvent.Error, (error) => {
      this.#error.textContent = error.message;
      this.dispatchEvent(new CustomEvent('error', { detail: error }));
    });
    this.#stats.hidden = !this.hasAttribute('stats');
    this.#chatRoot.hidden = !this.hasAttribute('chat');
    if (this.hasAttribute('chat')) {
      const name = this.getAttribute('chat') || `${path}:chat`;
      try {
        this.chat = mountChat(this.#chatRoot, name, { server, since: 0 });
      } catch (error) {
        this.#error.textContent = (error as Error).message;
      }
    }
    player.start();
  }

  #stop(): void {
    this.player?.stop();
    this.player?.removeAllListeners();
    this.player = null;
    this.chat?.close();
    this.chat = null;
    this.#chatRoot.replaceChildren();
    this.#stats.replaceChildren();
  }

  #fail(message: string): void {
    this.#error.textContent = message;
    const error: PlayerError = { message, fatal: true };
    this.dispatchEvent(new CustomEvent('error', { detail: error }));
  }

  #showStats(s: PlayerStats): void {
    const rows: [string, string][] = [
      ['transport', s.transport ?? '—'],
      ['latency', `${s.latency.toFixed(2)} s`],
      ['buffer', `${s.bufferAhead.toFixed(2)} s`],
      ['resolution', s.width ? `${s.width}×${s.height}` : '—'],
      ['bitrate', `${(s.bitrate / 1e6).toFixed(2)} Mbit/s`],
      ['frames', `${s.decodedFrames} decoded, ${s.droppedFrames} dropped`],
      ['reconnects', String(s.reconnects)],
    ];
    this.#stats.replaceChildren(
      ...rows.flatMap(([label, value]) => {
        const dt = document.createElement('dt');
        dt.textContent = label;
        const dd = document.createElement('dd');
        dd.textContent = value;
        dd.dataset.stat = label;
        return [dt, dd];
      }),
    );
  }
}
