import { ByteReader, readU32 } from '../bytes.ts';
import { MediaParseError } from '../errors.ts';

/*
 * ISO BMFF box reader (ISO/IEC 14496-12 §4.2) and parsers for the boxes our writer emits, for tests and tools.
 * Everything returns views into the input; every size is checked against its parent before use.
 */

export interface Mp4Box {
  readonly type: string;
  /** Offset of the box's first byte in the buffer it was read from. */
  readonly start: number;
  readonly size: number;
  /** 8, 16 with a 64-bit largesize, plus 16 for a 'uuid' usertype. */
  readonly headerSize: number;
  /** The box body after its header (a view, not a copy). */
  payload(): Uint8Array;
  /** Length of the buffer the box was read from: the most media data any sample it describes can have. */
  readonly sourceSize: number;
  /** Present on container boxes: the boxes inside. */
  readonly children?: Mp4Box[];
}

/** Boxes that hold only other boxes, which readBoxes descends into. */
const CONTAINERS = new Set([
  'moov',
  'trak',
  'mdia',
  'minf',
  'stbl',
  'mvex',
  'moof',
  'traf',
  'dinf',
  'edts',
  'mfra',
]);

class BoxView implements Mp4Box {
  readonly type: string;
  readonly start: number;
  readonly size: number;
  readonly headerSize: number;
  readonly children?: Mp4Box[];
  readonly #buf: Uint8Array;

  constructor(buf: Uint8Array, type: string, start: number, size: number, headerSize: number) {
    this.#buf = buf;
    this.type = type;
    this.start = start;
    this.size = size;
    this.headerSize = headerSize;
    if (CONTAINERS.has(type)) this.children = readBoxes(buf, start + headerSize, start + size);
  }

  payload(): Uint8Array {
    return this.#buf.subarray(this.start + this.headerSize, this.start + this.size);
  }

  get sourceSize(): number {
    return this.#buf.length;
  }
}

/** Reads the sequence of boxes in `buf[start, end)`, descending into containers. */
export function readBoxes(buf: Uint8Array, start = 0, end = buf.length): Mp4Box[] {
  if (start < 0 || end > buf.length || start > end) {
    throw new RangeError(`readBoxes: range [${start}, ${end}) outside a buffer of ${buf.length} bytes`);
  }
  const out: Mp4Box[] = [];
  let p = start;
  while (p < end) {
    if (p + 8 > end) throw new MediaParseError(`MP4: truncated box header, ${end - p} bytes left`, p);
    let size = readU32(buf, p);
    const type = fourccAt(buf, p + 4);
    let headerSize = 8;
    if (size === 1) {
      if (p + 16 > end) throw new MediaParseError(`MP4: '${type}' box truncated in its 64-bit largesize`, p);
      const hi = readU32(buf, p + 8);
      if (hi >= 0x200000) throw new MediaParseError(`MP4: '${type}' box largesize exceeds 2^53`, p);
      size = hi * 0x100000000 + readU32(buf, p + 12);
      headerSize = 16;
    } else if (size === 0) {
      size = end - p; // §4.2: the box extends to the end of the file
    }
    if (type === 'uuid') headerSize += 16;
    if (size < headerSize) {
      throw new MediaParseError(
        `MP4: '${type}' box size ${size} is smaller than its ${headerSize}-byte header`,
        p,
      );
    }
    if (p + size > end) {
      throw new MediaParseError(
        `MP4: '${type}' box size ${size} runs past the end, ${end - p} bytes left`,
        p,
      );
    }
    out.push(new BoxView(buf, type, p, size, headerSize));
    p += size;
  }
  return out;
}

function fourccAt(buf: Uint8Array, p: number): string {
  return String.fromCharCode(buf[p], buf[p + 1], buf[p + 2], buf[p + 3]);
}

/** The first box at a slash-separated path, e.g. `moov/trak/mdia/mdhd`. */
export function findBox(boxes: readonly Mp4Box[], path: string): Mp4Box | undefined {
  return findBoxes(boxes, path)[0];
}

