import { ChannelHistory, type HistoryBudget, type HistoryLimits, type Replay } from './ChannelHistory.ts';
import { type MessageDraft, StoredMessage } from './Message.ts';
import { ChannelLimitError, type MessageBus, type TransportCounts, type Unsubscribe } from './MessageBus.ts';

interface ChannelState {
  readonly history: ChannelHistory;
  readonly listeners: Set<(message: StoredMessage) => void>;
  readonly presence: Map<string, TransportCounts>;
  readonly presenceListeners: Set<(totals: TransportCounts) => void>;
  /** For choosing which idle channel to forget when there are too many. */
  touchedAt: number;
}

/**
 * The single-process bus: per channel a history and a listener set. Channels are kept while they have
 * listeners or history; past `maxChannels` the longest-idle channel without listeners is forgotten (a client
 * resuming on it later gets a `reset` gap rather than a silent loss).
 */
export class InMemoryBus implements MessageBus {
  readonly #channels = new Map<string, ChannelState>();
  readonly #limits: HistoryLimits;
  readonly #maxChannels: number;
  readonly #budget: HistoryBudget = { used: 0 };
  readonly #maxBytesTotal: number;

  constructor(limits: HistoryLimits & { maxChannels: number; maxBytesTotal?: number }) {
    this.#limits = { maxMessages: limits.maxMessages, maxAgeMs: limits.maxAgeMs, maxBytes: limits.maxBytes };
    this.#maxChannels = limits.maxChannels;
    this.#maxBytesTotal = limits.maxBytesTotal ?? Number.POSITIVE_INFINITY;
  }

  /** Bytes all histories hold together (bounded by maxBytesTotal). */
  get historyBytes(): number {
    return this.#budget.used;
  }

  get channelCount(): number {
    return this.#channels.size;
  }

  #state(channel: string): ChannelState {
    let state = this.#channels.get(channel);
    if (state) {
      // Map order doubles as recency order: re-inserting moves the channel to the end.
      this.#channels.delete(channel);
    } else {
      if (this.#channels.size >= this.#maxChannels) this.#forgetIdle(channel);
      state = {
        history: new ChannelHistory(channel, this.#limits, Date.now, this.#budget),
        listeners: new Set(),
        presence: new Map(),
        presenceListeners: new Set(),
        touchedAt: 0,
      };
    }
    state.touchedAt = Date.now();
    this.#channels.set(channel, state);
    return state;
  }

  #forgetIdle(wanted: string): void {
    for (const [name, state] of this.#channels) {
      if (state.listeners.size === 0 && state.presenceListeners.size === 0) {
        state.history.clear();
        this.#channels.delete(name);
        return;
      }
    }
    throw new ChannelLimitError(
      `cannot open channel "${wanted}": the server already has ${this.#maxChannels} channels in use (messaging.maxChannels)`,
    );
  }

  async publish(channel: string, from: string, draft: MessageDraft): Promise<StoredMessage> {
    const state = this.#state(channel);
    const stored = new StoredMessage({
      id: state.history.nextId,
      channel,
      time: Date.now(),
      from,
      type: draft.type,
      data: draft.data,
    });
    state.history.append(stored);
    this.#trimToBudget();
    for (const listener of state.listeners) listener(stored);
    // Fanned out: the encodings built for it were shared by every subscriber and are not kept in the history.
    stored.settle();
    return stored;
  }

  /** Past maxBytesTotal, the least recently used channels (the Map's order) lose their oldest messages. */
  #trimToBudget(): void {
    if (this.#budget.used <= this.#maxBytesTotal) return;
    for (const state of this.#channels.values()) {
      while (this.#budget.used > this.#maxBytesTotal && state.history.dropOldest()) {}
      if (this.#budget.used <= this.#maxBytesTotal) return;
    }
  }

  subscribe(channel: string, listener: (message: StoredMessage) => void): Unsubscribe {
    const state = this.#state(channel);
    state.listeners.add(listener);
    return () => state.listeners.delete(listener);
  }

  async replay(channel: string, since: number | undefined): Promise<Replay> {
    return this.#state(channel).history.since(since);
  }

  reportPresence(channel: string, node: string, counts: TransportCounts): void {
    const state = this.#channels.get(channel);
    if (!state) return;
    if (Object.keys(counts).length === 0) state.presence.delete(node);
    else state.presence.set(node, counts);
    const totals: Record<string, number> = {};
    for (const nodeCounts of state.presence.values()) {
      for (const [transport, n] of Object.entries(nodeCounts))
        totals[transport] = (totals[transport] ?? 0) + n;
    }
    for (const listener of state.presenceListeners) listener(totals);
  }

  subscribePresence(channel: string, listener: (totals: TransportCounts) => void): Unsubscribe {
    const state = this.#state(channel);
    state.presenceListeners.add(listener);
    return () => state.presenceListeners.delete(listener);
  }

  async close(): Promise<void> {
    for (const state of this.#channels.values()) state.history.clear();
    this.#channels.clear();
  }
}
