import type { RangePiece } from './RecordedRange.ts';
import { fragmentsDurationMs } from './RecordingFile.ts';

/*
 * An HLS media playlist over recorded files (RFC 8216bis): each file is a CMAF header and fragments, so the
 * header is its EXT-X-MAP and runs of whole GOPs are its media segments, both as byte ranges of the file
 * (§4.4.4.2 EXT-X-BYTERANGE, §4.4.4.5 EXT-X-MAP). Nothing is copied or muxed again.
 */

/** GOPs are joined into media segments of at least this long. */
const SEGMENT_TARGET_SECONDS = 2;

export interface PlaylistSegment {
  readonly piece: RangePiece;
  readonly offset: number;
  readonly size: number;
  /** Wall clock of the segment's first keyframe. */
  readonly startMs: number;
  readonly durationSeconds: number;
}

/** The GOP runs of every piece, with their wall-clock start and duration. */
export function playlistSegments(pieces: readonly RangePiece[]): PlaylistSegment[] {
  const out: PlaylistSegment[] = [];
  for (const piece of pieces) {
    const { header, fragments, size } = piece.contents;
    const lead = header.tracks.find((t) => t.kind === 'video') ?? header.tracks[0];
    if (!lead) continue;
    const cuts: { offset: number; seconds: number }[] = [];
    for (const f of fragments) {
      if (f.trackId !== lead.id || !f.keyframe) continue;
      const seconds = f.dts / lead.timescale - piece.originSeconds;
      const last = cuts[cuts.length - 1];
      if (!last || seconds - last.seconds >= SEGMENT_TARGET_SECONDS) cuts.push({ offset: f.offset, seconds });
    }
    const fileSeconds = fragmentsDurationMs(header.tracks, fragments) / 1000;
    for (let i = 0; i < cuts.length; i++) {
      const next = cuts[i + 1];
      const end = next ? next.offset : size;
      const endSeconds = next ? next.seconds : fileSeconds;
      if (end <= cuts[i].offset || endSeconds <= cuts[i].seconds) continue;
      out.push({
        piece,
        offset: cuts[i].offset,
        size: end - cuts[i].offset,
        startMs: piece.segment.startMs + cuts[i].seconds * 1000,
        durationSeconds: endSeconds - cuts[i].seconds,
      });
    }
  }
  return out;
}

export interface VodPlaylistOptions {
  startMs: number;
  endMs: number;
  /** EVENT (still growing, no end) instead of VOD. */
  live?: boolean;
}

/** The playlist of the segments overlapping [startMs, endMs), starting playback at `startMs` exactly. */
export function vodPlaylist(pieces: readonly RangePiece[], options: VodPlaylistOptions): string {
  const segments = playlistSegments(pieces).filter(
    (s) => s.startMs < options.endMs && s.startMs + s.durationSeconds * 1000 > options.startMs,
  );
  const target = Math.max(1, Math.ceil(Math.max(0, ...segments.map((s) => s.durationSeconds))));
  const lines = [
    '#EXTM3U',
    '#EXT-X-VERSION:7',
    `#EXT-X-TARGETDURATION:${target}`,
    `#EXT-X-PLAYLIST-TYPE:${options.live ? 'EVENT' : 'VOD'}`,
    '#EXT-X-INDEPENDENT-SEGMENTS',
  ];
  if (segments.length > 0) {
    const offset = Math.max(0, (options.startMs - segments[0].startMs) / 1000);
    lines.push(`#EXT-X-START:TIME-OFFSET=${offset.toFixed(3)},PRECISE=YES`);
  }
  let map = '';
  let previous: PlaylistSegment | null = null;
  for (const s of segments) {
    const piece = s.piece;
    const newPiece = previous?.piece !== piece;
    if (newPiece && previous && !piece.continues) lines.push('#EXT-X-DISCONTINUITY');
    // Files that continue one another share one header: the player initializes once.
    if (newPiece && (!piece.continues || map === '' || previous === null)) {
      map = `#EXT-X-MAP:URI="${piece.segment.name}",BYTERANGE="${piece.contents.header.initSize}@0"`;
      lines.push(map);
    }
    if (newPiece) lines.push(`#EXT-X-PROGRAM-DATE-TIME:${new Date(s.startMs).toISOString()}`);
    lines.push(`#EXTINF:${s.durationSeconds.toFixed(5)},`);
    lines.push(`#EXT-X-BYTERANGE:${s.size}@${s.offset}`);
    lines.push(piece.segment.name);
    previous = s;
  }
  if (!options.live) lines.push('#EXT-X-ENDLIST');
  return `${lines.join('\n')}\n`;
}
