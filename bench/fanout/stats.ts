import { DelayHistogram } from '../../src/core/DelayHistogram.ts';

/** The median of the finite values, or null when there are none. */
export function median(values: readonly (number | null | undefined)[]): number | null {
  const v = values
    .filter((x): x is number => typeof x === 'number' && Number.isFinite(x))
    .sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** The value at quantile `q` of the sorted values (the upper of two middles for 0.5), -1 when there are none. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return -1;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

export const round = (x: number, digits = 1): number => Number(x.toFixed(digits));

export function minOf(values: readonly number[]): number | null {
  return values.length ? Math.min(...values) : null;
}

export function maxOf(values: readonly number[]): number | null {
  return values.length ? Math.max(...values) : null;
}

/** A DelayHistogram's buckets as [index, count] pairs, the non-empty ones only (small enough for IPC). */
export type SparseCounts = [number, number][];

export function sparseCounts(h: { readonly counts: Uint32Array }): SparseCounts {
  const out: SparseCounts = [];
  for (let i = 0; i < h.counts.length; i++) if (h.counts[i] > 0) out.push([i, h.counts[i]]);
  return out;
}

export interface Quantiles {
  samples: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  /** The upper edge of the highest non-empty bucket. */
  max: number | null;
}

/**
 * Quantiles of the samples recorded between two snapshots of the same histogram (`after` minus `before`),
 * reported as bucket upper edges exactly as DelayHistogram.quantile does.
 */
export function windowQuantiles(before: SparseCounts, after: SparseCounts): Quantiles {
  const h = new DelayHistogram();
  for (const [i, n] of after) h.counts[i] += n;
  for (const [i, n] of before) h.counts[i] -= n;
  let top = -1;
  for (let i = 0; i < h.counts.length; i++) {
    h.count += h.counts[i];
    if (h.counts[i] > 0) top = i;
  }
  if (h.count === 0) return { samples: 0, p50: null, p90: null, p99: null, max: null };
  h.max = DelayHistogram.upperEdge(top);
  return { samples: h.count, p50: h.quantile(0.5), p90: h.quantile(0.9), p99: h.quantile(0.99), max: h.max };
}
