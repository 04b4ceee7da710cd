import { readU32 } from '../media/bytes.ts';
import {
  findBox,
  findBoxes,
  parseHdlr,
  parseMdhd,
  parseMvhd,
  parseStsd,
  parseTfdt,
  parseTfhd,
  parseTkhd,
  parseTrun,
  readBoxes,
} from '../media/fmp4/reader.ts';

/*
 * A recording file is the stream's CMAF header (ftyp + moov) followed by the feed's movie fragments (moof +
 * mdat, one frame each) exactly as they were built for live viewers, so any prefix that ends on a fragment
 * boundary is a valid fragmented MP4. A file is finished when its mvhd carries a duration: the recorder writes
 * it on close, and repair writes it for a file whose writer died (ISO/IEC 14496-12 §8.2.2, duration in the
 * movie timescale).
 */

/** `2026-12-07T12-00-00.123Z.mp4`: the wall-clock time of the file's first frame, UTC, to the millisecond. */
const FILE_NAME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2})-(\d{2})-(\d{2})\.(\d{3})Z\.mp4$/;

export function fileNameOf(startMs: number): string {
  return `${new Date(startMs).toISOString().replace(/:/g, '-')}`.replace(/Z$/, 'Z.mp4');
}

/** The start a file name encodes, or null when the name is not one the recorder writes. */
export function startOfFileName(name: string): number | null {
  const m = FILE_NAME.exec(name);
  if (!m) return null;
  const ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6], +m[7]);
  return Number.isNaN(ms) ? null : ms;
}

export interface RecordedTrack {
  readonly id: number;
  readonly kind: 'video' | 'audio';
  /** h264, h265, av1, vp8, vp9, aac, opus, or the sample entry's four-character code when it is none of these. */
  readonly codec: string;
  readonly timescale: number;
  readonly width?: number;
  readonly height?: number;
}

export interface RecordedHeader {
  /** Bytes of ftyp + moov: the CMAF header a player initializes with. */
  readonly initSize: number;
  /** Where the first fragment starts (after the prft). */
  readonly fragmentsStart: number;
  /** The prft's wall clock (ms since the epoch, fractional) of media time 0, when the file has one. */
  readonly wallClockMs: number | null;
  readonly tracks: readonly RecordedTrack[];
  /** mvhd duration in milliseconds; 0 for a file nobody finished. */
  readonly durationMs: number;
  /** Offset of the 32-bit mvhd duration field, which finishing writes. */
  readonly durationOffset: number;
}

/** One movie fragment of a recording: where it is in the file and which sample it holds. */
export interface RecordedFragment {
  readonly offset: number;
  /** moof + mdat. */
  readonly size: number;
  readonly trackId: number;
  readonly dts: number;
  readonly duration: number;
  readonly keyframe: boolean;
  /** Offsets of the tfdt baseMediaDecodeTime (64-bit) and the first trun sample_duration, from `offset`. */
  readonly tfdtOffset: number;
  readonly durationFieldOffset: number;
}

const CODEC_OF_ENTRY: Record<string, string> = {
  avc1: 'h264',
  avc3: 'h264',
  hvc1: 'h265',
  hev1: 'h265',
  av01: 'av1',
  vp08: 'vp8',
  vp09: 'vp9',
  mp4a: 'aac',
  Opus: 'opus',
};

export class RecordingFormatError extends Error {
  override readonly name = 'RecordingFormatError';
}

