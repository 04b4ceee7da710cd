import type { Redis } from 'ioredis';
import { createRedisClient, redact } from '../../cluster/redis.ts';
import type { Logger } from '../../core/log.ts';
import type { Replay } from '../ChannelHistory.ts';
import { type ChannelMessage, type GapEvent, type MessageDraft, StoredMessage } from '../Message.ts';
import type { MessageBus, TransportCounts, Unsubscribe } from '../MessageBus.ts';
import { MessagingError } from '../protocol.ts';
import { RedisHistoryTotal } from './RedisHistoryTotal.ts';
import { type ChannelKeys, channelKeys, PRESENCE_LUA, PUBLISH_LUA, SYNC_LUA } from './scripts.ts';

export interface RedisBusLimits {
  readonly maxMessages: number;
  readonly maxAgeMs: number;
  /** JSON bytes of history per channel (messaging.historyMaxBytes). */
  readonly maxBytes: number;
  /** JSON bytes of all channels' histories together (messaging.maxHistoryBytesTotal); none: unbounded. */
  readonly maxBytesTotal?: number;
}

/** A channel's meta outlives its history by this much, so an idle channel keeps its epoch and ids. */
const META_TTL_MIN_MS = 24 * 3600_000;
/** Presence: each node refreshes its entries this often; an entry not refreshed for PRESENCE_TTL_MS is dead. */
const PRESENCE_REFRESH_MS = 1000;
const PRESENCE_TTL_MS = 3000;
/** Redis's clock is read again this often (in presence refreshes) to keep publish deadlines in its time. */
const CLOCK_EVERY_REFRESHES = 30;
/** A clock reading whose round trip took longer is too uncertain to keep. */
const CLOCK_MAX_ROUND_TRIP_MS = 200;

interface Scripts {
  subsecondPublish(...args: (string | number)[]): Promise<[string, string, string]>;
  subsecondSync(...args: (string | number)[]): Promise<string[]>;
  subsecondPresence(...args: (string | number)[]): Promise<string[]>;
}

/** This node's view of one channel: its listeners, and the position up to which they have everything. */
class RemoteChannel {
  readonly name: string;
  readonly keys: ChannelKeys;
  readonly listeners = new Set<(message: StoredMessage) => void>();
  readonly gapListeners = new Set<(gap: GapEvent) => void>();
  readonly presenceListeners = new Set<(totals: TransportCounts) => void>();
  /** The epoch and newest id delivered to listeners; epoch 0 until the first sync. */
  epoch = 0;
  last = 0;
  /** Live messages that arrived while a sync is running, handled after it. */
  pending: { epoch: number; message: StoredMessage }[] = [];
  syncing: Promise<void> | null = null;
  retryTimer: NodeJS.Timeout | null = null;
  /** Subscribed on Redis and synced once: a replay after this sees nothing the listeners will miss. */
  ready: Promise<void> | null = null;
  /** This node's last counts for the channel, refreshed on Redis until it reports none. */
  localCounts: string | null = null;
  lastTotals = '';

  constructor(name: string) {
    this.name = name;
    this.keys = channelKeys(name);
  }

  get unused(): boolean {
    return this.listeners.size === 0 && this.gapListeners.size === 0 && this.presenceListeners.size === 0;
  }
}

/**
 * The message bus of a cluster, on Redis: ids and history in Redis (one Lua script per publish assigns the id
 * and time, appends to the channel's bounded stream and publishes it), one Redis subscription per channel per
 * node fanned out to the local listeners, and holes in the live sequence (a pub/sub message lost over a
 * reconnect) filled from the stream, so listeners see every id of an epoch once and in order, or a gap.
 */
export class RedisBus implements MessageBus {
  readonly #commands: Redis & Scripts;
  readonly #subscriber: Redis;
  readonly #limits: RedisBusLimits;
  readonly #metaTtlMs: number;
  readonly #log: Logger;
  readonly #channels = new Map<string, RemoteChannel>();
  readonly #byLiveName = new Map<string, RemoteChannel>();
  readonly #presenceTimer: NodeJS.Timeout;
  readonly #historyTotal: RedisHistoryTotal | null;
  /** cluster.redisCommandTimeoutMs: the connections fail a command Redis has not answered within it. */
  readonly #commandTimeoutMs: number;
  /** Redis's clock minus ours (ms), from TIME; null until read. Publish deadlines are in Redis's time. */
  #clockOffsetMs: number | null = null;
  #refreshes = 0;
  /** The node id presence entries are written under (the hub's). */
  #presenceNode = '';
  #closed = false;

