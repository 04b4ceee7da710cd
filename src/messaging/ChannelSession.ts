import { isLoopback } from '../auth/PublishPolicy.ts';
import type { HubSubscriber } from './ChannelHub.ts';
import type { Identity } from './ChannelPolicy.ts';
import type { GapEvent, MessageDraft, PresenceFrame, StoredMessage } from './Message.ts';
import type { Messaging } from './Messaging.ts';
import { type ClientFrame, MessagingError, parseClientFrame, type ServerEvent } from './protocol.ts';
import { TokenBucket } from './TokenBucket.ts';

/** Control frames (everything but publish) per connection: sustained per second, and burst. */
const CONTROL_RATE = 20;
const CONTROL_BURST = 50;

/** The transports a connection can arrive over. */
export type TransportKind = 'ws' | 'sse' | 'poll' | 'datachannel';

/**
 * What a transport implements to carry a session to its client. Messages and presence come already encoded
 * (`message.frame` / `message.sseEvent`, the same bytes for every subscriber); control events are rare and
 * per connection. A WebRTC data channel plugs in by implementing this (send `frame` as a text message) and
 * feeding the channel's incoming text to `ChannelSession.handleFrame` — see docs/protocols/messaging.md.
 */
export interface ConnectionSink {
  readonly transport: TransportKind;
  message(message: StoredMessage): void;
  presence(presence: PresenceFrame): void;
  event(event: ServerEvent): void;
  /**
   * A sink that can report its unsent backlog lets a replay wait for it instead of pushing a whole history
   * at once (which would pass messaging.maxBacklogBytes and close the connection it resumes): true while the
   * backlog is too high to send more replay.
   */
  backlogged?(): boolean;
  /** Calls `resume` once, when a backlog that `backlogged` reported has drained. */
  whenDrained?(resume: () => void): void;
  /** The replay waiting for this sink passed what the history holds: the client cannot catch up; drop it. */
  tooSlow?(): void;
  /**
   * A subscription failed because the bus is unreachable for now (Redis down): end the connection so the
   * client reconnects and resumes by itself, rather than holding a connection that follows nothing.
   */
  retryLater?(reason: string): void;
}

/** One connection's subscription to one channel: replay first, then live, each id once and in order. */
class Subscription implements HubSubscriber {
  readonly channel: string;
  readonly transport: string;
  readonly #sink: ConnectionSink;
  /** At most this many messages wait for a backlogged sink (the history's size: no more can be resumed). */
  readonly #maxWaiting: number;
  /** Live messages that arrived while the replay was being fetched. */
  #buffered: StoredMessage[] | null = [];
  /** Replay, and live messages behind it, waiting for the sink's backlog to drain; sent from #next on. */
  #waiting: StoredMessage[] = [];
  #next = 0;
  #pendingPresence: PresenceFrame | null = null;
  /** Newest id handed to the sink; nothing at or below it is delivered again. */
  lastDelivered = 0;
  closed = false;

  constructor(channel: string, sink: ConnectionSink, maxWaiting: number) {
    this.channel = channel;
    this.transport = sink.transport;
    this.#sink = sink;
    this.#maxWaiting = maxWaiting;
  }

  offer(message: StoredMessage): void {
    if (this.#buffered) {
      this.#buffered.push(message);
      return;
    }
    if (this.#next < this.#waiting.length) {
      this.#waiting.push(message);
      if (this.#waiting.length - this.#next > this.#maxWaiting) this.#sink.tooSlow?.();
      return;
    }
    this.#deliver(message);
  }

  /** A gap the bus reported while a replay is pending or waiting: told where the sequence reaches it. */
  #busGap: GapEvent | null = null;

  offerGap(gap: GapEvent): void {
    if (this.#buffered || this.#next < this.#waiting.length) {
      if (!this.#busGap || gap.resumeFrom > this.#busGap.resumeFrom) this.#busGap = gap;
      return;
    }
    this.#tellGap(gap);
  }

  #tellGap(gap: GapEvent): void {
    const since = this.lastDelivered;
    if (gap.resumeFrom <= since) return;
    this.lastDelivered = gap.resumeFrom;
    const missed = gap.reason === 'reset' ? 0 : gap.resumeFrom - since;
    this.#sink.event({ event: 'gap', ...gap, since, missed });
  }

  #deliver(message: StoredMessage): void {
    if (this.#busGap && message.id > this.#busGap.resumeFrom) {
      this.#tellGap(this.#busGap);
      this.#busGap = null;
    }
    if (message.id <= this.lastDelivered) return;
    this.lastDelivered = message.id;
    this.#sink.message(message);
  }

