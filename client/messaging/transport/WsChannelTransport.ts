import {
  type ChannelTransport,
  type ChannelTransportContext,
  type ChannelTransportFactory,
  type ChannelTransportObserver,
  channelQuery,
} from './ChannelTransport.ts';
import { FrameProtocol, type ServerFrame } from './frameProtocol.ts';
import { httpPublish } from './httpPublish.ts';

/** Close codes after which reconnecting cannot help (src/messaging/ws/WsChannelServer.ts). */
const FATAL_CLOSE = new Set([1008, 4401]);

/** The channel over `GET /ws/channels/{name}?since=N`: JSON frames both ways, publishes acknowledged by id. */
class WsChannelTransport implements ChannelTransport {
  readonly kind = 'ws';
  readonly #context: ChannelTransportContext;
  readonly #observer: ChannelTransportObserver;
  #ws: WebSocket | null = null;
  #opened = false;
  #closed = false;
  readonly #protocol: FrameProtocol;
  #heartbeat: ReturnType<typeof setInterval> | null = null;
  #lastFrameAt = 0;

  constructor(context: ChannelTransportContext, observer: ChannelTransportObserver) {
    this.#context = context;
    this.#observer = observer;
    this.#protocol = new FrameProtocol(observer, (reason) => {
      this.#end(reason, true);
      this.#ws?.close();
    });
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
      if (typeof event.data === 'string') this.#protocol.handle(JSON.parse(event.data) as ServerFrame);
    };
    ws.onclose = (event) => {
      const reason = event.reason || `socket closed (${event.code})`;
      this.#end(reason, FATAL_CLOSE.has(event.code));
    };
  }

  #end(reason: string, fatal: boolean): void {
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#heartbeat = null;
    this.#protocol.rejectPending(reason);
    if (this.#closed) return;
    this.#closed = true;
    this.#observer.onClosed(reason, this.#opened, fatal);
  }

  publish(type: string, data: unknown): Promise<{ id: number; channel: string }> {
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN)
      return httpPublish(this.#context.server, this.#context.channel, type, data, {
        token: this.#context.identity(),
        accessToken: this.#context.accessToken,
        learn: (token) => this.#observer.onIdentity(token),
      });
    return this.#protocol.publish((text) => ws.send(text), this.#context.channel, type, data);
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