/** Every box at a slash-separated path, in file order (e.g. each `moov/trak`). */
export function findBoxes(boxes: readonly Mp4Box[], path: string): Mp4Box[] {
  let level: readonly Mp4Box[] = boxes;
  const parts = path.split('/');
  for (let i = 0; i < parts.length - 1; i++) {
    level = level.filter((b) => b.type === parts[i]).flatMap((b) => b.children ?? []);
  }
  return level.filter((b) => b.type === parts[parts.length - 1]);
}

/** Every box of `type` anywhere in the tree. */
export function findAllBoxes(boxes: readonly Mp4Box[], type: string): Mp4Box[] {
  const out: Mp4Box[] = [];
  const walk = (list: readonly Mp4Box[]): void => {
    for (const b of list) {
      if (b.type === type) out.push(b);
      if (b.children) walk(b.children);
    }
  };
  walk(boxes);
  return out;
}

interface FullBoxReader {
  r: ByteReader;
  version: number;
  flags: number;
}

function fullBox(box: Mp4Box, type: string): FullBoxReader {
  if (box.type !== type)
    throw new MediaParseError(`MP4: expected a '${type}' box, got '${box.type}'`, box.start);
  const r = new ByteReader(box.payload(), `MP4 '${type}'`);
  const version = r.u8('version');
  const flags = r.u24('flags');
  return { r, version, flags };
}

function versioned(f: FullBoxReader, field: string): number {
  return f.version === 1 ? f.r.u64(field) : f.r.u32(field);
}

export interface Mvhd {
  version: number;
  timescale: number;
  duration: number;
  nextTrackId: number;
}

/** §8.2.2 */
export function parseMvhd(box: Mp4Box): Mvhd {
  const f = fullBox(box, 'mvhd');
  versioned(f, 'creation_time');
  versioned(f, 'modification_time');
  const timescale = f.r.u32('timescale');
  const duration = versioned(f, 'duration');
  f.r.skip(4 + 2 + 10 + 36 + 24, 'rate, volume, matrix, pre_defined');
  return { version: f.version, timescale, duration, nextTrackId: f.r.u32('next_track_ID') };
}

export interface Tkhd {
  version: number;
  flags: number;
  trackId: number;
  duration: number;
  volume: number;
  /** Integer part of the 16.16 fixed-point size. */
  width: number;
  height: number;
}

/** §8.3.2 */
export function parseTkhd(box: Mp4Box): Tkhd {
  const f = fullBox(box, 'tkhd');
  versioned(f, 'creation_time');
  versioned(f, 'modification_time');
  const trackId = f.r.u32('track_ID');
  f.r.skip(4, 'reserved');
  const duration = versioned(f, 'duration');
  f.r.skip(8 + 2 + 2, 'reserved, layer, alternate_group');
  const volume = f.r.u16('volume');
  f.r.skip(2 + 36, 'reserved, matrix');
  const width = f.r.u32('width') / 0x10000;
  const height = f.r.u32('height') / 0x10000;
  return { version: f.version, flags: f.flags, trackId, duration, volume, width, height };
}

export interface Mdhd {
  version: number;
  timescale: number;
  duration: number;
  /** ISO 639-2/T code, e.g. "und". */
  language: string;
}

/** §8.4.2 */
export function parseMdhd(box: Mp4Box): Mdhd {
  const f = fullBox(box, 'mdhd');
  versioned(f, 'creation_time');
  versioned(f, 'modification_time');
  const timescale = f.r.u32('timescale');
  const duration = versioned(f, 'duration');
  const lang = f.r.u16('language');
  const language = String.fromCharCode(
    ((lang >> 10) & 0x1f) + 0x60,
    ((lang >> 5) & 0x1f) + 0x60,
    (lang & 0x1f) + 0x60,
  );
  return { version: f.version, timescale, duration, language };
}

/** §8.4.3: the handler_type, e.g. "vide" or "soun". */
export function parseHdlr(box: Mp4Box): string {
  const f = fullBox(box, 'hdlr');
  f.r.skip(4, 'pre_defined');
  const t = f.r.bytes(4, 'handler_type');
  return fourccAt(t, 0);
}

/** §8.8.5 */
export function parseMfhd(box: Mp4Box): number {
  return fullBox(box, 'mfhd').r.u32('sequence_number');
}

