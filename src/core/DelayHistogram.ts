/**
 * Delays in milliseconds, counted in fixed buckets so recording on a hot path (per frame per viewer) is one
 * increment. Buckets are 0.1 ms wide up to 10 ms, 1 ms to 100 ms, 10 ms to 10 s; beyond that, the last one.
 */
const FINE = 100; // 0..10 ms by 0.1
const MID = 90; // 10..100 ms by 1
const COARSE = 990; // 100..10000 ms by 10

export class DelayHistogram {
  readonly counts = new Uint32Array(FINE + MID + COARSE + 1);
  count = 0;
  sum = 0;
  max = 0;

  record(ms: number): void {
    if (!(ms >= 0)) ms = 0;
    let i: number;
    if (ms < 10) i = Math.floor(ms * 10);
    else if (ms < 100) i = FINE + Math.floor(ms - 10);
    else if (ms < 10_000) i = FINE + MID + Math.floor((ms - 100) / 10);
    else i = this.counts.length - 1;
    this.counts[i]++;
    this.count++;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
  }

  /** The upper edge of the bucket holding quantile q (0..1), in ms; 0 when empty. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(DelayHistogram.upperEdge(i), this.max);
    }
    return this.max;
  }

  static upperEdge(i: number): number {
    if (i < FINE) return (i + 1) / 10;
    if (i < FINE + MID) return 10 + (i - FINE + 1);
    if (i < FINE + MID + COARSE) return 100 + (i - FINE - MID + 1) * 10;
    return Number.POSITIVE_INFINITY;
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.sum = 0;
    this.max = 0;
  }
}
