import type { RangePiece } from './RecordedRange.ts';
import { durationField } from './repair.ts';

/*
 * One MP4 for a time range: the recording's CMAF header with the range's duration in mvhd, then its
 * fragments as recorded, with only their numbers and times rewritten (mfhd sequence_number §8.8.5, tfdt
 * §8.8.12) so the file starts at 0. Video must start on a keyframe: the frames from the keyframe before the
 * range's start up to it are kept, squeezed to one tick each at time 0, so the decoder has them and the
 * presentation starts where the range does (as MediaMTX's playback server does).
 */

/** mfhd's sequence_number: moof header (8), mfhd header (8), version and flags (4). */
const MFHD_SEQUENCE_OFFSET = 20;

export interface Mp4Download {
  /** What the file lasts, in ms: the range, cut to what was recorded. */
  readonly durationMs: number;
  /** Wall clock of the file's time 0. */
  readonly startMs: number;
  readonly chunks: Uint8Array[];
}

/**
 * The file for [startMs, endMs) from `pieces` (piecesOf): the first run of files that continue one another,
 * so the output has one header and one timeline. Null when nothing recorded falls in the range.
 */
export function buildMp4Download(
  pieces: readonly RangePiece[],
  /** The files' bytes (up to their last complete fragment), at least for the first continuous run. */
  bytesOf: ReadonlyMap<RangePiece, Uint8Array>,
  startMs: number,
  endMs: number,
): Mp4Download | null {
  const run: RangePiece[] = [];
  for (const p of pieces) {
    if (run.length > 0 && !p.continues) break;
    run.push(p);
  }
  const first = run[0];
  if (!first) return null;
  const last = run[run.length - 1];
  const from = Math.max(startMs, first.segment.startMs);
  const to = Math.min(endMs, last.segment.startMs + last.segment.durationMs);
  if (to <= from) return null;
  const tracks = first.contents.header.tracks;
  const lead = tracks.find((t) => t.kind === 'video') ?? tracks[0];
  const timescale = new Map(tracks.map((t) => [t.id, t.timescale]));
  const endSeconds = (to - from) / 1000;
  // Each file's time 0 is its prft wall clock; the output's time 0 is `from`.
  const shiftOf = (piece: RangePiece, scale: number) =>
    Math.round(((piece.segment.startMs - from) / 1000 - piece.originSeconds) * scale);

  // The last keyframe of the lead track at or before the start: where decoding must begin.
  let startKey: { piece: RangePiece; offset: number } | null = null;
  for (const piece of run) {
    const shift = shiftOf(piece, lead.timescale);
    for (const f of piece.contents.fragments) {
      if (f.trackId === lead.id && f.keyframe && f.dts + shift <= 0) startKey = { piece, offset: f.offset };
    }
  }

  const init = (bytesOf.get(first) ?? new Uint8Array()).slice(0, first.contents.header.initSize);
  init.set(durationField(to - from), first.contents.header.durationOffset);
  const chunks: Uint8Array[] = [init];
  let sequence = 1;
  let preroll = 0;
  let decoding = startKey === null;
  for (const piece of run) {
    const { fragments } = piece.contents;
    const bytes = bytesOf.get(piece);
    if (!bytes) continue;
    const shifts = new Map([...timescale].map(([id, scale]) => [id, shiftOf(piece, scale)]));
    for (const f of fragments) {
      if (!decoding && piece === startKey?.piece && f.offset === startKey.offset) decoding = true;
      const scale = timescale.get(f.trackId);
      const shift = shifts.get(f.trackId);
      if (scale === undefined || shift === undefined) continue;
      let dts = f.dts + shift;
      if (dts / scale >= endSeconds) continue;
      let squeeze = false;
      if (dts < 0) {
        if (f.trackId !== lead.id || !decoding) continue;
        dts = preroll++;
        squeeze = true;
      } else if (f.trackId === lead.id) {
        dts = Math.max(dts, preroll);
      }
      if (f.offset + f.size > bytes.length) break;
      const out = bytes.slice(f.offset, f.offset + f.size);
      const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
      view.setUint32(MFHD_SEQUENCE_OFFSET, sequence++);
      view.setUint32(f.tfdtOffset, Math.floor(dts / 0x100000000));
      view.setUint32(f.tfdtOffset + 4, dts >>> 0);
      if (squeeze) view.setUint32(f.durationFieldOffset, 1);
      chunks.push(out);
    }
  }
  return { durationMs: to - from, startMs: from, chunks };
}
