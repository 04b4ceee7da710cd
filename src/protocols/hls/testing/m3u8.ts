/**
 * Test-only: a strict reader of the media playlists we write, and the RFC 8216bis rules every one of them must
 * satisfy. Used by the unit tests and by the integration test against a real ffmpeg publisher.
 */

export interface ParsedPart {
  duration: number;
  uri: string;
  independent: boolean;
}

export interface ParsedSegment {
  msn: number;
  /** 0 for the segment still being produced (listed through its parts only). */
  duration: number;
  uri: string | null;
  parts: ParsedPart[];
  discontinuity: boolean;
  programDateTime: number | null;
  map: string;
}

export interface ParsedMediaPlaylist {
  version: number;
  targetDuration: number;
  partTarget: number;
  serverControl: Record<string, string>;
  mediaSequence: number;
  discontinuitySequence: number;
  skipped: number;
  segments: ParsedSegment[];
  preloadHint: string | null;
  endList: boolean;
}

export function attributes(list: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /([A-Z0-9-]+)=("[^"]*"|[^,]*)(,|$)/g;
  let m: RegExpExecArray | null = re.exec(list);
  while (m) {
    out[m[1]] = m[2].startsWith('"') ? m[2].slice(1, -1) : m[2];
    m = re.exec(list);
  }
  return out;
}

export function parseMediaPlaylist(text: string): ParsedMediaPlaylist {
  const lines = text.split('\n').filter((l) => l.length > 0);
  if (lines[0] !== '#EXTM3U') throw new Error('playlist does not start with #EXTM3U');
  const p: ParsedMediaPlaylist = {
    version: 0,
    targetDuration: Number.NaN,
    partTarget: Number.NaN,
    serverControl: {},
    mediaSequence: 0,
    discontinuitySequence: 0,
    skipped: 0,
    segments: [],
    preloadHint: null,
    endList: false,
  };
  let map = '';
  let pending: Omit<ParsedSegment, 'msn' | 'duration' | 'uri'> = {
    parts: [],
    discontinuity: false,
    programDateTime: null,
    map,
  };
  let extinf: number | null = null;
  const fresh = () => ({ parts: [], discontinuity: false, programDateTime: null, map });
  for (const line of lines.slice(1)) {
    const [tag, value = ''] = line.startsWith('#') ? splitTag(line) : ['', line];
    switch (tag) {
      case '#EXT-X-VERSION':
        p.version = Number(value);
        break;
      case '#EXT-X-TARGETDURATION':
        p.targetDuration = Number(value);
        break;
      case '#EXT-X-PART-INF':
        p.partTarget = Number(attributes(value)['PART-TARGET']);
        break;
      case '#EXT-X-SERVER-CONTROL':
        p.serverControl = attributes(value);
        break;
      case '#EXT-X-MEDIA-SEQUENCE':
        p.mediaSequence = Number(value);
        break;
      case '#EXT-X-DISCONTINUITY-SEQUENCE':
        p.discontinuitySequence = Number(value);
        break;
      case '#EXT-X-SKIP':
        p.skipped = Number(attributes(value)['SKIPPED-SEGMENTS']);
        break;
      case '#EXT-X-MAP':
        map = attributes(value).URI;
        pending.map = map;
        break;
      case '#EXT-X-DISCONTINUITY':
        pending.discontinuity = true;
        break;
      case '#EXT-X-PROGRAM-DATE-TIME':
        pending.programDateTime = Date.parse(value);
        break;
      case '#EXT-X-PART': {
        const a = attributes(value);
        pending.parts.push({
          duration: Number(a.DURATION),
          uri: a.URI,
          independent: a.INDEPENDENT === 'YES',
        });
        break;
      }
      case '#EXTINF':
        extinf = Number(value.split(',')[0]);
        break;
      case '#EXT-X-PRELOAD-HINT':
        p.preloadHint = attributes(value).URI;
        break;
      case '#EXT-X-ENDLIST':
        p.endList = true;
        break;
      case '#EXT-X-INDEPENDENT-SEGMENTS':
        break;
      case '':
        if (extinf === null) throw new Error(`URI ${line} without #EXTINF`);
        p.segments.push({
          ...pending,
          msn: p.mediaSequence + p.skipped + p.segments.length,
          duration: extinf,
          uri: line,
        });
        extinf = null;
        pending = fresh();
        break;
      default:
        throw new Error(`unexpected tag ${tag}`);
    }
  }
  if (pending.parts.length > 0) {
    p.segments.push({
      ...pending,
      msn: p.mediaSequence + p.skipped + p.segments.length,
      duration: 0,
      uri: null,
    });
  }
  return p;
}

