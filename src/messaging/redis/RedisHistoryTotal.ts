import type { Redis } from 'ioredis';
import type { Logger } from '../../core/log.ts';
import { channelKeys, HISTORY_TOTAL_KEYS, HISTORY_TOTAL_LUA, TRIM_LUA } from './scripts.ts';

/** How long a node gathers its channels' sizes before one report: the total may run over by this much traffic. */
export const HISTORY_REPORT_MS = 100;
/** Channels trimmed per report at most; a total still over is trimmed further at the next report. */
const TRIM_CHANNELS_PER_REPORT = 16;

interface Scripts {
  subsecondHistoryTotal(...args: (string | number)[]): Promise<(string | number)[]>;
  subsecondTrim(...args: (string | number)[]): Promise<number>;
}

/**
 * messaging.maxHistoryBytesTotal on Redis: the bytes all channels' logs hold together, across every node.
 * The publish script stays within one channel's keys (one Redis Cluster slot), so the total is kept beside
 * them: each node reports the sizes of the channels it published on, gathered over HISTORY_REPORT_MS, in one
 * call; when the total is past the bound, the least recently published channels lose their oldest messages
 * (as on one node). The bound therefore holds within what the cluster publishes in HISTORY_REPORT_MS, plus
 * what two nodes trimming at once might each free (they may trim a little more than needed, never less).
 */
export class RedisHistoryTotal {
  readonly #commands: Redis & Scripts;
  readonly #maxTotal: number;
  /** A channel with no publish for this long has no log left (the publish script's log TTL): forget it. */
  readonly #forgetAfterMs: number;
  readonly #log: Logger;
  /** Channels published on from this node since the last report, with their log's bytes after it. */
  readonly #changed = new Map<string, number>();
  #timer: NodeJS.Timeout | null = null;
  #trimming = false;
  #reporting: Promise<void> | null = null;

  constructor(options: { commands: Redis; maxTotal: number; logTtlMs: number; log: Logger }) {
    options.commands.defineCommand('subsecondHistoryTotal', { numberOfKeys: 3, lua: HISTORY_TOTAL_LUA });
    options.commands.defineCommand('subsecondTrim', { numberOfKeys: 2, lua: TRIM_LUA });
    this.#commands = options.commands as Redis & Scripts;
    this.#maxTotal = options.maxTotal;
    this.#forgetAfterMs = options.logTtlMs;
    this.#log = options.log;
  }

  /** A publish left the channel's log holding `bytes`. */
  published(channel: string, bytes: number): void {
    this.#changed.set(channel, bytes);
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#reporting = this.#report().finally(() => {
        this.#reporting = null;
      });
    }, HISTORY_REPORT_MS);
    this.#timer.unref();
  }

  /** Sends what is waiting now (tests and close). */
  async flush(): Promise<void> {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
      await this.#report();
    }
    await this.#reporting;
  }

  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  async #report(): Promise<void> {
    if (this.#changed.size === 0) return;
    const args: (string | number)[] = [];
    for (const [channel, bytes] of this.#changed) args.push(channel, bytes, 1);
    this.#changed.clear();
    let reply: (string | number)[];
    try {
      reply = await this.#commands.subsecondHistoryTotal(
        ...HISTORY_TOTAL_KEYS,
        this.#maxTotal,
        this.#forgetAfterMs,
        ...args,
      );
    } catch (err) {
      // Sizes are absolute, so the channel's next report sets it right.
      this.#log.debug({ err: (err as Error).message }, 'history total not reported to Redis');
      return;
    }
    if (reply.length > 1) await this.#trim(Number(reply[0]), reply.slice(1).map(String));
  }

  /** Trims the least recently used channels, oldest messages first, until the total is within the bound. */
  async #trim(total: number, leastRecentlyUsed: string[]): Promise<void> {
    if (this.#trimming) return;
    this.#trimming = true;
    try {
      let excess = total - this.#maxTotal;
      for (const channel of leastRecentlyUsed.slice(0, TRIM_CHANNELS_PER_REPORT)) {
        if (excess <= 0) break;
        const keys = channelKeys(channel);
        const left = await this.#commands.subsecondTrim(keys.meta, keys.log, excess);
        const reply = await this.#commands.subsecondHistoryTotal(
          ...HISTORY_TOTAL_KEYS,
          this.#maxTotal,
          this.#forgetAfterMs,
          channel,
          left,
          0,
        );
        this.#log.debug(
          { channel, left, total: Number(reply[0]) },
          'history over messaging.maxHistoryBytesTotal: oldest messages of a little-used channel dropped',
        );
        excess = Number(reply[0]) - this.#maxTotal;
      }
    } catch (err) {
      this.#log.debug(
        { err: (err as Error).message },
        'history trim on Redis failed; retried at the next report',
      );
    } finally {
      this.#trimming = false;
    }
  }
}