  offerPresence(presence: PresenceFrame): void {
    if (this.#buffered) this.#pendingPresence = presence;
    else this.#sink.presence(presence);
  }

  /** Delivers the replay, then what arrived meanwhile, and goes live. */
  goLive(position: number, gap: GapEvent | null, replay: readonly StoredMessage[], lastId: number): void {
    this.lastDelivered = position;
    this.#sink.event({ event: 'subscribed', channel: this.channel, position, lastId });
    if (gap) this.#sink.event({ event: 'gap', ...gap });
    const buffered = this.#buffered ?? [];
    this.#buffered = null;
    this.#waiting = replay.concat(buffered);
    this.#next = 0;
    this.#drain();
    if (this.#pendingPresence) this.#sink.presence(this.#pendingPresence);
    this.#pendingPresence = null;
  }

  /** Sends what waits while the sink takes it; when it is backlogged, continues once it has drained. */
  readonly #drain = (): void => {
    const waiting = this.#waiting;
    while (this.#next < waiting.length) {
      if (this.closed) return;
      if (this.#sink.whenDrained && this.#sink.backlogged?.()) {
        this.#sink.whenDrained(this.#drain);
        return;
      }
      this.#deliver(waiting[this.#next++]);
    }
    this.#waiting = [];
    this.#next = 0;
    if (this.#busGap) {
      this.#tellGap(this.#busGap);
      this.#busGap = null;
    }
  };
}

/**
 * A client connection to the messaging layer, whatever carries it: its identity, its subscriptions, its
 * publish rate limit. Transports translate their wire format to these calls and nothing else.
 */
export class ChannelSession {
  readonly identity: Identity;
  readonly remoteAddress: string;
  readonly sink: ConnectionSink;
  readonly #messaging: Messaging;
  readonly #subscriptions = new Map<string, Subscription>();
  /**
   * Made on first use, full, as they would be if made at connect: most connections only read, and an idle
   * connection's memory is what a server with 10,000 viewers holds 10,000 times.
   */
  #bucket: TokenBucket | null = null;
  #controlBucket: TokenBucket | null = null;
  #closed = false;
  /** The previous publish, so the next waits for it (#publishNow never rejects); null before the first. */
  #publishing: Promise<unknown> | null = null;

  constructor(messaging: Messaging, sink: ConnectionSink, identity: Identity, remoteAddress: string) {
    this.#messaging = messaging;
    this.sink = sink;
    this.identity = identity;
    this.remoteAddress = remoteAddress;
    sink.event({
      event: 'hello',
      identity: identity.id,
      ...(identity.token === undefined ? {} : { token: identity.token }),
    });
  }

  get channels(): string[] {
    return [...this.#subscriptions.keys()];
  }

  /** Newest id delivered on a channel, or undefined when not subscribed. */
  lastDelivered(channel: string): number | undefined {
    return this.#subscriptions.get(channel)?.lastDelivered;
  }

  /** One socket-protocol frame (WebSocket or data channel text). Refusals go to the sink as error events. */
  async handleFrame(text: string): Promise<void> {
    let frame: ClientFrame;
    try {
      frame = parseClientFrame(text);
    } catch (err) {
      try {
        this.#takeControlToken();
        this.#refuse(err);
      } catch (limited) {
        this.#refuse(limited);
      }
      return;
    }
    if (frame.op !== 'publish') {
      try {
        this.#takeControlToken();
      } catch (limited) {
        this.#refuse(
          limited,
          frame.op === 'ping' ? frame.ref : undefined,
          'channel' in frame ? frame.channel : undefined,
        );
        return;
      }
    }
    switch (frame.op) {
      case 'subscribe':
        await this.subscribe(frame.channel, frame.since);
        return;
      case 'unsubscribe':
        this.unsubscribe(frame.channel);
        return;
      case 'publish':
        await this.publish(frame.channel, { type: frame.type, data: frame.data }, frame.ref);
        return;
      case 'ping':
        this.sink.event({ event: 'pong', ...(frame.ref === undefined ? {} : { ref: frame.ref }) });
        return;
    }
  }

