/**
 * Token bucket: `burst` tokens, refilled at `ratePerSecond`. A publish takes one token; with none left it is
 * refused and the caller learns how long until the next token.
 */
/** The default clock, one function for every bucket (a default-parameter arrow would be one per bucket). */
const monotonic = (): number => performance.now();

export class TokenBucket {
  readonly ratePerSecond: number;
  readonly burst: number;
  #tokens: number;
  #updatedAt: number;
  readonly #now: () => number;

  constructor(ratePerSecond: number, burst: number, now: () => number = monotonic) {
    this.ratePerSecond = ratePerSecond;
    this.burst = burst;
    this.#tokens = burst;
    this.#now = now;
    this.#updatedAt = now();
  }

  #refill(): void {
    const now = this.#now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#updatedAt) / 1000) * this.ratePerSecond);
    this.#updatedAt = now;
  }

  /** Takes a token: 0 when allowed, else the milliseconds until one is available. */
  take(): number {
    this.#refill();
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.#tokens) / this.ratePerSecond) * 1000);
  }

  /** True when the bucket is full, i.e. forgetting it changes nothing. */
  get full(): boolean {
    this.#refill();
    return this.#tokens >= this.burst;
  }
}
