/** Bytes received over a sliding window, for a bitrate that reacts within seconds. */
export class ByteRateMeter {
  readonly windowMs: number;
  total = 0;
  #times: number[] = [];
  #sizes: number[] = [];
  #head = 0;
  #inWindow = 0;

  constructor(windowMs = 2000) {
    this.windowMs = windowMs;
  }

  add(bytes: number, now = performance.now()): void {
    this.total += bytes;
    this.#times.push(now);
    this.#sizes.push(bytes);
    this.#inWindow += bytes;
    this.#expire(now);
  }

  /** Bits per second over the window. */
  bitrate(now = performance.now()): number {
    this.#expire(now);
    return (this.#inWindow * 8 * 1000) / this.windowMs;
  }

  #expire(now: number): void {
    const oldest = now - this.windowMs;
    while (this.#head < this.#times.length && this.#times[this.#head] < oldest) {
      this.#inWindow -= this.#sizes[this.#head];
      this.#head++;
    }
    // Compact once the consumed prefix dominates, so the arrays stay about one window long.
    if (this.#head > 1024 && this.#head * 2 > this.#times.length) {
      this.#times = this.#times.slice(this.#head);
      this.#sizes = this.#sizes.slice(this.#head);
      this.#head = 0;
    }
  }
}