export interface Trex {
  trackId: number;
  defaultSampleDescriptionIndex: number;
  defaultSampleDuration: number;
  defaultSampleSize: number;
  defaultSampleFlags: number;
}

/** §8.8.3 */
export function parseTrex(box: Mp4Box): Trex {
  const { r } = fullBox(box, 'trex');
  return {
    trackId: r.u32('track_ID'),
    defaultSampleDescriptionIndex: r.u32('default_sample_description_index'),
    defaultSampleDuration: r.u32('default_sample_duration'),
    defaultSampleSize: r.u32('default_sample_size'),
    defaultSampleFlags: r.u32('default_sample_flags'),
  };
}

export interface Tfhd {
  flags: number;
  trackId: number;
  baseDataOffset?: number;
  sampleDescriptionIndex?: number;
  defaultSampleDuration?: number;
  defaultSampleSize?: number;
  defaultSampleFlags?: number;
  durationIsEmpty: boolean;
  defaultBaseIsMoof: boolean;
}

/** §8.8.7 */
export function parseTfhd(box: Mp4Box): Tfhd {
  const { r, flags } = fullBox(box, 'tfhd');
  const out: Tfhd = {
    flags,
    trackId: r.u32('track_ID'),
    durationIsEmpty: (flags & 0x010000) !== 0,
    defaultBaseIsMoof: (flags & 0x020000) !== 0,
  };
  if (flags & 0x000001) out.baseDataOffset = r.u64('base_data_offset');
  if (flags & 0x000002) out.sampleDescriptionIndex = r.u32('sample_description_index');
  if (flags & 0x000008) out.defaultSampleDuration = r.u32('default_sample_duration');
  if (flags & 0x000010) out.defaultSampleSize = r.u32('default_sample_size');
  if (flags & 0x000020) out.defaultSampleFlags = r.u32('default_sample_flags');
  return out;
}

export interface Tfdt {
  version: number;
  baseMediaDecodeTime: number;
}

/** §8.8.12 */
export function parseTfdt(box: Mp4Box): Tfdt {
  const f = fullBox(box, 'tfdt');
  return { version: f.version, baseMediaDecodeTime: versioned(f, 'baseMediaDecodeTime') };
}

export interface TrunSample {
  duration?: number;
  size?: number;
  flags?: number;
  compositionTimeOffset?: number;
}

export interface Trun {
  version: number;
  flags: number;
  sampleCount: number;
  dataOffset?: number;
  firstSampleFlags?: number;
  samples: TrunSample[];
}

/** §8.8.8 */
export function parseTrun(box: Mp4Box): Trun {
  const { r, version, flags } = fullBox(box, 'trun');
  const sampleCount = r.u32('sample_count');
  const out: Trun = { version, flags, sampleCount, samples: [] };
  if (flags & 0x000001) out.dataOffset = r.i32('data_offset');
  if (flags & 0x000004) out.firstSampleFlags = r.u32('first_sample_flags');
  const perSample =
    (flags & 0x000100 ? 4 : 0) +
    (flags & 0x000200 ? 4 : 0) +
    (flags & 0x000400 ? 4 : 0) +
    (flags & 0x000800 ? 4 : 0);
  if (sampleCount * perSample > r.remaining) {
    r.fail(`sample_count ${sampleCount} needs ${sampleCount * perSample} bytes, ${r.remaining} remain`, 4);
  }
  // A trun without per-sample fields costs no bytes per sample, so its count alone would bound nothing; but
  // every sample has at least one byte of media data in the file (a sample is an access unit, §8.8.8.1),
  // which keeps the work per input byte bounded.
  if (sampleCount > box.sourceSize) {
    r.fail(
      `sample_count ${sampleCount} exceeds the ${box.sourceSize} bytes its samples' data must fit in`,
      4,
    );
  }
  for (let i = 0; i < sampleCount; i++) {
    const s: TrunSample = {};
    if (flags & 0x000100) s.duration = r.u32('sample_duration');
    if (flags & 0x000200) s.size = r.u32('sample_size');
    if (flags & 0x000400) s.flags = r.u32('sample_flags');
    if (flags & 0x000800) {
      s.compositionTimeOffset =
        version === 0 ? r.u32('sample_composition_time_offset') : r.i32('sample_composition_time_offset');
    }
    out.samples.push(s);
  }
  return out;
}

