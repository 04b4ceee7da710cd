/**
 * Exponential back-off with full jitter: the n-th delay is uniform in [0, min(max, base·2ⁿ)], so viewers
 * dropped together by a restart do not all come back in the same instant.
 */
export class Backoff {
  readonly baseMs: number;
  readonly maxMs: number;
  #attempt = 0;
  readonly #random: () => number;

  constructor(baseMs = 250, maxMs = 10_000, random: () => number = Math.random) {
    this.baseMs = baseMs;
    this.maxMs = maxMs;
    this.#random = random;
  }

  get attempt(): number {
    return this.#attempt;
  }

  next(): number {
    // Cap the exponent so base·2ⁿ never overflows to Infinity after many failures.
    const ceiling = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    return Math.round(this.#random() * ceiling);
  }

  reset(): void {
    this.#attempt = 0;
  }
}
