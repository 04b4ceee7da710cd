import type { RecordingSegment } from './RecordingStore.ts';

export interface RetentionLimits {
  /** 0: no age limit. */
  readonly maxAgeHours: number;
  /** 0: no size limit. */
  readonly maxBytes: number;
}

export interface Expired {
  readonly segment: RecordingSegment;
  readonly reason: string;
}

/**
 * The files retention deletes, oldest first: every closed file that ended more than maxAgeHours ago, then
 * closed files from the oldest on until everything left (open files included) fits in maxBytes. A file being
 * written is never chosen.
 */
export function selectExpired(
  segments: readonly RecordingSegment[],
  limits: RetentionLimits,
  nowMs: number,
): Expired[] {
  const oldestFirst = [...segments].sort((a, b) => a.startMs - b.startMs);
  const out: Expired[] = [];
  const chosen = new Set<RecordingSegment>();
  if (limits.maxAgeHours > 0) {
    const cutoff = nowMs - limits.maxAgeHours * 3_600_000;
    for (const s of oldestFirst) {
      if (!s.open && s.startMs + s.durationMs < cutoff) {
        chosen.add(s);
        out.push({ segment: s, reason: `ended more than ${limits.maxAgeHours} h ago (record.maxAgeHours)` });
      }
    }
  }
  if (limits.maxBytes > 0) {
    let total = 0;
    for (const s of oldestFirst) if (!chosen.has(s)) total += s.bytes;
    for (const s of oldestFirst) {
      if (total <= limits.maxBytes) break;
      if (s.open || chosen.has(s)) continue;
      chosen.add(s);
      total -= s.bytes;
      out.push({
        segment: s,
        reason: `recordings exceed ${limits.maxBytes} bytes (record.maxBytes); oldest first`,
      });
    }
  }
  return out;
}
