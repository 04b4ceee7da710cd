import type { ChannelGap, ChannelMessage } from '../ChannelTypes.ts';
import type {
  ChannelTransport,
  ChannelTransportContext,
  ChannelTransportFactory,
  ChannelTransportObserver,
} from './ChannelTransport.ts';
import { httpPublish } from './httpPublish.ts';

interface PollAnswer {
  last: number;
  gap?: ChannelGap;
  messages: ChannelMessage[];
}

/** The channel over `GET /poll/channels/{name}?since=N`, one held request after another; publishes over POST. */
class PollChannelTransport implements ChannelTransport {
  readonly kind = 'poll';
  readonly #context: ChannelTransportContext;
  readonly #observer: ChannelTransportObserver;
  readonly #abort = new AbortController();
  #closed = false;

  constructor(context: ChannelTransportContext, observer: ChannelTransportObserver) {
    this.#context = context;
    this.#observer = observer;
  }

  open(since: number | undefined): void {
    void this.#loop(since);
  }

  async #loop(since: number | undefined): Promise<void> {
    let opened = false;
    let position = since;
    while (!this.#closed) {
      const query = new URLSearchParams();
      if (position !== undefined) query.set('since', String(position));
      const identity = this.#context.identity();
      if (identity) query.set('identity', identity);
      if (this.#context.accessToken) query.set('token', this.#context.accessToken);
      // The first poll is answered at once, so the channel knows it is connected without waiting for a message.
      if (!opened) query.set('timeout', '0');
      else if (this.#context.pollTimeoutMs !== undefined)
        query.set('timeout', String(this.#context.pollTimeoutMs));
      let answer: PollAnswer;
      try {
        const response = await fetch(
          `${this.#context.server}/poll/channels/${this.#context.channel}?${query}`,
          {
            signal: this.#abort.signal,
            cache: 'no-store',
          },
        );
        if (!response.ok) {
          const body = (await response.json().catch(() => ({}))) as { error?: string };
          const fatal = response.status >= 400 && response.status < 500 && response.status !== 429;
          this.#end(body.error ?? `poll answered HTTP ${response.status}`, opened, fatal);
          return;
        }
        const token = response.headers.get('x-subsecond-identity');
        if (token) this.#observer.onIdentity(token);
        answer = (await response.json()) as PollAnswer;
      } catch (error) {
        this.#end(`poll failed: ${(error as Error).message}`, opened, false);
        return;
      }
      if (this.#closed) return;
      if (!opened) {
        opened = true;
        const first =
          answer.gap?.resumeFrom ??
          position ??
          (answer.messages.length ? answer.messages[0].id - 1 : answer.last);
        this.#observer.onSubscribed(first);
      }
      if (answer.gap) this.#observer.onGap(answer.gap);
      for (const message of answer.messages) this.#observer.onMessage(message);
      position = answer.last;
    }
  }

  #end(reason: string, opened: boolean, fatal: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#observer.onClosed(reason, opened, fatal);
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
    this.#abort.abort();
  }
}

export const pollChannelTransport: ChannelTransportFactory = {
  kind: 'poll',
  available: () => typeof fetch !== 'undefined',
  create: (context, observer) => new PollChannelTransport(context, observer),
};
