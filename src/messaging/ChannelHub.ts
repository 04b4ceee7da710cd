import type { Logger } from '../core/log.ts';
import { type GapEvent, PresenceFrame, type StoredMessage } from './Message.ts';
import { ChannelLimitError, type MessageBus, type TransportCounts, type Unsubscribe } from './MessageBus.ts';
import { MessagingError } from './protocol.ts';

/** One connection's subscription to one channel, as the hub sees it. */
export interface HubSubscriber {
  readonly channel: string;
  readonly transport: string;
  /** False for a listener that is not a client (a held long-poll): not counted in presence. */
  readonly counted?: boolean;
  /** Every live message of the channel, in id order, once. */
  offer(message: StoredMessage): void;
  offerPresence(presence: PresenceFrame): void;
  /** The bus could not deliver the ids up to `gap.resumeFrom` (it lost them); the next message follows it. */
  offerGap?(gap: GapEvent): void;
}

class LocalChannel {
  readonly name: string;
  readonly subscribers = new Set<HubSubscriber>();
  readonly counts = new Map<string, number>();
  readonly unsubscribe: Unsubscribe[] = [];
  lastReportAt = Number.NEGATIVE_INFINITY;
  reportTimer: NodeJS.Timeout | null = null;

  constructor(name: string) {
    this.name = name;
  }
}

/**
 * This node's side of the channels: one bus subscription per channel however many local connections follow
 * it, fan-out of each message (already encoded) to them, and presence — local counts reported to the bus at
 * most every `presenceIntervalMs` per channel, totals from the bus delivered as one encoded event.
 */
export class ChannelHub {
  readonly #bus: MessageBus;
  readonly #node: string;
  readonly #presenceIntervalMs: number;
  readonly #viewersOf: (channel: string) => number | undefined;
  readonly #channels = new Map<string, LocalChannel>();
  readonly #log: Logger;

  constructor(options: {
    bus: MessageBus;
    node: string;
    presenceIntervalMs: number;
    viewersOf?: (channel: string) => number | undefined;
    log: Logger;
  }) {
    this.#bus = options.bus;
    this.#node = options.node;
    this.#presenceIntervalMs = options.presenceIntervalMs;
    this.#viewersOf = options.viewersOf ?? (() => undefined);
    this.#log = options.log;
  }

  /** Local subscriber count of a channel (0 when nobody here follows it). */
  subscriberCount(channel: string): number {
    return this.#channels.get(channel)?.subscribers.size ?? 0;
  }

  get channels(): ReadonlyMap<string, { readonly subscribers: ReadonlySet<HubSubscriber> }> {
    return this.#channels;
  }

  /** Throws MessagingError `unavailable` when the bus cannot open the channel. */
  add(subscriber: HubSubscriber): void {
    let local = this.#channels.get(subscriber.channel);
    if (!local) {
      const created = new LocalChannel(subscriber.channel);
      try {
        created.unsubscribe.push(
          this.#bus.subscribe(
            created.name,
            (message) => this.#deliver(created, message),
            (gap) => {
              for (const subscriber of created.subscribers) subscriber.offerGap?.(gap);
            },
          ),
        );
        created.unsubscribe.push(
          this.#bus.subscribePresence(created.name, (totals) => this.#presence(created, totals)),
        );
      } catch (err) {
        for (const unsubscribe of created.unsubscribe) unsubscribe();
        if (err instanceof ChannelLimitError) {
          throw new MessagingError('unavailable', err.message, { channel: created.name });
        }
        throw err;
      }
      local = created;
      this.#channels.set(created.name, created);
    }
    local.subscribers.add(subscriber);
    if (subscriber.counted === false) return;
    local.counts.set(subscriber.transport, (local.counts.get(subscriber.transport) ?? 0) + 1);
    this.#scheduleReport(local);
  }

  remove(subscriber: HubSubscriber): void {
    const local = this.#channels.get(subscriber.channel);
    if (!local?.subscribers.delete(subscriber)) return;
    if (subscriber.counted !== false) {
      const n = (local.counts.get(subscriber.transport) ?? 1) - 1;
      if (n > 0) local.counts.set(subscriber.transport, n);
      else local.counts.delete(subscriber.transport);
    }
    if (local.subscribers.size > 0) {
      if (subscriber.counted !== false) this.#scheduleReport(local);
      return;
    }
    // Last one gone: tell the bus at once (nobody here is left to rate-limit for) and let go of the channel.
    if (local.reportTimer) clearTimeout(local.reportTimer);
    this.#channels.delete(local.name);
    for (const unsubscribe of local.unsubscribe) unsubscribe();
    this.#bus.reportPresence(local.name, this.#node, {});
  }

  /** Re-publishes presence for channels of a stream whose viewer count changed. */
  streamViewersChanged(streamPath: string): void {
    const prefix = `${streamPath}:`;
    for (const local of this.#channels.values()) {
      if (local.name.startsWith(prefix)) this.#scheduleReport(local);
    }
  }

  close(): void {
    for (const local of [...this.#channels.values()]) {
      for (const subscriber of [...local.subscribers]) this.remove(subscriber);
    }
  }

  #deliver(local: LocalChannel, message: StoredMessage): void {
    for (const subscriber of local.subscribers) {
      try {
        subscriber.offer(message);
      } catch (err) {
        this.#log.error(
          { err, channel: local.name },
          'a subscriber failed to take a message; others continue',
        );
      }
    }
  }

  #scheduleReport(local: LocalChannel): void {
    if (local.reportTimer) return;
    const wait = local.lastReportAt + this.#presenceIntervalMs - performance.now();
    if (wait <= 0) {
      this.#report(local);
      return;
    }
    local.reportTimer = setTimeout(() => {
      local.reportTimer = null;
      if (this.#channels.get(local.name) === local) this.#report(local);
    }, wait);
    local.reportTimer.unref();
  }

  #report(local: LocalChannel): void {
    local.lastReportAt = performance.now();
    this.#bus.reportPresence(local.name, this.#node, Object.fromEntries(local.counts));
  }

  #presence(local: LocalChannel, totals: TransportCounts): void {
    let connections = 0;
    for (const n of Object.values(totals)) connections += n;
    const viewers = this.#viewersOf(local.name);
    const frame = new PresenceFrame({
      channel: local.name,
      connections,
      transports: totals,
      ...(viewers === undefined ? {} : { viewers }),
    });
    for (const subscriber of local.subscribers) subscriber.offerPresence(frame);
  }
}