export interface SampleEntry {
  /** The coding name: avc1, hvc1, mp4a, Opus … */
  type: string;
  box: Mp4Box;
  width?: number;
  height?: number;
  channelCount?: number;
  /** Integer part of the 16.16 samplerate field. */
  sampleRate?: number;
  /** Boxes after the entry's fixed fields: avcC, esds, dOps, btrt … */
  children: Mp4Box[];
}

const VISUAL_ENTRIES = new Set(['avc1', 'avc3', 'hvc1', 'hev1', 'av01', 'vp08', 'vp09', 'encv']);
const AUDIO_ENTRIES = new Set(['mp4a', 'Opus', 'ac-3', 'ec-3', 'fLaC', 'enca']);

/** Sample descriptions of an stsd (§8.5.2), with the fixed fields of visual (§12.1.3) and audio (§12.2.3) entries. */
export function parseStsd(box: Mp4Box): SampleEntry[] {
  const { r } = fullBox(box, 'stsd');
  const count = r.u32('entry_count');
  const payload = box.payload();
  const entries = readBoxes(payload, r.offset);
  if (entries.length !== count) r.fail(`entry_count is ${count} but ${entries.length} entries follow`, 4);
  return entries.map((e) => {
    const body = new ByteReader(
      payload,
      `MP4 '${e.type}' sample entry`,
      e.start + e.headerSize,
      e.start + e.size,
    );
    body.skip(8, 'SampleEntry reserved, data_reference_index');
    const entry: SampleEntry = { type: e.type, box: e, children: [] };
    if (VISUAL_ENTRIES.has(e.type)) {
      body.skip(16, 'pre_defined, reserved');
      entry.width = body.u16('width');
      entry.height = body.u16('height');
      body.skip(4 + 4 + 4 + 2 + 32 + 2 + 2, 'resolution, frame_count, compressorname, depth');
    } else if (AUDIO_ENTRIES.has(e.type)) {
      body.skip(8, 'reserved');
      entry.channelCount = body.u16('channelcount');
      body.skip(2 + 2 + 2, 'samplesize, pre_defined, reserved');
      entry.sampleRate = body.u32('samplerate') / 0x10000;
    } else {
      return entry;
    }
    entry.children = readBoxes(payload, body.offset, e.start + e.size);
    return entry;
  });
}

export interface Esds {
  objectTypeIndication: number;
  streamType: number;
  /** DecoderSpecificInfo: the AudioSpecificConfig for AAC. */
  decoderSpecificInfo: Uint8Array;
}

/** ES_Descriptor inside an esds box (ISO/IEC 14496-14 §5.6, 14496-1 §7.2.6.5). */
export function parseEsds(box: Mp4Box): Esds {
  const { r } = fullBox(box, 'esds');
  const es = readDescriptor(r, 0x03);
  const esEnd = r.offset + es;
  r.skip(2, 'ES_ID');
  const esFlags = r.u8('ES_Descriptor flags');
  if (esFlags & 0x80) r.skip(2, 'dependsOn_ES_ID');
  if (esFlags & 0x40) r.skip(r.u8('URLlength'), 'URLstring');
  if (esFlags & 0x20) r.skip(2, 'OCR_ES_Id');
  const dcd = readDescriptor(r, 0x04);
  const dcdEnd = r.offset + dcd;
  const objectTypeIndication = r.u8('objectTypeIndication');
  const streamType = r.u8('streamType') >> 2;
  r.skip(3 + 4 + 4, 'bufferSizeDB, maxBitrate, avgBitrate');
  let decoderSpecificInfo: Uint8Array = new Uint8Array(0);
  if (r.offset < dcdEnd) {
    const len = readDescriptor(r, 0x05);
    decoderSpecificInfo = r.bytes(len, 'DecoderSpecificInfo');
  }
  if (dcdEnd > esEnd) r.fail('DecoderConfigDescriptor overruns its ES_Descriptor');
  return { objectTypeIndication, streamType, decoderSpecificInfo };
}

