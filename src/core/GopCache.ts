/**
 * Items since the last random access point, so a new viewer starts at once on a keyframe instead of waiting
 * for the next one. Bounded in count and bytes: a stream with huge or no keyframes cannot grow memory.
 */
export interface GopEntry<T> {
  readonly item: T;
  readonly bytes: number;
}

export interface GopCacheLimits {
  maxItems: number;
  maxBytes: number;
  /**
   * A joiner is replayed the cache only while it spans at most this long (ms since its keyframe arrived) and
   * the publisher can make a keyframe on request; past it the joiner waits for the one it is asked for
   * (Stream.replayable). Unset: always replayed.
   */
  maxReplayMs?: number;
}

export class GopCache<T> {
  #entries: GopEntry<T>[] = [];
  #bytes = 0;
  /** True while the cache starts at a random access point; false after an overflow until the next one. */
  #anchored = false;
  /** performance.now() when the held random access point was added. */
  #startedAt = 0;
  readonly limits: GopCacheLimits;

  constructor(limits: GopCacheLimits = { maxItems: 900, maxBytes: 32 * 1024 * 1024 }) {
    this.limits = limits;
  }

  /** `rap` marks a random access point: the cache restarts there. */
  add(item: T, rap: boolean, bytes: number): void {
    if (rap) {
      this.#entries = [];
      this.#bytes = 0;
      this.#anchored = true;
      this.#startedAt = performance.now();
    }
    if (!this.#anchored) return;
    if (this.#entries.length >= this.limits.maxItems || this.#bytes + bytes > this.limits.maxBytes) {
      this.clear();
      return;
    }
    this.#entries.push({ item, bytes });
    this.#bytes += bytes;
  }

  clear(): void {
    this.#entries = [];
    this.#bytes = 0;
    this.#anchored = false;
  }

  /** Entries from the last random access point, oldest first (empty when none is held). */
  get entries(): readonly GopEntry<T>[] {
    return this.#entries;
  }

  /** Milliseconds since the held random access point arrived (0 when none is held). */
  get spanMs(): number {
    return this.#entries.length > 0 ? performance.now() - this.#startedAt : 0;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get length(): number {
    return this.#entries.length;
  }
}
