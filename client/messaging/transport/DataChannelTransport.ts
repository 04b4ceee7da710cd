import type {
  ChannelTransport,
  ChannelTransportContext,
  ChannelTransportFactory,
  ChannelTransportObserver,
} from './ChannelTransport.ts';
import { FrameProtocol, type ServerFrame } from './frameProtocol.ts';
import { httpPublish } from './httpPublish.ts';

/**
 * While the lent session replaces its peer connection, a new one must come and its channel open within this,
 * or the attempt fails (two failures and the channel falls back).
 */
const OPEN_TIMEOUT_MS = 5000;
const WAIT_STEP_MS = 100;

/**
 * The channel over a data channel of the page's WebRTC session (MessagingPeer): the WebSocket frame protocol
 * unchanged, with an explicit subscribe frame (a data channel has no URL). The data channel ends with its
 * peer connection; the channel then reconnects (on the next peer connection, or falls back to WebSocket).
 */
class DataChannelTransport implements ChannelTransport {
  readonly kind = 'datachannel';
  readonly #context: ChannelTransportContext;
  readonly #observer: ChannelTransportObserver;
  #dc: RTCDataChannel | null = null;
  #opened = false;
  #closed = false;
  readonly #protocol: FrameProtocol;
  #timer: ReturnType<typeof setTimeout> | null = null;

  constructor(context: ChannelTransportContext, observer: ChannelTransportObserver) {
    this.#context = context;
    this.#observer = observer;
    this.#protocol = new FrameProtocol(observer, (reason) => {
      this.#end(reason, true);
      this.#dc?.close();
    });
  }

  open(since: number | undefined): void {
    const deadline = performance.now() + OPEN_TIMEOUT_MS;
    const attempt = () => {
      this.#timer = null;
      if (this.#closed) return;
      const dc =
        this.#context.peer?.openChannel(
          this.#context.ephemeral ? { ordered: false, maxRetransmits: 0 } : undefined,
        ) ?? null;
      if (!dc) {
        if (!this.#context.peer?.everAttached) {
          this.#end('no WebRTC session was lent to messaging', false);
        } else if (performance.now() > deadline) {
          this.#end(`no WebRTC session to carry messaging within ${OPEN_TIMEOUT_MS / 1000} s`, false);
        } else {
          this.#timer = setTimeout(attempt, WAIT_STEP_MS);
        }
        return;
      }
      this.#use(dc, since, deadline);
    };
    attempt();
  }

  #use(dc: RTCDataChannel, since: number | undefined, deadline: number): void {
    this.#dc = dc;
    const subscribe = () => {
      this.#opened = true;
      if (this.#timer) clearTimeout(this.#timer);
      this.#timer = null;
      dc.send(
        JSON.stringify({
          op: 'subscribe',
          channel: this.#context.channel,
          ...(since === undefined ? {} : { since }),
        }),
      );
    };
    dc.onmessage = (event) => {
      if (typeof event.data === 'string') this.#protocol.handle(JSON.parse(event.data) as ServerFrame);
    };
    dc.onclose = () => this.#end('data channel closed', false);
    if (dc.readyState === 'open') subscribe();
    else {
      dc.onopen = subscribe;
      this.#timer = setTimeout(
        () => {
          this.#end(`data channel did not open within ${OPEN_TIMEOUT_MS / 1000} s`, false);
          dc.close();
        },
        Math.max(0, deadline - performance.now()),
      );
    }
  }

  #end(reason: string, fatal: boolean): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#protocol.rejectPending(reason);
    if (this.#closed) return;
    this.#closed = true;
    this.#observer.onClosed(reason, this.#opened, fatal);
  }

  publish(type: string, data: unknown): Promise<{ id: number; channel: string }> {
    const dc = this.#dc;
    if (dc?.readyState !== 'open') {
      // Between two data channels (the peer connection is being replaced): over HTTP, as the others do.
      return httpPublish(this.#context.server, this.#context.channel, type, data, {
        token: this.#context.identity(),
        accessToken: this.#context.accessToken,
        learn: (token) => this.#observer.onIdentity(token),
      });
    }
    return this.#protocol.publish((text) => dc.send(text), this.#context.channel, type, data);
  }

  close(): void {
    this.#closed = true;
    this.#end('closed', false);
    const dc = this.#dc;
    this.#dc = null;
    if (dc) {
      dc.onclose = null;
      dc.close();
    }
  }
}

export const dataChannelTransport: ChannelTransportFactory = {
  kind: 'datachannel',
  available: () => typeof RTCPeerConnection !== 'undefined',
  create: (context, observer) => new DataChannelTransport(context, observer),
};
