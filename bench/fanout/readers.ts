/*
 * Just enough of the two wire formats to count frames: which track a frame belongs to and its decode time.
 * Headers only; payloads are skipped, never copied.
 */

/** 0: video, 1: audio. */
export type TrackIndex = 0 | 1;

/** Receives every media frame a reader finds: its track, decode time in the track's ticks, sample count. */
export interface FrameSink {
  frame(track: TrackIndex, dts: number, samples: number): void;
}

export class WireFormatError extends Error {}

const fourcc = (s: string): number =>
  ((s.charCodeAt(0) << 24) | (s.charCodeAt(1) << 16) | (s.charCodeAt(2) << 8) | s.charCodeAt(3)) >>> 0;
const MOOV = fourcc('moov');
const TRAK = fourcc('trak');
const TKHD = fourcc('tkhd');
const MDIA = fourcc('mdia');
const MDHD = fourcc('mdhd');
const HDLR = fourcc('hdlr');
const MOOF = fourcc('moof');
const TRAF = fourcc('traf');
const TFHD = fourcc('tfhd');
const TFDT = fourcc('tfdt');
const TRUN = fourcc('trun');
const VIDE = fourcc('vide');
const SOUN = fourcc('soun');

/** Calls `visit(type, start, end)` for each box in bytes[from, to) (ISO/IEC 14496-12 §4.2); start is the payload. */
function eachBox(
  bytes: Uint8Array,
  from: number,
  to: number,
  visit: (type: number, start: number, end: number) => void,
): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let p = from, size = 0; p < to; p += size) {
    size = boxSize(view, p, to);
    visit(view.getUint32(p + 4), p + boxHeader(view, p), p + size);
  }
}

interface TrackInfo {
  index: TrackIndex;
  timescale: number;
}

/** Reads a Subsecond WebSocket+MSE stream: the init segment's tracks, then one frame per moof. */
export class Fmp4FrameReader {
  /** track_ID → which track and its timescale, from the last init segment. */
  readonly tracks = new Map<number, TrackInfo>();
  readonly #sink: FrameSink;

  constructor(sink: FrameSink) {
    this.#sink = sink;
  }

  /** ftyp + moov: learn each track's id, kind (hdlr) and timescale (mdhd). */
  readInit(bytes: Uint8Array): void {
    this.tracks.clear();
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    eachBox(bytes, 0, bytes.byteLength, (type, start, end) => {
      if (type !== MOOV) return;
      eachBox(bytes, start, end, (type, start, end) => {
        if (type !== TRAK) return;
        let id = 0;
        let timescale = 0;
        let handler = 0;
        eachBox(bytes, start, end, (type, start, end) => {
          // tkhd §8.3.2 and mdhd §8.4.2: after version+flags, v1 has 64-bit times, v0 32-bit.
          if (type === TKHD) id = view.getUint32(start + (view.getUint8(start) === 1 ? 20 : 12));
          if (type !== MDIA) return;
          eachBox(bytes, start, end, (type, start) => {
            if (type === MDHD) timescale = view.getUint32(start + (view.getUint8(start) === 1 ? 20 : 12));
            if (type === HDLR) handler = view.getUint32(start + 8);
          });
        });
        if (handler === VIDE || handler === SOUN) {
          this.tracks.set(id, { index: handler === VIDE ? 0 : 1, timescale });
        }
      });
    });
    if (this.tracks.size === 0) throw new WireFormatError('init segment has no audio or video track');
  }

  timescale(track: TrackIndex): number {
    for (const t of this.tracks.values()) if (t.index === track) return t.timescale;
    return 0;
  }

  /** One or more moof+mdat: report each track fragment's first decode time and sample count. */
  readFragments(bytes: Uint8Array): void {
    // Flat loops rather than eachBox: this runs for every message of every viewer in the load generator.
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let p = 0, size = 0; p < bytes.byteLength; p += size) {
      size = boxSize(view, p, bytes.byteLength);
      if (view.getUint32(p + 4) !== MOOF) continue;
      const moofEnd = p + size;
      for (let q = p + boxHeader(view, p), qSize = 0; q < moofEnd; q += qSize) {
        qSize = boxSize(view, q, moofEnd);
        if (view.getUint32(q + 4) === TRAF) this.#readTraf(view, q + boxHeader(view, q), q + qSize);
      }
    }
  }

  #readTraf(view: DataView, from: number, to: number): void {
    let id = -1;
    let dts = -1;
    let samples = 0;
    for (let p = from, size = 0; p < to; p += size) {
      size = boxSize(view, p, to);
      const type = view.getUint32(p + 4);
      const start = p + boxHeader(view, p);
      if (type !== TFHD && type !== TFDT && type !== TRUN) continue;
      const need = type === TFDT && start < p + size && view.getUint8(start) === 1 ? 12 : 8;
      if (p + size - start < need) throw new WireFormatError(`traf child box at byte ${p} is too short`);
      // tfhd §8.8.7, tfdt §8.8.12, trun §8.8.8: each a FullBox (4 bytes of version and flags) first.
      if (type === TFHD) id = view.getUint32(start + 4);
      else if (type === TFDT)
        dts = view.getUint8(start) === 1 ? Number(view.getBigUint64(start + 4)) : view.getUint32(start + 4);
      else if (type === TRUN) samples += view.getUint32(start + 4);
    }
    const track = this.tracks.get(id);
    if (!track) throw new WireFormatError(`fragment for track ${id}, which the init segment did not declare`);
    this.#sink.frame(track.index, dts, samples);
  }
}

