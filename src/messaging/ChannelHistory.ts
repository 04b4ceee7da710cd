import type { GapEvent, StoredMessage } from './Message.ts';

export interface HistoryLimits {
  /** At most this many messages are kept per channel… */
  readonly maxMessages: number;
  /** …and none older than this… */
  readonly maxAgeMs: number;
  /** …and at most this many bytes (StoredMessage.bytes); unbounded when absent. */
  readonly maxBytes?: number;
}

/** Bytes held by every history of a bus together, which each history keeps current as it adds and drops. */
export interface HistoryBudget {
  used: number;
}

/** What a client resuming after `since` gets: the retained messages after it, and a gap when it missed some. */
export interface Replay {
  readonly messages: readonly StoredMessage[];
  readonly gap: GapEvent | null;
  /** The channel's newest id when the replay was taken (0: nothing published yet). */
  readonly lastId: number;
}

/**
 * One channel's recent messages in a ring buffer bounded by count and age. Ids are dense, so the messages
 * after any id are found by arithmetic and what fell out is counted exactly.
 */
export class ChannelHistory {
  readonly channel: string;
  readonly #limits: HistoryLimits;
  readonly #ring: (StoredMessage | undefined)[];
  /** Index in the ring of the oldest retained message. */
  #start = 0;
  #size = 0;
  #bytes = 0;
  readonly #budget: HistoryBudget;
  /** The newest id ever stored, retained or not. */
  #lastId = 0;
  readonly #now: () => number;

  constructor(
    channel: string,
    limits: HistoryLimits,
    now: () => number = Date.now,
    budget: HistoryBudget = { used: 0 },
  ) {
    this.channel = channel;
    this.#budget = budget;
    this.#limits = limits;
    this.#ring = new Array(limits.maxMessages);
    this.#now = now;
  }

  get lastId(): number {
    return this.#lastId;
  }

  get size(): number {
    this.#expire();
    return this.#size;
  }

  /** Bytes of the retained messages. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Id the next message must carry. */
  get nextId(): number {
    return this.#lastId + 1;
  }

  append(message: StoredMessage): void {
    if (message.id !== this.#lastId + 1) {
      throw new Error(
        `channel "${this.channel}": message id ${message.id} does not follow ${this.#lastId}; ids are dense`,
      );
    }
    const capacity = this.#ring.length;
    if (this.#size === capacity) this.dropOldest();
    const maxBytes = this.#limits.maxBytes ?? Number.POSITIVE_INFINITY;
    while (this.#size > 0 && this.#bytes + message.bytes > maxBytes) this.dropOldest();
    this.#ring[(this.#start + this.#size) % capacity] = message;
    this.#size++;
    this.#bytes += message.bytes;
    this.#budget.used += message.bytes;
    this.#lastId = message.id;
    this.#expire();
  }

  /** Drops the oldest retained message (a client resuming before it gets an `evicted` gap); false if none. */
  dropOldest(): boolean {
    if (this.#size === 0) return false;
    const oldest = this.#ring[this.#start]!;
    this.#ring[this.#start] = undefined;
    this.#start = (this.#start + 1) % this.#ring.length;
    this.#size--;
    this.#bytes -= oldest.bytes;
    this.#budget.used -= oldest.bytes;
    return true;
  }

  /** Drops everything retained (the channel is forgotten); the budget gets its bytes back. */
  clear(): void {
    while (this.dropOldest()) {}
  }

  /**
   * Everything after `since`, oldest first. `since` undefined means "from now": no messages. A `since` past
   * the newest id can only come from before the ids restarted; the client gets the whole history and a
   * `reset` gap so it can realign.
   */
  since(since: number | undefined): Replay {
    this.#expire();
    const lastId = this.#lastId;
    if (since === undefined || since === lastId) return { messages: [], gap: null, lastId };
    const oldestId = this.#size > 0 ? this.#ring[this.#start]!.id : lastId + 1;
    if (since > lastId) {
      const resumeFrom = oldestId - 1;
      return {
        messages: this.#slice(0),
        gap: { channel: this.channel, since, missed: 0, resumeFrom, reason: 'reset' },
        lastId,
      };
    }
    if (since >= oldestId - 1) return { messages: this.#slice(since - oldestId + 1), gap: null, lastId };
    const resumeFrom = oldestId - 1;
    return {
      messages: this.#slice(0),
      gap: { channel: this.channel, since, missed: resumeFrom - since, resumeFrom, reason: 'evicted' },
      lastId,
    };
  }

  #slice(from: number): StoredMessage[] {
    const out: StoredMessage[] = new Array(this.#size - from);
    const capacity = this.#ring.length;
    for (let i = from; i < this.#size; i++) out[i - from] = this.#ring[(this.#start + i) % capacity]!;
    return out;
  }

  #expire(): void {
    const oldestAllowed = this.#now() - this.#limits.maxAgeMs;
    while (this.#size > 0 && this.#ring[this.#start]!.time < oldestAllowed) this.dropOldest();
  }
}