/** A descriptor header (14496-1 §8.3.3) with the expected tag; returns the body size. */
function readDescriptor(r: ByteReader, tag: number): number {
  const at = r.offset;
  const found = r.u8('descriptor tag');
  if (found !== tag)
    r.fail(`expected descriptor tag 0x${tag.toString(16)}, found 0x${found.toString(16)}`, at);
  let size = 0;
  for (let i = 0; i < 4; i++) {
    const b = r.u8('descriptor size');
    size = size * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      if (size > r.remaining)
        r.fail(`descriptor 0x${tag.toString(16)} of ${size} bytes, ${r.remaining} remain`, at);
      return size;
    }
  }
  return r.fail(`descriptor 0x${tag.toString(16)} size field longer than 4 bytes`, at);
}

/** One sample of a fragmented file, resolved against tfhd and trex defaults. */
export interface Mp4Sample {
  trackId: number;
  /** mfhd sequence_number of the fragment carrying it. */
  sequenceNumber: number;
  dts: number;
  pts: number;
  duration: number;
  flags: number;
  /** Not flagged sample_is_non_sync_sample (§8.8.3.1). */
  keyframe: boolean;
  /** A view into the input. */
  data: Uint8Array;
}

/**
 * Every sample of the movie fragments in a fragmented MP4 (init segment optional, for trex defaults), in file
 * order. Resolves data offsets per §8.8.7.1 and fails on any sample whose bytes lie outside the buffer.
 */
export function readFragmentSamples(buf: Uint8Array, boxes: readonly Mp4Box[] = readBoxes(buf)): Mp4Sample[] {
  const trex = new Map<number, Trex>();
  for (const b of findBoxes(boxes, 'moov/mvex/trex')) {
    const t = parseTrex(b);
    trex.set(t.trackId, t);
  }
  const nextDts = new Map<number, number>();
  const out: Mp4Sample[] = [];
  for (const moof of boxes) {
    if (moof.type !== 'moof') continue;
    const mfhd = findBox(moof.children!, 'mfhd');
    const sequenceNumber = mfhd ? parseMfhd(mfhd) : 0;
    let previousTrafEnd = moof.start;
    for (const traf of moof.children!) {
      if (traf.type !== 'traf') continue;
      const tfhdBox = findBox(traf.children!, 'tfhd');
      if (!tfhdBox) throw new MediaParseError('MP4: traf without tfhd', traf.start);
      const tfhd = parseTfhd(tfhdBox);
      const defaults = trex.get(tfhd.trackId);
      const tfdt = findBox(traf.children!, 'tfdt');
      let dts = tfdt ? parseTfdt(tfdt).baseMediaDecodeTime : (nextDts.get(tfhd.trackId) ?? 0);
      const base = tfhd.baseDataOffset ?? (tfhd.defaultBaseIsMoof ? moof.start : previousTrafEnd);
      let dataPos = base;
      for (const trunBox of findBoxes(traf.children!, 'trun')) {
        const trun = parseTrun(trunBox);
        if (trun.dataOffset !== undefined) dataPos = base + trun.dataOffset;
        trun.samples.forEach((s, i) => {
          const size = s.size ?? tfhd.defaultSampleSize ?? defaults?.defaultSampleSize ?? 0;
          const duration = s.duration ?? tfhd.defaultSampleDuration ?? defaults?.defaultSampleDuration ?? 0;
          const flags =
            s.flags ??
            (i === 0 ? trun.firstSampleFlags : undefined) ??
            tfhd.defaultSampleFlags ??
            defaults?.defaultSampleFlags ??
            0;
          if (dataPos < 0 || dataPos + size > buf.length) {
            throw new MediaParseError(
              `MP4: track ${tfhd.trackId} sample of ${size} bytes at ${dataPos} lies outside the ${buf.length}-byte file`,
              trunBox.start,
            );
          }
          out.push({
            trackId: tfhd.trackId,
            sequenceNumber,
            dts,
            pts: dts + (s.compositionTimeOffset ?? 0),
            duration,
            flags,
            keyframe: (flags & 0x00010000) === 0,
            data: buf.subarray(dataPos, dataPos + size),
          });
          dts += duration;
          dataPos += size;
        });
      }
      nextDts.set(tfhd.trackId, dts);
      previousTrafEnd = dataPos;
    }
  }
  return out;
}