/** The size of the box at p, checked to end by `to` (§4.2: 0 means "to the end", 1 means a 64-bit size). */
function boxSize(view: DataView, p: number, to: number): number {
  if (to - p < 8) throw new WireFormatError(`truncated box header at byte ${p}`);
  let size = view.getUint32(p);
  if (size === 1) {
    if (to - p < 16) throw new WireFormatError(`truncated largesize at byte ${p}`);
    size = Number(view.getBigUint64(p + 8));
  } else if (size === 0) {
    size = to - p;
  }
  if (size < boxHeader(view, p) || p + size > to) {
    throw new WireFormatError(`box of ${size} bytes at byte ${p} overruns its parent`);
  }
  return size;
}

function boxHeader(view: DataView, p: number): number {
  return view.getUint32(p) === 1 ? 16 : 8;
}

/** FLV audio/video tag bytes needed to classify a tag (E.4.1 tag header + two bytes of its body). */
const TAG_HEADER = 11;
const CLASSIFY = 2;

/**
 * Reads an FLV byte stream (Adobe FLV spec v10.1, annex E) pushed in arbitrary chunks, as node-media-server's
 * WebSocket-FLV sends it. Reports audio and video tags that carry media, not codec configuration.
 */
export class FlvTagReader {
  readonly #sink: FrameSink;
  readonly #head = new Uint8Array(TAG_HEADER + CLASSIFY);
  #headFill = 0;
  #headNeed = 9;
  #skip = 0;
  #inFileHeader = true;

  constructor(sink: FrameSink) {
    this.#sink = sink;
  }

  push(chunk: Uint8Array): void {
    let p = 0;
    while (p < chunk.byteLength) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.byteLength - p);
        this.#skip -= n;
        p += n;
        continue;
      }
      const n = Math.min(this.#headNeed - this.#headFill, chunk.byteLength - p);
      this.#head.set(chunk.subarray(p, p + n), this.#headFill);
      this.#headFill += n;
      p += n;
      if (this.#headFill === this.#headNeed) this.#onHead();
    }
  }

  #onHead(): void {
    const h = this.#head;
    if (this.#inFileHeader) {
      // E.2: "FLV", version, flags, DataOffset; then PreviousTagSize0.
      if (h[0] !== 0x46 || h[1] !== 0x4c || h[2] !== 0x56)
        throw new WireFormatError('stream does not start with FLV');
      const dataOffset = ((h[5] << 24) | (h[6] << 16) | (h[7] << 8) | h[8]) >>> 0;
      this.#inFileHeader = false;
      this.#skip = dataOffset - 9 + 4;
      this.#expectTag();
      return;
    }
    const type = h[0] & 0x1f;
    const size = (h[1] << 16) | (h[2] << 8) | h[3];
    if (this.#headNeed === TAG_HEADER && size > 0 && (type === 8 || type === 9)) {
      // Read the first body bytes too, to tell media from configuration.
      this.#headNeed = TAG_HEADER + Math.min(CLASSIFY, size);
      return;
    }
    const taken = this.#headNeed - TAG_HEADER;
    const dts = ((h[7] << 24) | (h[4] << 16) | (h[5] << 8) | h[6]) >>> 0;
    if (type === 8 && taken > 0 && isAudioFrame(h[TAG_HEADER], h[TAG_HEADER + 1], taken)) {
      this.#sink.frame(1, dts, 1);
    } else if (type === 9 && taken > 0 && isVideoFrame(h[TAG_HEADER], h[TAG_HEADER + 1], taken)) {
      this.#sink.frame(0, dts, 1);
    }
    this.#skip = size - taken + 4; // the body's rest, then PreviousTagSize
    this.#expectTag();
  }

  #expectTag(): void {
    this.#headFill = 0;
    this.#headNeed = TAG_HEADER;
  }
}

/** E.4.2.1: AAC packet type 0 is the AudioSpecificConfig; enhanced audio (format 9) type 0 is its config. */
function isAudioFrame(b0: number, b1: number, taken: number): boolean {
  const format = b0 >> 4;
  if (format === 10) return taken > 1 && b1 === 1;
  if (format === 9) return (b0 & 0x0f) !== 0 && (b0 & 0x0f) !== 4;
  return true;
}

/**
 * E.4.3.1: frame type 5 is a command frame; AVC/HEVC packet type 0 is the sequence header, 2 the end of sequence.
 * Enhanced RTMP (IsExHeader, top bit) packet types 1 (CodedFrames) and 3 (CodedFramesX) carry media.
 */
function isVideoFrame(b0: number, b1: number, taken: number): boolean {
  if (b0 & 0x80) {
    const packetType = b0 & 0x0f;
    return packetType === 1 || packetType === 3;
  }
  if (((b0 >> 4) & 0x07) === 5) return false;
  const codec = b0 & 0x0f;
  if (codec === 7 || codec === 12) return taken > 1 && b1 === 1;
  return true;
}