  /** Subscribes and replays after `since` (undefined: from now). False, with an error event, when refused. */
  async subscribe(rawChannel: string, since: number | undefined): Promise<boolean> {
    if (this.#closed) return false;
    let channel: string;
    try {
      channel = this.#messaging.authorize(this.identity, rawChannel, 'subscribe');
      if (this.#subscriptions.has(channel)) {
        // Re-subscribing is how a client asks for a fresh replay; the old subscription goes first.
        this.unsubscribe(channel, false);
      }
      const max = this.#messaging.config.maxChannelsPerConnection;
      if (this.#subscriptions.size >= max) {
        throw new MessagingError(
          'too_many_channels',
          `cannot subscribe to "${channel}": this connection already follows ${max} channels (messaging.maxChannelsPerConnection)`,
          { channel },
        );
      }
    } catch (err) {
      this.#refuse(err);
      return false;
    }
    const subscription = new Subscription(channel, this.sink, this.#messaging.config.historyMaxMessages);
    this.#subscriptions.set(channel, subscription);
    try {
      // Subscribe before asking for the replay, so nothing published in between is lost; ids drop duplicates.
      this.#messaging.hub.add(subscription);
      const replay = await this.#messaging.bus.replay(channel, since);
      if (subscription.closed) return false;
      const position = replay.gap ? replay.gap.resumeFrom : (since ?? replay.lastId);
      subscription.goLive(position, replay.gap, replay.messages, replay.lastId);
      return true;
    } catch (err) {
      this.unsubscribe(channel, false);
      this.#refuse(err, undefined, channel);
      if (err instanceof MessagingError && err.code === 'unavailable' && err.retryAfterMs !== undefined) {
        this.sink.retryLater?.(err.message);
      }
      return false;
    }
  }

  unsubscribe(channel: string, tell = true): void {
    const subscription = this.#subscriptions.get(channel);
    if (!subscription) {
      if (tell) {
        this.#refuse(
          new MessagingError('not_subscribed', `not subscribed to ${JSON.stringify(channel)}`, { channel }),
        );
      }
      return;
    }
    subscription.closed = true;
    this.#subscriptions.delete(channel);
    this.#messaging.hub.remove(subscription);
    if (tell) this.sink.event({ event: 'unsubscribed', channel });
  }

  /**
   * Publishes as this session's identity; acknowledges with the id, or sends an error event. One
   * connection's publishes are stored in the order it sent them and answered in that order. Each is handed to
   * the bus at once rather than after the previous one's answer: a Redis bus sends them in order on its one
   * command connection and Redis runs them in that order, so a connection publishes at Redis's pace, not at
   * one round trip per message (bench:messaging --nodes 2 with 1,000 subscribers: 100 msg/s published one
   * after the other reached Redis at ~20/s under load).
   */
  publish(rawChannel: string, draft: MessageDraft, ref?: string): Promise<StoredMessage | null> {
    const outcome = this.#store(rawChannel, draft).then(
      (stored) => ({ stored, err: null }),
      (err: unknown) => ({ stored: null, err }),
    );
    const previous = this.#publishing ?? Promise.resolve();
    const run = previous.then(() => outcome.then(({ stored, err }) => this.#answer(stored, err, ref)));
    this.#publishing = run;
    return run;
  }

  /** Runs synchronously up to the bus's publish, so calls reach the bus in the order they were made. */
  async #store(rawChannel: string, draft: MessageDraft): Promise<StoredMessage | null> {
    if (this.#closed) return null;
    const { publishRatePerSecond, publishBurst } = this.#messaging.config;
    // Anonymous clients from other machines share one rate per address: opening more connections (up to
    // messaging.maxConnectionsPerIp) must not multiply what one address may write.
    const perAddress = this.identity.anonymous && !isLoopback(this.remoteAddress);
    let retryAfterMs: number;
    if (perAddress) retryAfterMs = this.#messaging.takeAddressPublishToken(this.remoteAddress);
    else {
      this.#bucket ??= new TokenBucket(publishRatePerSecond, publishBurst);
      retryAfterMs = this.#bucket.take();
    }
    if (retryAfterMs > 0) {
      throw new MessagingError(
        'rate_limited',
        `publish refused: more than ${publishRatePerSecond}/s (burst ${publishBurst}) from this ${perAddress ? 'address (anonymous clients share one rate per address)' : 'connection'}; retry in ${retryAfterMs} ms`,
        { retryAfterMs },
      );
    }
    return this.#messaging.publish(this.identity, rawChannel, draft);
  }

  #answer(stored: StoredMessage | null, err: unknown, ref: string | undefined): StoredMessage | null {
    if (err !== null) {
      this.#refuse(err, ref);
      return null;
    }
    if (stored && !this.#closed) {
      this.sink.event({
        event: 'ack',
        ...(ref === undefined ? {} : { ref }),
        channel: stored.channel,
        id: stored.id,
      });
    }
    return stored;
  }

  /**
   * Subscribes, unsubscribes, pings and malformed frames share one bucket: each subscribe may replay a whole
   * history, so a client must not be able to ask for that without bound.
   */
  #takeControlToken(): void {
    this.#controlBucket ??= new TokenBucket(CONTROL_RATE, CONTROL_BURST);
    const retryAfterMs = this.#controlBucket.take();
    if (retryAfterMs > 0) {
      throw new MessagingError(
        'rate_limited',
        `more than ${CONTROL_RATE}/s (burst ${CONTROL_BURST}) subscribe, unsubscribe, ping or invalid frames; retry in ${retryAfterMs} ms`,
        { retryAfterMs },
      );
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const channel of [...this.#subscriptions.keys()]) this.unsubscribe(channel, false);
  }

  #refuse(err: unknown, ref?: string, channel?: string): void {
    if (this.#closed) return;
    if (err instanceof MessagingError) {
      this.sink.event(err.toEvent(ref));
      return;
    }
    this.#messaging.log.error({ err, channel }, 'messaging operation failed');
    this.sink.event({
      event: 'error',
      code: 'unavailable',
      message: 'internal error; try again',
      ...(ref === undefined ? {} : { ref }),
    });
  }
}
