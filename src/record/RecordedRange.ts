import { originSeconds } from './RecordingFile.ts';
import type { RecordingSegment, RecordingStore, SegmentContents } from './RecordingStore.ts';

/** One file of a time range, with what it holds. */
export interface RangePiece {
  readonly segment: RecordingSegment;
  readonly contents: SegmentContents;
  /** Media time (seconds) of the file's first keyframe, which `segment.startMs` is the wall clock of. */
  readonly originSeconds: number;
  /** False when this file does not continue the previous piece (another publish, other codecs, a gap). */
  readonly continues: boolean;
}

/** Files with one CMAF header closer than this in wall clock are one recording: their fragments continue. */
const CONTINUITY_TOLERANCE_MS = 50;

/** The files of `path` overlapping [startMs, endMs), oldest first, read from disk (or the open one as written). */
export async function piecesOf(
  store: RecordingStore,
  path: string,
  startMs: number,
  endMs: number,
): Promise<RangePiece[]> {
  const out: RangePiece[] = [];
  for (const segment of store.segmentsOf(path)) {
    if (segment.startMs >= endMs || segment.startMs + segment.durationMs <= startMs) continue;
    const contents = await store.contentsOf(segment);
    const origin = originSeconds(contents.header.tracks, contents.fragments);
    if (origin === null) continue;
    const previous = out[out.length - 1];
    let continues = false;
    if (previous) {
      const wallGap = segment.startMs - (previous.segment.startMs + previous.segment.durationMs);
      continues =
        previous.segment.initKey === segment.initKey && Math.abs(wallGap) <= CONTINUITY_TOLERANCE_MS;
    }
    out.push({ segment, contents, originSeconds: origin, continues });
  }
  return out;
}

/** Parses `start` (ISO 8601 with a zone, or ms since the epoch) and `duration` (seconds) of a range query. */
export function parseRange(
  query: Record<string, unknown>,
  defaults: { startMs: number; durationSeconds: number },
): { startMs: number; endMs: number } {
  const rawStart = query.start;
  let startMs = defaults.startMs;
  if (rawStart !== undefined) {
    if (typeof rawStart !== 'string' || rawStart.length > 40)
      throw new RangeError('start must be one ISO 8601 time');
    startMs = /^\d{1,15}$/.test(rawStart) ? Number(rawStart) : Date.parse(rawStart);
    if (!Number.isFinite(startMs) || !/^\d{1,15}$|(Z|[+-]\d{2}:?\d{2})$/.test(rawStart)) {
      throw new RangeError(
        `start ${JSON.stringify(rawStart)} is not an ISO 8601 time with a zone (e.g. 2026-12-07T12:00:00Z)`,
      );
    }
  }
  const rawDuration = query.duration;
  let seconds = defaults.durationSeconds;
  if (rawDuration !== undefined) {
    seconds =
      typeof rawDuration === 'string' && /^\d+(\.\d+)?$/.test(rawDuration) ? Number(rawDuration) : Number.NaN;
    if (!(seconds > 0) || seconds > 7 * 86400) {
      throw new RangeError(
        `duration ${JSON.stringify(rawDuration)} is not a number of seconds between 0 and 604800`,
      );
    }
  }
  return { startMs, endMs: startMs + seconds * 1000 };
}
