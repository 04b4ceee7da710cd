import { type ChannelGap, type ChannelMessage, type ChannelPresence, PublishError } from '../ChannelTypes.ts';
import {
  type ChannelTransport,
  type ChannelTransportContext,
  type ChannelTransportFactory,
  type ChannelTransportObserver,
  channelQuery,
} from './ChannelTransport.ts';
import { httpPublish } from './httpPublish.ts';

interface Pending {
  resolve(ack: { id: number; channel: string }): void;
  reject(error: Error): void;
}

/** Close codes after which reconnecting cannot help (src/messaging/ws/WsChannelServer.ts). */
const FATAL_CLOSE = new Set([1008, 4401]);

type ServerFrame = { event: string } & Record<string, unknown>;

/** The channel over `GET /ws/channels/{name}?since=N`: JSON frames both ways, publishes acknowledged by id. */
class WsChannelTransport implements ChannelTransport {
  readonly kind = 'ws';
  readonly #context: ChannelTransportContext;
  readonly #observer: ChannelTransportObserver;
  #ws: WebSocket | null = null;
  #opened = false;
  #closed = false;
  #ref = 0;
  readonly #pending = new Map<string, Pending>();
  #heartbeat: ReturnType<typeof setInterval> | null = null;
  #lastFrameAt = 0;

  constructor(context: ChannelTransportContext, observer: ChannelTransportObserver) {
    this.#context = context;
    this.#observer = observer;
  }

  open(since: number | undefined): void {
    const base = this.#context.server.replace(/^http/, 'ws');
    const ws = new WebSocket(
      `${base}/ws/channels/${this.#context.channel}${channelQuery(this.#context, since)}`,
    );
    this.#ws = ws;
    ws.onopen = () => {
      this.#opened = true;
      this.#lastFrameAt = performance.now();
      // Browsers answer server pings but cannot send their own; an application ping tells us the path is alive.
      this.#heartbeat = setInterval(() => {
        if (performance.now() - this.#lastFrameAt > 2 * this.#context.heartbeatMs) {
          this.#end('no answer from the server for two heartbeats', false);
          ws.close();
          return;
        }
        ws.send('{"op":"ping"}');
      }, this.#context.heartbeatMs);
    };
    ws.onmessage = (event) => {
      this.#lastFrameAt = performance.now();
      if (typeof event.data === 'string') this.#frame(JSON.parse(event.data) as ServerFrame);
    };
    ws.onclose = (event) => {
      const reason = event.reason || `socket closed (${event.code})`;
      this.#end(reason, FATAL_CLOSE.has(event.code));
    };
  }

  #frame(frame: ServerFrame): void {
    switch (frame.event) {
      case 'hello':
        if (typeof frame.token === 'string') this.#observer.onIdentity(frame.token);
        return;
      case 'message':
        this.#observer.onMessage(frame.message as ChannelMessage);
        return;
      case 'subscribed':
        this.#observer.onSubscribed(frame.position as number);
        return;
      case 'gap':
        this.#observer.onGap(frame as unknown as ChannelGap);
        return;
      case 'presence':
        this.#observer.onPresence(frame.presence as ChannelPresence);
        return;
      case 'ack': {
        const pending = this.#pending.get(frame.ref as string);
        this.#pending.delete(frame.ref as string);
        pending?.resolve({ id: frame.id as number, channel: frame.channel as string });
        return;
      }
      case 'error': {
        const pending = frame.ref === undefined ? undefined : this.#pending.get(frame.ref as string);
        const error = new PublishError(
          frame.code as string,
          frame.message as string,
          frame.retryAfterMs as number | undefined,
        );
        if (pending) {
          this.#pending.delete(frame.ref as string);
          pending.reject(error);
        } else if (frame.code === 'forbidden' || frame.code === 'invalid_channel') {
          this.#end(error.message, true);
          this.#ws?.close();
        } else {
          this.#observer.onError(error.code, error.message);
        }
        return;
      }
    }
  }

  #end(reason: string, fatal: boolean): void {
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#heartbeat = null;
    for (const pending of this.#pending.values()) {
      pending.reject(
        new PublishError('transport', `connection lost before the server acknowledged: ${reason}`),
      );
    }
    this.#pending.clear();
    if (this.#closed) return;
    this.#closed = true;
    this.#observer.onClosed(reason, this.#opened, fatal);
  }

  publish(type: string, data: unknown): Promise<{ id: number; channel: string }> {
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN)
      return httpPublish(this.#context.server, this.#context.channel, type, data, {
        token: this.#context.identity(),
        learn: (token) => this.#observer.onIdentity(token),
      });
    const ref = `p${++this.#ref}`;
    return new Promise((resolve, reject) => {
      this.#pending.set(ref, { resolve, reject });
      ws.send(JSON.stringify({ op: 'publish', channel: this.#context.channel, type, data, ref }));
    });
  }

  close(): void {
    this.#closed = true;
    this.#end('closed', false);
    this.#ws?.close(1000);
  }
}

export const wsChannelTransport: ChannelTransportFactory = {
  kind: 'ws',
  available: () => typeof WebSocket !== 'undefined',
  create: (context, observer) => new WsChannelTransport(context, observer),
};