  constructor(options: {
    commands: Redis;
    subscriber: Redis;
    limits: RedisBusLimits;
    log: Logger;
    commandTimeoutMs?: number;
  }) {
    this.#limits = options.limits;
    this.#commandTimeoutMs = options.commandTimeoutMs ?? 0;
    this.#metaTtlMs = Math.max(META_TTL_MIN_MS, 2 * options.limits.maxAgeMs);
    this.#log = options.log;
    const commands = options.commands;
    commands.defineCommand('subsecondPublish', { numberOfKeys: 2, lua: PUBLISH_LUA });
    commands.defineCommand('subsecondSync', { numberOfKeys: 2, lua: SYNC_LUA });
    commands.defineCommand('subsecondPresence', { numberOfKeys: 2, lua: PRESENCE_LUA });
    this.#commands = commands as Redis & Scripts;
    this.#historyTotal =
      options.limits.maxBytesTotal === undefined
        ? null
        : new RedisHistoryTotal({
            commands,
            maxTotal: options.limits.maxBytesTotal,
            logTtlMs: logTtlMs(options.limits.maxAgeMs),
            log: options.log,
          });
    // Loaded first on every connection, ahead of any publish: a connection's publishes are pipelined (sent
    // without waiting for answers) and stay in order only if none meets NOSCRIPT and is resent behind a later
    // one, which a script loaded meanwhile by another node would let through first.
    const connected = () => {
      commands.script('LOAD', PUBLISH_LUA).catch(() => {});
      this.#readClock();
    };
    if (commands.status === 'ready') connected();
    commands.on('ready', connected);
    this.#subscriber = options.subscriber;
    this.#subscriber.on('message', (live: string, payload: string) => this.#onLive(live, payload));
    // After a reconnect (Redis restarted, failed over, or only this connection broke): subscribe again and
    // catch up from the stream on what was published while this node was not listening.
    let connectedBefore = false;
    this.#subscriber.on('ready', () => {
      if (!connectedBefore) {
        connectedBefore = true;
        return;
      }
      for (const channel of this.#channels.values()) this.#reopen(channel);
    });
    this.#presenceTimer = setInterval(() => this.#refreshPresence(), PRESENCE_REFRESH_MS);
    this.#presenceTimer.unref();
  }

  async publish(channel: string, from: string, draft: MessageDraft): Promise<StoredMessage> {
    const keys = channelKeys(channel);
    const data = JSON.stringify(draft.data);
    // Half the command timeout in Redis's time: Redis stores the message only while the answer can still
    // reach us before we give up on it, so a publisher told "refused" is never published later.
    const deadline =
      this.#commandTimeoutMs > 0 && this.#clockOffsetMs !== null
        ? Math.floor(Date.now() + this.#clockOffsetMs + this.#commandTimeoutMs / 2)
        : 0;
    let reply: [string, string, string];
    try {
      reply = await this.#commands.subsecondPublish(
        keys.meta,
        keys.log,
        keys.live,
        JSON.stringify(channel),
        JSON.stringify(from),
        JSON.stringify(draft.type),
        data,
        this.#limits.maxMessages,
        this.#limits.maxAgeMs,
        this.#limits.maxBytes,
        this.#metaTtlMs,
        deadline,
      );
    } catch (err) {
      throw this.#unavailable(`publish on "${channel}" refused`, err, 'the message was not stored');
    }
    this.#historyTotal?.published(channel, Number(reply[2]));
    // This node's listeners get it from the subscription like every other node's, in the channel's order.
    return toStored(reply[0]);
  }

  subscribe(
    channel: string,
    listener: (message: StoredMessage) => void,
    onGap?: (gap: GapEvent) => void,
  ): Unsubscribe {
    const state = this.#channel(channel);
    state.listeners.add(listener);
    if (onGap) state.gapListeners.add(onGap);
    return () => {
      state.listeners.delete(listener);
      if (onGap) state.gapListeners.delete(onGap);
      this.#release(state);
    };
  }

  async replay(channel: string, since: number | undefined): Promise<Replay> {
    const state = this.#channels.get(channel);
    if (state) {
      // Until this node listens on Redis, a replay could end before messages its listeners will never see.
      state.ready ??= this.#open(state);
      try {
        await state.ready;
      } catch {
        state.ready = this.#open(state);
        await state.ready;
      }
    }
    const keys = channelKeys(channel);
    let reply: string[];
    try {
      reply = await this.#commands.subsecondSync(
        keys.meta,
        keys.log,
        since ?? -1,
        state?.epoch ?? 0,
        state?.last ?? 0,
        this.#metaTtlMs,
        this.#limits.maxAgeMs,
      );
    } catch (err) {
      throw this.#unavailable(`cannot read the history of "${channel}"`, err);
    }
    const epoch = Number(reply[0]);
    const lastId = Number(reply[1]);
    const messages: StoredMessage[] = new Array(reply.length - 3);
    for (let i = 3; i < reply.length; i++) messages[i - 3] = toStored(reply[i]);
    if (since === undefined || since === lastId) return { messages: [], gap: null, lastId };
    const oldest = messages.length > 0 ? messages[0].id : lastId + 1;
    if (since < epoch || since > lastId) {
      // An id from another epoch (Redis lost the channel, or it expired): how much was missed is unknown.
      return {
        messages,
        gap: { channel, since, missed: 0, resumeFrom: oldest - 1, reason: 'reset' },
        lastId,
      };
    }
    if (oldest <= since + 1) return { messages, gap: null, lastId };
    return {
      messages,
      gap: { channel, since, missed: oldest - 1 - since, resumeFrom: oldest - 1, reason: 'evicted' },
      lastId,
    };
  }

  reportPresence(channel: string, node: string, counts: TransportCounts): void {
    const state = this.#channels.get(channel);
    const json = Object.keys(counts).length === 0 ? null : JSON.stringify(counts);
    if (state) state.localCounts = json;
    this.#presenceNode = node;
    this.#writePresence(channel, state, json, true);
  }

  subscribePresence(channel: string, listener: (totals: TransportCounts) => void): Unsubscribe {
    const state = this.#channel(channel);
    state.presenceListeners.add(listener);
    return () => {
      state.presenceListeners.delete(listener);
      this.#release(state);
    };
  }

  /** Reports what the history total is waiting for now (tests read Redis right after). */
  async flushHistoryTotal(): Promise<void> {
    await this.#historyTotal?.flush();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#presenceTimer);
    await this.#historyTotal?.flush().catch(() => {});
    this.#historyTotal?.close();
    // This node's presence goes now rather than when its entries expire.
    await Promise.allSettled(
      [...this.#channels.values()]
        .filter((c) => c.localCounts !== null)
        .map((c) =>
          this.#commands.subsecondPresence(
            c.keys.presenceNodes,
            c.keys.presenceCounts,
            this.#presenceNode,
            '',
            0,
          ),
        ),
    );
    this.#channels.clear();
    this.#byLiveName.clear();
    this.#commands.disconnect();
    this.#subscriber.disconnect();
  }

  #channel(name: string): RemoteChannel {
    let state = this.#channels.get(name);
    if (!state) {
      state = new RemoteChannel(name);
      this.#channels.set(name, state);
      this.#byLiveName.set(state.keys.live, state);
      const opening = this.#open(state);
      opening.catch((err) =>
        this.#log.warn(
          { channel: name, err: (err as Error).message },
          'cannot subscribe on Redis yet; retrying',
        ),
      );
      state.ready = opening;
    }
    return state;
  }

  #release(state: RemoteChannel): void {
    if (!state.unused || this.#channels.get(state.name) !== state) return;
    this.#channels.delete(state.name);
    this.#byLiveName.delete(state.keys.live);
    this.#subscriber.unsubscribe(state.keys.live).catch(() => {});
  }

  /** #open until it succeeds (the command connection may come back later than the subscriber). */
  #reopen(state: RemoteChannel): void {
    const attempt = (): void => {
      if (this.#closed || this.#channels.get(state.name) !== state) return;
      state.ready = this.#open(state);
      state.ready.catch(() => setTimeout(attempt, 250).unref());
    };
    attempt();
  }

  /** Subscribes on Redis, then catches the listeners up to the channel's newest id. */
  async #open(state: RemoteChannel): Promise<void> {
    try {
      await this.#subscriber.subscribe(state.keys.live);
    } catch (err) {
      throw this.#unavailable(`cannot follow "${state.name}"`, err);
    }
    await this.#sync(state);
  }

  #onLive(live: string, payload: string): void {
    const state = this.#byLiveName.get(live);
    if (!state) return;
    const space = payload.indexOf(' ');
    let message: StoredMessage;
    try {
      message = toStored(payload.slice(space + 1));
    } catch (err) {
      this.#log.error({ channel: state.name, err }, 'unreadable message on Redis; ignored');
      return;
    }
    this.#accept(state, Number(payload.slice(0, space)), message);
  }

  /** A message heard live (or from a publish reply): delivered if it is the next id, else a sync fills the hole. */
  #accept(state: RemoteChannel, epoch: number, message: StoredMessage): void {
    if (state.syncing) {
      state.pending.push({ epoch, message });
      return;
    }
    if (state.epoch === 0) {
      state.pending.push({ epoch, message });
      this.#sync(state).catch(() => {});
      return;
    }
    // A new epoch's ids are above every older one: anything at or below `last` is a duplicate or stale.
    if (message.id <= state.last) return;
    if (epoch === state.epoch && message.id === state.last + 1) {
      state.last = message.id;
      for (const listener of state.listeners) listener(message);
      return;
    }
    state.pending.push({ epoch, message });
    this.#sync(state).catch((err) =>
      this.#log.warn(
        { channel: state.name, err: (err as Error).message },
        'cannot fill a hole from Redis yet',
      ),
    );
  }

  /**
   * Reads the channel's epoch and what the log holds after `last`, delivers it (with a gap event when the
   * epoch changed or the log no longer has some of it), then the live messages that waited.
   */
  #sync(state: RemoteChannel): Promise<void> {
    if (state.syncing) return state.syncing;
    const run = async () => {
      const first = state.epoch === 0;
      let reply: string[];
      try {
        reply = await this.#commands.subsecondSync(
          state.keys.meta,
          state.keys.log,
          first ? -1 : state.last,
          state.epoch,
          state.last,
          this.#metaTtlMs,
          this.#limits.maxAgeMs,
        );
      } catch (err) {
        throw this.#unavailable(`cannot read the history of "${state.name}"`, err);
      }
      const epoch = Number(reply[0]);
      const top = Number(reply[1]);
      if (first) {
        state.epoch = epoch;
        state.last = top;
        return;
      }
      if (epoch !== state.epoch) {
        const resumeFrom = reply.length > 3 ? toStored(reply[3]).id - 1 : top;
        this.#gap(state, { channel: state.name, since: state.last, missed: 0, resumeFrom, reason: 'reset' });
        state.epoch = epoch;
      }
      for (let i = 3; i < reply.length; i++) {
        const message = toStored(reply[i]);
        if (message.id <= state.last) continue;
        if (message.id > state.last + 1) {
          const resumeFrom = message.id - 1;
          const missed = resumeFrom - state.last;
          this.#gap(state, { channel: state.name, since: state.last, missed, resumeFrom, reason: 'evicted' });
        }
        state.last = message.id;
        for (const listener of state.listeners) listener(message);
      }
      if (top > state.last) {
        const missed = top - state.last;
        this.#gap(state, {
          channel: state.name,
          since: state.last,
          missed,
          resumeFrom: top,
          reason: 'evicted',
        });
        state.last = top;
      }
    };
    const syncing = run();
    state.syncing = syncing;
    syncing.then(
      () => {
        state.syncing = null;
        const pending = state.pending;
        state.pending = [];
        for (const { epoch, message } of pending) this.#accept(state, epoch, message);
      },
      () => {
        state.syncing = null;
        // What waits stays waiting; try again shortly rather than at once (Redis may be down for a while).
        if (state.pending.length > 0 && !state.retryTimer) {
          state.retryTimer = setTimeout(() => {
            state.retryTimer = null;
            if (this.#closed || this.#channels.get(state.name) !== state) return;
            this.#sync(state).catch(() => {});
          }, 250);
          state.retryTimer.unref();
        }
      },
    );
    return syncing;
  }

  #gap(state: RemoteChannel, gap: GapEvent): void {
    this.#log.warn({ ...gap }, 'messages of a channel could not be delivered live; listeners are told');
    state.last = gap.resumeFrom;
    for (const listener of state.gapListeners) listener(gap);
  }

  #writePresence(
    channel: string,
    state: RemoteChannel | undefined,
    json: string | null,
    always: boolean,
  ): void {
    const keys = state?.keys ?? channelKeys(channel);
    this.#commands
      .subsecondPresence(
        keys.presenceNodes,
        keys.presenceCounts,
        this.#presenceNode,
        json ?? '',
        PRESENCE_TTL_MS,
      )
      .then((values) => {
        if (!state || state.presenceListeners.size === 0 || this.#channels.get(channel) !== state) return;
        const totals: Record<string, number> = {};
        for (const value of values) {
          for (const [transport, n] of Object.entries(JSON.parse(value) as Record<string, number>)) {
            totals[transport] = (totals[transport] ?? 0) + n;
          }
        }
        const key = JSON.stringify(totals);
        if (!always && key === state.lastTotals) return;
        state.lastTotals = key;
        for (const listener of state.presenceListeners) listener(totals);
      })
      .catch((err) => {
        if (!this.#closed) this.#log.debug({ channel, err: (err as Error).message }, 'presence not written');
      });
  }

  /** Keeps this node's entries alive and picks up other nodes' changes (and deaths). */
  #refreshPresence(): void {
    if (++this.#refreshes % CLOCK_EVERY_REFRESHES === 0) this.#readClock();
    if (!this.#presenceNode) return;
    for (const state of this.#channels.values()) {
      if (state.localCounts !== null || state.presenceListeners.size > 0) {
        this.#writePresence(state.name, state, state.localCounts, false);
      }
    }
  }

  #readClock(): void {
    const sentAt = Date.now();
    this.#commands
      .time()
      .then(([seconds, micros]) => {
        const now = Date.now();
        if (now - sentAt > CLOCK_MAX_ROUND_TRIP_MS && this.#clockOffsetMs !== null) return;
        this.#clockOffsetMs = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - (sentAt + now) / 2;
      })
      .catch(() => {});
  }

  #unavailable(what: string, err: unknown, consequence?: string): MessagingError {
    const reason = (err as Error).message;
    // ioredis's commandTimeout, or the publish script refusing a call that reached it past its deadline.
    const stuck = reason === 'Command timed out' || reason.startsWith('LATE');
    const message = stuck
      ? `${what}: the cluster's Redis did not answer within ${this.#commandTimeoutMs} ms (cluster.redisCommandTimeoutMs)${consequence ? `, ${consequence}` : ''}; retry shortly`
      : `${what}: the cluster's Redis is unreachable (${reason})${consequence ? `, ${consequence}` : ''}; retry shortly`;
    return new MessagingError('unavailable', message, { retryAfterMs: 1000 });
  }
}

/** How long a channel's log outlives its last publish (the publish script's PEXPIRE: maxAgeMs + 60 s). */
function logTtlMs(maxAgeMs: number): number {
  return maxAgeMs + 60_000;
}

function toStored(json: string): StoredMessage {
  return new StoredMessage(JSON.parse(json) as ChannelMessage, json);
}

/**
 * The bus for `cluster.redis`: a command connection and a subscriber connection (pub/sub needs its own).
 * Waits up to `readyWithinMs` for both to connect; a Redis still unreachable then is not fatal (publishes
 * answer 503 until it is reachable, and the bus catches up by itself).
 */
export async function connectRedisBus(options: {
  url: string;
  node: string;
  limits: RedisBusLimits;
  log: Logger;
  readyWithinMs?: number;
  /** cluster.redisCommandTimeoutMs. */
  commandTimeoutMs?: number;
}): Promise<RedisBus> {
  const { url, node, log, commandTimeoutMs } = options;
  const commands = createRedisClient(url, {
    log,
    connectionName: `subsecond:${node}:messaging`,
    commandTimeoutMs,
  });
  const subscriber = createRedisClient(url, {
    log,
    connectionName: `subsecond:${node}:messaging-sub`,
    commandTimeoutMs,
  });
  const bus = new RedisBus({ commands, subscriber, limits: options.limits, log, commandTimeoutMs });
  const ready = (client: Redis) =>
    client.status === 'ready'
      ? Promise.resolve()
      : new Promise<void>((resolve) => client.once('ready', resolve));
  let timer: NodeJS.Timeout | undefined;
  const connected = await Promise.race([
    Promise.all([ready(commands), ready(subscriber)]).then(() => true),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), options.readyWithinMs ?? 3000);
    }),
  ]);
  clearTimeout(timer);
  if (!connected) {
    log.warn(
      { redis: redact(url) },
      'messaging starts without Redis: publishes answer 503 until it is reachable',
    );
  }
  return bus;
}
