import type { ChannelGap, ChannelMessage, ChannelPresence } from '../ChannelTypes.ts';
import {
  type ChannelTransport,
  type ChannelTransportContext,
  type ChannelTransportFactory,
  type ChannelTransportObserver,
  channelQuery,
} from './ChannelTransport.ts';
import { httpPublish } from './httpPublish.ts';

/**
 * The channel over `GET /sse/channels/{name}` (EventSource) with publishes over HTTP POST. EventSource would
 * reconnect by itself with Last-Event-ID; the channel does it instead, so back-off and fallback are one
 * policy for every transport — and it passes the same resume position as `?since=`.
 */
class SseChannelTransport implements ChannelTransport {
  readonly kind = 'sse';
  readonly #context: ChannelTransportContext;
  readonly #observer: ChannelTransportObserver;
  #source: EventSource | null = null;
  #opened = false;
  #closed = false;

  constructor(context: ChannelTransportContext, observer: ChannelTransportObserver) {
    this.#context = context;
    this.#observer = observer;
  }

  open(since: number | undefined): void {
    const source = new EventSource(
      `${this.#context.server}/sse/channels/${this.#context.channel}${channelQuery(this.#context, since)}`,
    );
    this.#source = source;
    const data = (event: Event) =>
      JSON.parse((event as MessageEvent<string>).data) as Record<string, unknown>;
    source.onopen = () => {
      this.#opened = true;
    };
    source.addEventListener('hello', (e) => {
      const token = data(e).token;
      if (typeof token === 'string') this.#observer.onIdentity(token);
    });
    source.addEventListener('subscribed', (e) => this.#observer.onSubscribed(data(e).position as number));
    source.addEventListener('message', (e) => this.#observer.onMessage(data(e) as unknown as ChannelMessage));
    source.addEventListener('gap', (e) => this.#observer.onGap(data(e) as unknown as ChannelGap));
    source.addEventListener('presence', (e) =>
      this.#observer.onPresence(data(e) as unknown as ChannelPresence),
    );
    source.addEventListener('refused', (e) => {
      const refusal = data(e);
      this.#observer.onError(String(refusal.code), String(refusal.message));
    });
    source.onerror = () => {
      // A refused request (4xx) leaves EventSource CLOSED; a dropped stream leaves it CONNECTING. Either way
      // the channel takes over.
      source.close();
      if (this.#closed) return;
      this.#closed = true;
      this.#observer.onClosed('event stream ended', this.#opened, false);
    };
  }

  publish(type: string, data: unknown): Promise<{ id: number; channel: string }> {
    return httpPublish(this.#context.server, this.#context.channel, type, data, {
      token: this.#context.identity(),
      accessToken: this.#context.accessToken,
      learn: (token) => this.#observer.onIdentity(token),
    });
  }

  close(): void {
    this.#closed = true;
    this.#source?.close();
  }
}

export const sseChannelTransport: ChannelTransportFactory = {
  kind: 'sse',
  available: () => typeof EventSource !== 'undefined',
  create: (context, observer) => new SseChannelTransport(context, observer),
};