/** Parses the ftyp + moov at the start of `bytes` (which must hold at least the whole moov). */
export function readRecordedHeader(bytes: Uint8Array): RecordedHeader {
  let p = 0;
  let moovEnd = -1;
  while (p + 8 <= bytes.length) {
    const size = readU32(bytes, p);
    const type = String.fromCharCode(bytes[p + 4], bytes[p + 5], bytes[p + 6], bytes[p + 7]);
    if (size < 8) throw new RecordingFormatError(`box '${type}' at byte ${p} has size ${size}`);
    if (type === 'moov') {
      if (p + size > bytes.length) throw new RecordingFormatError(`moov at byte ${p} is truncated`);
      moovEnd = p + size;
      break;
    }
    if (type !== 'ftyp')
      throw new RecordingFormatError(`expected ftyp then moov, found '${type}' at byte ${p}`);
    p += size;
  }
  if (moovEnd < 0) throw new RecordingFormatError('no complete moov box at the start of the file');
  const boxes = readBoxes(bytes, 0, moovEnd);
  const mvhdBox = findBox(boxes, 'moov/mvhd');
  if (!mvhdBox) throw new RecordingFormatError('moov has no mvhd');
  const mvhd = parseMvhd(mvhdBox);
  if (mvhd.version !== 0)
    throw new RecordingFormatError(`mvhd version ${mvhd.version} is not the recorder's`);
  const tracks: RecordedTrack[] = [];
  for (const trak of findBoxes(boxes, 'moov/trak')) {
    const inner = trak.children ?? [];
    const tkhd = findBox(inner, 'tkhd');
    const mdhd = findBox(inner, 'mdia/mdhd');
    const hdlr = findBox(inner, 'mdia/hdlr');
    const stsd = findBox(inner, 'mdia/minf/stbl/stsd');
    if (!tkhd || !mdhd || !hdlr || !stsd)
      throw new RecordingFormatError('a trak lacks tkhd, mdhd, hdlr or stsd');
    const handler = parseHdlr(hdlr);
    const [entry] = parseStsd(stsd);
    const header = parseTkhd(tkhd);
    tracks.push({
      id: header.trackId,
      kind: handler === 'vide' ? 'video' : 'audio',
      codec: CODEC_OF_ENTRY[entry?.type ?? ''] ?? entry?.type ?? '',
      timescale: parseMdhd(mdhd).timescale,
      width: handler === 'vide' ? Math.round(header.width) : undefined,
      height: handler === 'vide' ? Math.round(header.height) : undefined,
    });
  }
  let wallClockMs: number | null = null;
  let fragmentsStart = moovEnd;
  if (moovEnd + 8 <= bytes.length && isType(bytes, moovEnd, 'prft')) {
    const size = readU32(bytes, moovEnd);
    if (size === PRFT_SIZE && moovEnd + size <= bytes.length) {
      const seconds = readU32(bytes, moovEnd + 16);
      const fraction = readU32(bytes, moovEnd + 20);
      wallClockMs = (seconds - NTP_UNIX_OFFSET_SECONDS) * 1000 + (fraction / 0x100000000) * 1000;
      fragmentsStart = moovEnd + size;
    }
  }
  return {
    initSize: moovEnd,
    fragmentsStart,
    wallClockMs,
    tracks,
    durationMs: mvhd.duration,
    durationOffset: mvhdBox.start + mvhdBox.headerSize + 4 + 12,
  };
}

const NTP_UNIX_OFFSET_SECONDS = 2208988800;
/** prft version 1: header, version/flags, reference_track_ID, ntp_timestamp (64), media_time (64). */
const PRFT_SIZE = 8 + 4 + 4 + 8 + 8;

/**
 * The ProducerReferenceTimeBox (ISO/IEC 14496-12 §8.16.5) a recording carries after its moov: media time 0 of
 * `trackId` is wall-clock `wallMs`. Exact to a fraction of a millisecond, so files that follow one another
 * line up sample for sample.
 */
export function writeProducerReference(trackId: number, wallMs: number): Uint8Array {
  const out = new Uint8Array(PRFT_SIZE);
  const view = new DataView(out.buffer);
  view.setUint32(0, PRFT_SIZE);
  out.set([0x70, 0x72, 0x66, 0x74], 4); // 'prft'
  view.setUint32(8, 0x01000000); // version 1, flags 0
  view.setUint32(12, trackId);
  const whole = Math.floor(wallMs / 1000);
  view.setUint32(16, whole + NTP_UNIX_OFFSET_SECONDS);
  view.setUint32(20, Math.min(0xffffffff, Math.floor(((wallMs - whole * 1000) / 1000) * 0x100000000)));
  // media_time (64 bits) 0: the file's first sample.
  return out;
}