function splitTag(line: string): [string, string] {
  const colon = line.indexOf(':');
  return colon < 0 ? [line, ''] : [line.slice(0, colon), line.slice(colon + 1)];
}

/** RTMP/FLV millisecond timestamps: a part may reach its target up to this late (HlsPackager). */
export const PART_TOLERANCE = 0.0015;

/**
 * Every rule of RFC 8216bis a Low-Latency media playlist of ours must keep; returns the violations (empty when
 * it conforms).
 */
export function conformanceProblems(p: ParsedMediaPlaylist): string[] {
  const problems: string[] = [];
  const fail = (s: string) => problems.push(s);
  if (!Number.isInteger(p.targetDuration) || p.targetDuration < 1) fail(`TARGETDURATION ${p.targetDuration}`);
  if (!(p.partTarget > 0)) fail(`PART-TARGET ${p.partTarget}`);
  const sc = p.serverControl;
  if (sc['CAN-BLOCK-RELOAD'] !== 'YES') fail('CAN-BLOCK-RELOAD is not YES');
  if (!(Number(sc['PART-HOLD-BACK']) >= 3 * p.partTarget - 1e-9))
    fail(`PART-HOLD-BACK ${sc['PART-HOLD-BACK']} < 3 x PART-TARGET`);
  if (!(Number(sc['CAN-SKIP-UNTIL']) >= 6 * p.targetDuration - 1e-9))
    fail(`CAN-SKIP-UNTIL ${sc['CAN-SKIP-UNTIL']} < 6 x TARGETDURATION`);
  if (sc['HOLD-BACK'] && !(Number(sc['HOLD-BACK']) >= 3 * p.targetDuration - 1e-9))
    fail(`HOLD-BACK ${sc['HOLD-BACK']} < 3 x TARGETDURATION`);
  if (p.version < 9 && p.skipped > 0) fail('EXT-X-SKIP needs version 9');
  for (const [i, s] of p.segments.entries()) {
    const complete = s.uri !== null;
    if (!complete && i !== p.segments.length - 1) fail(`segment ${s.msn} has no URI but is not the last`);
    if (!s.map) fail(`segment ${s.msn} has no EXT-X-MAP`);
    if (complete && s.duration > p.targetDuration) {
      fail(`segment ${s.msn} lasts ${s.duration} s > TARGETDURATION ${p.targetDuration}`);
    }
    if (s.programDateTime === null) fail(`segment ${s.msn} has no PROGRAM-DATE-TIME`);
    const next = p.segments[i + 1];
    if (complete && next?.programDateTime && s.programDateTime && !next.discontinuity) {
      const gap = Math.abs(next.programDateTime - (s.programDateTime + s.duration * 1000));
      if (gap > 2) fail(`PROGRAM-DATE-TIME of ${next.msn} is ${gap} ms off the end of ${s.msn}`);
    }
    if (s.parts.length === 0) continue;
    if (!s.parts[0].independent) fail(`first part of segment ${s.msn} is not INDEPENDENT`);
    let sum = 0;
    for (const [j, part] of s.parts.entries()) {
      sum += part.duration;
      if (part.duration > p.partTarget + PART_TOLERANCE) {
        fail(`part ${j} of segment ${s.msn} lasts ${part.duration} s > PART-TARGET ${p.partTarget}`);
      }
      const last = j === s.parts.length - 1;
      // Apple's authoring rule: every part but a segment's last lasts at least 85% of the part target.
      if (!last && complete && part.duration < 0.85 * p.partTarget) {
        fail(`part ${j} of segment ${s.msn} lasts ${part.duration} s < 85% of PART-TARGET`);
      }
      if (!part.uri.includes(`-${s.msn}-${j}.`)) fail(`part ${j} of segment ${s.msn} is named ${part.uri}`);
    }
    if (complete && Math.abs(sum - s.duration) > 0.0001 * (s.parts.length + 1)) {
      fail(`parts of segment ${s.msn} sum to ${sum} s, EXTINF says ${s.duration}`);
    }
  }
  if (!p.endList && !p.preloadHint) fail('a live playlist without EXT-X-PRELOAD-HINT');
  if (p.endList && p.preloadHint) fail('an ended playlist with EXT-X-PRELOAD-HINT');
  return problems;
}
