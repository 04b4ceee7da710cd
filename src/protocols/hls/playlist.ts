import type { HlsPackager, HlsSegment } from './HlsPackager.ts';

/*
 * Playlist text per RFC 8216bis (HLS 2nd edition, with the Low-Latency extensions). Pure: the packager's state
 * in, text out. Rendered once per playlist version, never per request.
 */

/** Media resource names; HlsServer parses them back. */
export const initUri = (epoch: string, generation: number) => `init-${epoch}-${generation}.mp4`;
export const segmentUri = (epoch: string, msn: number) => `seg-${epoch}-${msn}.m4s`;
export const partUri = (epoch: string, msn: number, index: number) => `part-${epoch}-${msn}-${index}.m4s`;
export const MEDIA_PLAYLIST = 'media.m3u8';

/** §4.4.4.1: decimal-floating-point; 5 places keeps a 90 kHz tick visible without float noise. */
const seconds = (s: number) => s.toFixed(5);
const attribute = (s: number) => s.toFixed(3);

/**
 * §4.4.4.9: Partial Segments are removed once they are more than three target durations from the end of the
 * playlist, so EXT-X-PART tags are listed only for segments that begin within that window (older parts stay
 * reachable through their segment). Strict parsers (hls-parser) count it as the last three segments, which a
 * segment longer than the target would exceed, so never more than three carry parts.
 */
const PART_WINDOW_TARGET_DURATIONS = 3;
const PART_WINDOW_SEGMENTS = 3;
/** §4.4.3.8 CAN-SKIP-UNTIL must be at least six target durations. */
const SKIP_TARGET_DURATIONS = 6;

export function renderMediaPlaylist(p: HlsPackager, skip: boolean): string {
  const td = p.targetDuration;
  const partTarget = p.options.partTarget;
  const listed = p.listed;
  const current = p.current?.parts.some((x) => x.body.complete) ? p.current : null;
  const all: HlsSegment[] = current ? [...listed, current] : listed;
  const first = all[0];
  const lines = ['#EXTM3U', '#EXT-X-VERSION:9', `#EXT-X-TARGETDURATION:${td}`];
  const skipUntil = SKIP_TARGET_DURATIONS * td;
  // §4.4.3.8: PART-HOLD-BACK at least three part targets; HOLD-BACK at least three target durations.
  lines.push(
    `#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=${attribute(skipUntil)},HOLD-BACK=${attribute(3 * td)},PART-HOLD-BACK=${attribute(3 * partTarget)}`,
    `#EXT-X-PART-INF:PART-TARGET=${attribute(partTarget)}`,
    `#EXT-X-MEDIA-SEQUENCE:${first?.msn ?? 0}`,
    `#EXT-X-DISCONTINUITY-SEQUENCE:${p.discontinuitySequence}`,
    '#EXT-X-INDEPENDENT-SEGMENTS',
  );

  const total = all.reduce((n, s) => n + segmentDuration(s), 0);
  // §6.2.5.1: a delta update skips the oldest segments that lie more than CAN-SKIP-UNTIL from the end.
  let skipped = 0;
  if (skip) {
    let end = 0;
    for (const s of listed) {
      end += s.duration;
      if (total - end < skipUntil) break;
      skipped++;
    }
    if (skipped > 0) lines.push(`#EXT-X-SKIP:SKIPPED-SEGMENTS=${skipped}`);
  }

  // A preload hint for a segment with no complete part yet opens one more segment in the count.
  const open = p.ended ? null : p.openPart;
  const hintSegment = open && open.msn !== all.at(-1)?.msn ? 1 : 0;
  let elapsed = 0;
  let mappedGeneration = -1;
  for (let i = 0; i < all.length; i++) {
    const s = all[i];
    const start = elapsed;
    elapsed += segmentDuration(s);
    if (i < skipped) continue;
    if (s.discontinuity) lines.push('#EXT-X-DISCONTINUITY');
    if (s.init.generation !== mappedGeneration) {
      lines.push(`#EXT-X-MAP:URI="${initUri(p.epoch, s.init.generation)}"`);
      mappedGeneration = s.init.generation;
    }
    lines.push(`#EXT-X-PROGRAM-DATE-TIME:${new Date(Math.round(s.programDateTime)).toISOString()}`);
    const startsAgo = total - start;
    const inPartWindow =
      i >= all.length + hintSegment - PART_WINDOW_SEGMENTS &&
      startsAgo <= PART_WINDOW_TARGET_DURATIONS * td + 1e-6;
    if (s === current || inPartWindow) {
      for (const part of s.parts) {
        if (!part.body.complete) break;
        const independent = part.independent ? ',INDEPENDENT=YES' : '';
        lines.push(
          `#EXT-X-PART:DURATION=${seconds(part.duration)},URI="${partUri(p.epoch, s.msn, part.index)}"${independent}`,
        );
      }
    }
    if (s !== current) lines.push(`#EXTINF:${seconds(s.duration)},`, segmentUri(p.epoch, s.msn));
  }

  if (p.ended) {
    lines.push('#EXT-X-ENDLIST');
  } else {
    if (open) lines.push(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="${partUri(p.epoch, open.msn, open.index)}"`);
  }
  lines.push('');
  return lines.join('\n');
}

function segmentDuration(s: HlsSegment): number {
  if (s.complete) return s.duration;
  let d = 0;
  for (const part of s.parts) if (part.body.complete) d += part.duration;
  return d;
}

/** One variant (the stream's muxed tracks), its attributes measured from what was packaged (§4.4.6.2). */
export function renderMultivariantPlaylist(p: HlsPackager): string {
  const init = p.init ?? p.current?.init ?? p.segments.at(-1)?.init;
  const { peak, average, frameRate } = p.measure();
  const attributes = [`BANDWIDTH=${Math.max(1, peak)}`];
  if (average > 0) attributes.push(`AVERAGE-BANDWIDTH=${average}`);
  if (init) attributes.push(`CODECS="${init.codecs}"`);
  const video = init?.tracks.find((t) => t.kind === 'video');
  if (video?.width && video.height) attributes.push(`RESOLUTION=${video.width}x${video.height}`);
  if (video && frameRate > 0) attributes.push(`FRAME-RATE=${frameRate.toFixed(3)}`);
  // §4.4.6.2: NONE says no closed captions are carried; without it Shaka probes the (in-progress) segment for
  // CEA-608/708 captions and fails while the playlist is young.
  attributes.push('CLOSED-CAPTIONS=NONE');
  return [
    '#EXTM3U',
    '#EXT-X-VERSION:9',
    '#EXT-X-INDEPENDENT-SEGMENTS',
    `#EXT-X-STREAM-INF:${attributes.join(',')}`,
    MEDIA_PLAYLIST,
    '',
  ].join('\n');
}
