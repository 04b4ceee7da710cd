import { Backoff } from '../player/Backoff.ts';
import { Emitter } from '../player/Emitter.ts';
import {
  ChannelEvent,
  type ChannelEvents,
  type ChannelMessage,
  type ChannelOptions,
  type ChannelPresence,
  type ChannelState,
  type ChannelTransportKind,
} from './ChannelTypes.ts';
import type { ChannelTransport, ChannelTransportFactory } from './transport/ChannelTransport.ts';
import { dataChannelTransport } from './transport/DataChannelTransport.ts';
import { pollChannelTransport } from './transport/PollChannelTransport.ts';
import { sseChannelTransport } from './transport/SseChannelTransport.ts';
import { wsChannelTransport } from './transport/WsChannelTransport.ts';

/** Best first. The data channel is used only when the channel is given a WebRTC session (`peer`). */
export const CHANNEL_TRANSPORTS: readonly ChannelTransportFactory[] = [
  dataChannelTransport,
  wsChannelTransport,
  sseChannelTransport,
  pollChannelTransport,
];

const CHANNEL_NAME = /^[A-Za-z0-9_.:/-]{1,256}$/;

/** Identity tokens per server, shared by a page's channels so they all speak as one identity. */
const identityTokens = new Map<string, string>();

/** Failures before a transport that never opened is given up for the next one. */
const ATTEMPTS_BEFORE_FALLBACK = 2;

/**
 * One channel, followed over the best transport that works: messages in id order, each once, across
 * reconnects (it resumes after the last id it delivered) and transport fallbacks; `gap` when the server no
 * longer has what it missed; presence; publish.
 *
 * ```ts
 * const chat = subsecond.channel('live/cam1:chat');
 * chat.on('message', (m) => show(m.from, m.data));
 * await chat.publish('chat', { text: 'hi' });
 * ```
 */
export class SubsecondChannel extends Emitter<ChannelEvents> {
  readonly name: string;
  readonly #server: string;
  readonly #options: ChannelOptions;
  readonly #factories: ChannelTransportFactory[];
  readonly #backoff: Backoff;
  #index = 0;
  #failures = 0;
  /** Transports that have carried this channel at least once. */
  readonly #worked = new Set<ChannelTransportKind>();
  #transport: ChannelTransport | null = null;
  #state: ChannelState = 'connecting';
  #lastId: number | undefined;
  #presence: ChannelPresence | null = null;
  #retry: ReturnType<typeof setTimeout> | null = null;
  #reconnects = 0;
  #duplicatesDropped = 0;

  constructor(name: string, options: ChannelOptions = {}) {
    super();
    if (!CHANNEL_NAME.test(name)) {
      throw new Error(
        `invalid channel name ${JSON.stringify(name)}: use 1-256 characters of A-Z a-z 0-9 _ . : / -`,
      );
    }
    this.name = name;
    this.#options = options;
    this.#server = (options.server ?? globalThis.location?.origin ?? '').replace(/\/+$/, '');
    this.#lastId = options.since;
    if (options.identity) identityTokens.set(this.#server, options.identity);
    const wanted = options.transport ?? 'auto';
    this.#factories = CHANNEL_TRANSPORTS.filter(
      (f) =>
        (wanted === 'auto' || f.kind === wanted) &&
        (f.kind !== 'datachannel' || options.peer !== undefined) &&
        f.available(),
    );
    if (this.#factories.length === 0) {
      throw new Error(`no usable transport for channel "${name}" (asked for ${wanted})`);
    }
    this.#backoff = new Backoff(options.backoffBaseMs ?? 250, options.backoffMaxMs ?? 10_000);
    this.#connect();
  }

  get state(): ChannelState {
    return this.#state;
  }

  get transport(): ChannelTransportKind | null {
    return this.#transport?.kind ?? null;
  }

  /** Id of the newest message delivered (or skipped by a gap); what a reconnect resumes after. */
  get lastId(): number | undefined {
    return this.#lastId;
  }

  /** The latest presence the server published for this channel, or null before the first. */
  get presence(): ChannelPresence | null {
    return this.#presence;
  }

