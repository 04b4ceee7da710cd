import type { HlsPackager } from '../hls/HlsPackager.ts';

/*
 * A dynamic MPD (ISO/IEC 23009-1) for low-latency DASH (DASH-IF IOP "Low-latency Modes for DASH"): one Period
 * per continuous timeline, SegmentTemplate with $Number$ and a nominal @duration, segments announced
 * availabilityTimeOffset early and delivered with chunked transfer while they are produced
 * (availabilityTimeComplete="false"), the client's clock synchronised by UTCTiming against this server.
 */

const xml = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** xs:duration of seconds, e.g. PT1.800S. */
export const isoDuration = (seconds: number) => `PT${Number(seconds.toFixed(3))}S`;

export interface MpdOptions {
  /** Absolute URL of the time source (UTCTiming http-iso). */
  timeUrl: string;
  /** ServiceDescription latency target, seconds. */
  targetLatency: number;
}

/** Null until the stream has media. Changes only with a new timeline, so one rendering serves every poll. */
export const dashInitUri = (epoch: string, generation: number, trackId: number) =>
  `init-${epoch}-${generation}-t${trackId}.mp4`;
export const dashSegmentTemplate = (epoch: string, trackId: number) =>
  `seg-${epoch}-$Number$-t${trackId}.m4s`;

/** Null until the stream has media. Changes only with a new timeline, so one rendering serves every poll. */
export function renderMpd(p: HlsPackager, options: MpdOptions): string | null {
  const timeline = p.timeline;
  if (!timeline) return null;
  const { init } = timeline;
  const segment = p.options.segmentTarget;
  const part = p.options.partTarget;
  const { peak, frameRate } = p.measure();
  // No more is held than has been produced: early on, the time-shift window is what exists since the start
  // (ffmpeg, computing the oldest segment from a longer one, looks before the first).
  const full = p.options.playlistSegments * segment;
  const sinceStart = Math.floor((Date.now() - timeline.wallMs) / 1000) - 1;
  const held = Math.max(0, Math.min(full, sinceStart));
  // While the window grows the MPD is refreshed every second, the step it grows by (every part while the anchor
  // settles, HlsPackager.anchorSettling): video.js/VHS, refreshing every 5 segments, saw the window jump from
  // 1 s to 11 s, re-requested segment 0 and sought far past live. Once full, it changes only with a timeline.
  const updatePeriod = p.anchorSettling ? part : held < full ? Math.min(1, segment) : segment * 5;
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic"',
    '  profiles="urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019"',
    `  availabilityStartTime="${new Date(Math.round(timeline.wallMs)).toISOString()}"`,
    `  publishTime="${new Date().toISOString()}"`,
    // While the anchor settles availabilityStartTime may still move earlier: a player that joined then reloads
    // the MPD at once instead of keeping a late clock for 5 segments.
    `  minimumUpdatePeriod="${isoDuration(updatePeriod)}" minBufferTime="${isoDuration(part * 2)}"`,
    `  timeShiftBufferDepth="${isoDuration(held)}" maxSegmentDuration="${isoDuration(p.targetDuration)}">`,
    '  <ServiceDescription id="0">',
    `    <Latency referenceId="0" target="${Math.round(options.targetLatency * 1000)}" min="${Math.round(part * 3 * 1000)}" max="${Math.round(options.targetLatency * 2000)}"/>`,
    '    <PlaybackRate min="0.96" max="1.25"/>',
    '  </ServiceDescription>',
    `  <Period id="${timeline.id}" start="PT0S">`,
  ];
  // One adaptation set per track (DASH players expect one media type per representation), all cut at the
  // same instants since they come from the same segments.
  for (const track of init.tracks) {
    const video = track.kind === 'video';
    const attributes = [
      `id="${track.id}"`,
      `codecs="${xml(track.codecString)}"`,
      // The stream's measured peak, shared out: the video carries nearly all of it.
      `bandwidth="${Math.max(1, Math.round(video || init.tracks.length === 1 ? peak : 128_000))}"`,
    ];
    if (video && track.width && track.height)
      attributes.push(`width="${track.width}" height="${track.height}"`);
    if (video && frameRate > 0) attributes.push(`frameRate="${Math.round(frameRate)}"`);
    if (!video && track.sampleRate) attributes.push(`audioSamplingRate="${track.sampleRate}"`);
    // Every track's timestamps share the ingest's origin, so the period starts at the same instant in each.
    const offset = Math.round((timeline.startDts * track.timescale) / timeline.timescale);
    lines.push(
      `    <AdaptationSet id="${track.id}" contentType="${track.kind}" mimeType="${track.kind}/mp4" segmentAlignment="true" startWithSAP="1">`,
      // What the ServiceDescription's Latency@referenceId names (DASH-IF low-latency modes): the wall clock at
      // which the Period's first sample was produced, the timeline's anchor as in availabilityStartTime.
      `      <ProducerReferenceTime id="0" type="encoder" wallClockTime="${new Date(Math.round(timeline.wallMs)).toISOString()}" presentationTime="${offset}">`,
      `        <UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-iso:2014" value="${xml(options.timeUrl)}"/>`,
      '      </ProducerReferenceTime>',
      `      <Representation ${attributes.join(' ')}>`,
      `        <SegmentTemplate timescale="${track.timescale}" presentationTimeOffset="${offset}"`,
      `          initialization="${dashInitUri(p.epoch, init.generation, track.id)}" media="${dashSegmentTemplate(p.epoch, track.id)}"`,
      `          startNumber="${timeline.firstMsn}" duration="${Math.round(segment * track.timescale)}"`,
      `          availabilityTimeOffset="${Number((segment - part).toFixed(3))}" availabilityTimeComplete="false"/>`,
      '      </Representation>',
      '    </AdaptationSet>',
    );
  }
  lines.push(
    '  </Period>',
    `  <UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-iso:2014" value="${xml(options.timeUrl)}"/>`,
    '</MPD>',
    '',
  );
  return lines.join('\n');
}
