import { type ChannelGap, type ChannelMessage, type ChannelPresence, PublishError } from '../ChannelTypes.ts';
import type { ChannelTransportObserver } from './ChannelTransport.ts';

export type ServerFrame = { event: string } & Record<string, unknown>;

interface Pending {
  resolve(ack: { id: number; channel: string }): void;
  reject(error: Error): void;
}

/**
 * The client side of the socket frame protocol (docs/protocols/messaging.md), one for every transport that
 * speaks it (WebSocket, data channel): server frames become observer calls, and publishes are matched to their
 * acknowledgements by ref.
 */
export class FrameProtocol {
  readonly #observer: ChannelTransportObserver;
  /** The server refused the channel itself (forbidden, invalid name): retrying cannot help. */
  readonly #onFatal: (reason: string) => void;
  readonly #pending = new Map<string, Pending>();
  #ref = 0;

  constructor(observer: ChannelTransportObserver, onFatal: (reason: string) => void) {
    this.#observer = observer;
    this.#onFatal = onFatal;
  }

  handle(frame: ServerFrame): void {
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
          this.#onFatal(error.message);
        } else {
          this.#observer.onError(error.code, error.message);
        }
        return;
      }
    }
  }

  /** Sends a publish frame through `send`; resolves with the server's ack. */
  publish(
    send: (text: string) => void,
    channel: string,
    type: string,
    data: unknown,
  ): Promise<{ id: number; channel: string }> {
    const ref = `p${++this.#ref}`;
    return new Promise((resolve, reject) => {
      this.#pending.set(ref, { resolve, reject });
      send(JSON.stringify({ op: 'publish', channel, type, data, ref }));
    });
  }

  /** The connection ended: every publish still waiting for its ack fails with `reason`. */
  rejectPending(reason: string): void {
    for (const pending of this.#pending.values()) {
      pending.reject(
        new PublishError('transport', `connection lost before the server acknowledged: ${reason}`),
      );
    }
    this.#pending.clear();
  }
}