  /** The token that keeps this client's identity across connections (store it to keep it across visits). */
  get identityToken(): string | undefined {
    return identityTokens.get(this.#server);
  }

  /** This client's identity as the server names it (the `from` of what it publishes), once known. */
  get identity(): string | undefined {
    const token = this.identityToken;
    return token ? token.slice(0, token.lastIndexOf('.')) : undefined;
  }

  get reconnects(): number {
    return this.#reconnects;
  }

  /** Messages that reached the client twice and were dropped (should stay 0; the server resumes exactly). */
  get duplicatesDropped(): number {
    return this.#duplicatesDropped;
  }

  /** Publishes; resolves with the id the server assigned, rejects with a PublishError saying why not. */
  publish(type: string, data: unknown): Promise<{ id: number; channel: string }> {
    if (!this.#transport) return Promise.reject(new Error(`channel "${this.name}" is ${this.#state}`));
    return this.#transport.publish(type, data);
  }

  /** Drops the current connection as if the network had; the channel reconnects and resumes (for tests). */
  reconnect(): void {
    this.#transport?.close();
    this.#transport = null;
    this.#scheduleReconnect('reconnect requested');
  }

  close(): void {
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = null;
    this.#transport?.close();
    this.#transport = null;
    this.#setState('closed');
  }

  #setState(state: ChannelState, extra: { retryInMs?: number; reason?: string } = {}): void {
    this.#state = state;
    this.emit(ChannelEvent.State, { state, transport: this.transport, ...extra });
  }

  #connect(): void {
    const factory = this.#factories[this.#index];
    let current: ChannelTransport | null = null;
    // A transport has worked once the server confirmed the subscription: a proxy that accepts a WebSocket
    // upgrade and then cuts it is a failure to connect, not a connection lost.
    let subscribed = false;
    const live = () => current !== null && this.#transport === current;
    current = factory.create(
      {
        server: this.#server,
        channel: this.name,
        heartbeatMs: this.#options.heartbeatMs ?? 15_000,
        pollTimeoutMs: this.#options.pollTimeoutMs,
        peer: this.#options.peer,
        ephemeral: this.#options.ephemeral,
        identity: () => identityTokens.get(this.#server),
        accessToken: this.#options.token,
      },
      {
        onSubscribed: (position) => {
          if (!live()) return;
          subscribed = true;
          this.#worked.add(factory.kind);
          this.#lastId ??= position;
          this.#failures = 0;
          this.#backoff.reset();
          this.#setState('open');
        },
        onIdentity: (token) => {
          identityTokens.set(this.#server, token);
        },
        onMessage: (message) => {
          if (!live()) return;
          this.#deliver(message);
        },
        onGap: (gap) => {
          if (!live()) return;
          this.#lastId = gap.resumeFrom;
          this.emit(ChannelEvent.Gap, gap);
        },
        onPresence: (presence) => {
          if (!live()) return;
          this.#presence = presence;
          this.emit(ChannelEvent.Presence, presence);
        },
        onError: (code, message) => {
          if (live()) this.emit(ChannelEvent.Error, { code, message, fatal: false });
        },
        onClosed: (reason, _opened, fatal) => {
          if (!live()) return;
          this.#transport = null;
          if (fatal) {
            this.emit(ChannelEvent.Error, { code: 'refused', message: reason, fatal: true });
            this.#setState('closed', { reason });
            return;
          }
          if (
            !subscribed &&
            // One that worked before is retried (the server may be restarting), not given up.
            !this.#worked.has(factory.kind) &&
            ++this.#failures >= ATTEMPTS_BEFORE_FALLBACK &&
            this.#index < this.#factories.length - 1
          ) {
            this.#index++;
            this.#failures = 0;
            this.#backoff.reset();
          }
          this.#scheduleReconnect(reason);
        },
      },
    );
    this.#transport = current;
    current.open(this.#lastId);
  }

  #deliver(message: ChannelMessage): void {
    if (this.#lastId !== undefined && message.id <= this.#lastId) {
      this.#duplicatesDropped++;
      return;
    }
    this.#lastId = message.id;
    this.emit(ChannelEvent.Message, message);
  }

  #scheduleReconnect(reason: string): void {
    if (this.#retry) return;
    const delay = this.#backoff.next();
    this.#setState('reconnecting', { retryInMs: delay, reason });
    this.#retry = setTimeout(() => {
      this.#retry = null;
      this.#reconnects++;
      this.#connect();
    }, delay);
  }
}

/** `subsecond.channel('live/cam1:chat')`: opens the channel at once. */
export function channel(name: string, options?: ChannelOptions): SubsecondChannel {
  return new SubsecondChannel(name, options);
}