export interface RecordedFragments {
  readonly fragments: RecordedFragment[];
  /** The end of the last complete moof + mdat: what a file cut short is truncated to. */
  readonly completeEnd: number;
}

/**
 * The fragments in `bytes[from, end)`, stopping at the first one that is cut short or malformed (a writer
 * killed mid-write leaves at most one such tail).
 */
export function readRecordedFragments(
  bytes: Uint8Array,
  from: number,
  end = bytes.length,
): RecordedFragments {
  const fragments: RecordedFragment[] = [];
  let p = from;
  while (p + 8 <= end) {
    const moofSize = readU32(bytes, p);
    if (!isType(bytes, p, 'moof') || moofSize < 8 || p + moofSize + 8 > end) break;
    const mdatAt = p + moofSize;
    const mdatSize = readU32(bytes, mdatAt);
    if (!isType(bytes, mdatAt, 'mdat') || mdatSize < 8 || mdatAt + mdatSize > end) break;
    const fragment = parseFragment(bytes, p, moofSize, moofSize + mdatSize);
    if (!fragment) break;
    fragments.push(fragment);
    p = mdatAt + mdatSize;
  }
  return { fragments, completeEnd: p };
}

function parseFragment(
  bytes: Uint8Array,
  offset: number,
  moofSize: number,
  size: number,
): RecordedFragment | null {
  try {
    const [moof] = readBoxes(bytes, offset, offset + moofSize);
    const traf = findBox(moof.children ?? [], 'traf');
    const tfhd = traf && findBox(traf.children ?? [], 'tfhd');
    const tfdt = traf && findBox(traf.children ?? [], 'tfdt');
    const trun = traf && findBox(traf.children ?? [], 'trun');
    if (!tfhd || !tfdt || !trun) return null;
    const samples = parseTrun(trun);
    const first = samples.samples[0];
    if (samples.sampleCount !== 1 || first?.duration === undefined || parseTfdt(tfdt).version !== 1)
      return null;
    // Sample flags §8.8.3.1: sample_is_non_sync_sample is bit 16.
    const keyframe = ((first.flags ?? samples.firstSampleFlags ?? 0) & 0x00010000) === 0;
    return {
      offset,
      size,
      trackId: parseTfhd(tfhd).trackId,
      dts: parseTfdt(tfdt).baseMediaDecodeTime,
      duration: first.duration,
      keyframe,
      tfdtOffset: tfdt.start + tfdt.headerSize + 4 - offset,
      // trun: version/flags, sample_count, data_offset, then the first sample's duration.
      durationFieldOffset: trun.start + trun.headerSize + 12 - offset,
    };
  } catch {
    return null;
  }
}

function isType(bytes: Uint8Array, p: number, type: string): boolean {
  return (
    bytes[p + 4] === type.charCodeAt(0) &&
    bytes[p + 5] === type.charCodeAt(1) &&
    bytes[p + 6] === type.charCodeAt(2) &&
    bytes[p + 7] === type.charCodeAt(3)
  );
}

/**
 * How long the fragments last in milliseconds: from the first video sample (the keyframe the file starts
 * on) to where the last sample of the longest track ends.
 */
export function fragmentsDurationMs(
  tracks: readonly RecordedTrack[],
  fragments: readonly RecordedFragment[],
): number {
  const origin = originSeconds(tracks, fragments);
  if (origin === null) return 0;
  const scale = new Map(tracks.map((t) => [t.id, t.timescale]));
  let end = origin;
  for (const f of fragments) {
    const ts = scale.get(f.trackId);
    if (ts) end = Math.max(end, (f.dts + f.duration) / ts);
  }
  return Math.round((end - origin) * 1000);
}

/** Media time (seconds) of the file's first random access point, which the file name's wall clock marks. */
export function originSeconds(
  tracks: readonly RecordedTrack[],
  fragments: readonly RecordedFragment[],
): number | null {
  const video = tracks.find((t) => t.kind === 'video');
  const lead = video ?? tracks[0];
  if (!lead) return null;
  const first = fragments.find((f) => f.trackId === lead.id);
  return first ? first.dts / lead.timescale : null;
}
