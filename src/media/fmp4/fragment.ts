import type { Frame, Track } from '../Frame.ts';

/*
 * Movie fragments (ISO/IEC 14496-12 §8.8): moof(mfhd, traf(tfhd, tfdt, trun)) + mdat, one track per fragment.
 * Sizes are known up front, so the whole output is allocated once and the payload copied once.
 */

/** §8.8.7: data offsets are relative to the first byte of the moof. */
const TFHD_DEFAULT_BASE_IS_MOOF = 0x020000;
/** §8.8.8: data-offset, sample-duration, sample-size, sample-flags, sample-composition-time-offset present. */
const TRUN_FLAGS = 0x000001 | 0x000100 | 0x000200 | 0x000400 | 0x000800;

/**
 * Sample flags, §8.8.3.1. A sync sample depends on no other (sample_depends_on = 2); any other sample
 * depends on others (1) and is marked sample_is_non_sync_sample.
 */
export const SAMPLE_FLAGS_SYNC = 0x02000000;
export const SAMPLE_FLAGS_NON_SYNC = 0x01010000;

const MOOF_FIXED = 8 + 16 + 8 + 16 + 20 + 20; // moof, mfhd, traf, tfhd, tfdt v1, trun v1 up to its samples
const TRUN_SAMPLE = 16;
const MDAT_HEADER = 8;

const fourcc = (s: string): number =>
  ((s.charCodeAt(0) << 24) | (s.charCodeAt(1) << 16) | (s.charCodeAt(2) << 8) | s.charCodeAt(3)) >>> 0;
const MOOF = fourcc('moof');
const MFHD = fourcc('mfhd');
const TRAF = fourcc('traf');
const TFHD = fourcc('tfhd');
const TFDT = fourcc('tfdt');
const TRUN = fourcc('trun');
const MDAT = fourcc('mdat');

/** Writes movie fragments for the tracks of one stream, numbering them from 1 (mfhd, §8.8.5). */
export class FragmentWriter {
  #sequence = 1;

  /** Sequence number the next fragment will carry. */
  get nextSequenceNumber(): number {
    return this.#sequence;
  }

  /** One moof+mdat holding one sample: `frame`, lasting `duration` in the track's timescale. */
  fragment(track: Track, frame: Frame, duration: number): Uint8Array {
    checkSample(track, frame, duration);
    const moofSize = MOOF_FIXED + TRUN_SAMPLE;
    const out = allocate(moofSize, frame.data.length);
    let p = writeMoofHead(out, moofSize, this.#next(), track.id, frame.dts, 1);
    p = writeSample(out, p, frame, duration);
    writeMdat(out, p, frame.data.length);
    out.set(frame.data, p + MDAT_HEADER);
    return out;
  }

  /**
   * One moof+mdat holding consecutive samples of one track (a CMAF chunk), e.g. for HLS parts or recording.
   * `durations[i]` is the duration of `frames[i]`; the fragment starts at `frames[0].dts`.
   */
  fragmentWithSamples(track: Track, frames: readonly Frame[], durations: readonly number[]): Uint8Array {
    if (frames.length === 0) throw new RangeError('a fragment needs at least one sample');
    if (durations.length !== frames.length) {
      throw new RangeError(`${frames.length} frames but ${durations.length} durations`);
    }
    let payload = 0;
    for (let i = 0; i < frames.length; i++) {
      checkSample(track, frames[i], durations[i]);
      payload += frames[i].data.length;
      // A trun has one base time: each sample decodes where the previous one ends (§8.8.8).
      if (i > 0 && frames[i].dts !== frames[i - 1].dts + durations[i - 1]) {
        throw new RangeError(
          `track ${track.id}: sample ${i} has dts ${frames[i].dts}, expected ${frames[i - 1].dts + durations[i - 1]}`,
        );
      }
    }
    const moofSize = MOOF_FIXED + TRUN_SAMPLE * frames.length;
    const out = allocate(moofSize, payload);
    let p = writeMoofHead(out, moofSize, this.#next(), track.id, frames[0].dts, frames.length);
    for (let i = 0; i < frames.length; i++) p = writeSample(out, p, frames[i], durations[i]);
    writeMdat(out, p, payload);
    p += MDAT_HEADER;
    for (const f of frames) {
      out.set(f.data, p);
      p += f.data.length;
    }
    return out;
  }

  #next(): number {
    const n = this.#sequence;
    this.#sequence = n === 0xffffffff ? 1 : n + 1;
    return n;
  }
}

/** Everything a sample needs to fit its boxes, checked before any byte or sequence number is spent. */
function checkSample(track: Track, frame: Frame, duration: number): void {
  if (frame.trackId !== track.id) {
    throw new RangeError(`frame of track ${frame.trackId} written as a sample of track ${track.id}`);
  }
  if (!Number.isSafeInteger(frame.dts) || frame.dts < 0) {
    throw new RangeError(`track ${track.id}: dts ${frame.dts} is not a non-negative integer`);
  }
  if (!Number.isInteger(duration) || duration < 0 || duration > 0xffffffff) {
    throw new RangeError(`track ${track.id}: sample duration ${duration} is not a 32-bit unsigned integer`);
  }
  const offset = frame.pts - frame.dts;
  if (!Number.isInteger(offset) || offset < -0x80000000 || offset > 0x7fffffff) {
    throw new RangeError(
      `track ${track.id}: composition offset ${offset} (pts - dts) is not a 32-bit integer`,
    );
  }
}

function allocate(moofSize: number, payload: number): Uint8Array {
  const mdatSize = MDAT_HEADER + payload;
  if (mdatSize > 0xffffffff) throw new RangeError(`mdat of ${mdatSize} bytes does not fit a 32-bit box size`);
  return new Uint8Array(moofSize + mdatSize);
}

/** moof, mfhd, traf, tfhd, tfdt and the trun up to its first sample; returns the offset of that sample. */
function writeMoofHead(
  out: Uint8Array,
  moofSize: number,
  sequence: number,
  trackId: number,
  baseDts: number,
  sampleCount: number,
): number {
  let p = header(out, 0, moofSize, MOOF);
  p = header(out, p, 16, MFHD);
  p = u32(out, p, 0);
  p = u32(out, p, sequence);
  p = header(out, p, moofSize - 24, TRAF);
  p = header(out, p, 16, TFHD);
  p = u32(out, p, TFHD_DEFAULT_BASE_IS_MOOF);
  p = u32(out, p, trackId);
  p = header(out, p, 20, TFDT);
  p = u32(out, p, 0x01000000); // version 1: 64-bit baseMediaDecodeTime
  p = u32(out, p, Math.floor(baseDts / 0x100000000));
  p = u32(out, p, baseDts >>> 0);
  p = header(out, p, 20 + TRUN_SAMPLE * sampleCount, TRUN);
  p = u32(out, p, 0x01000000 | TRUN_FLAGS); // version 1: signed composition offsets
  p = u32(out, p, sampleCount);
  return u32(out, p, moofSize + MDAT_HEADER); // data_offset: first payload byte, from the moof start
}

function writeSample(out: Uint8Array, p: number, frame: Frame, duration: number): number {
  p = u32(out, p, duration);
  p = u32(out, p, frame.data.length);
  p = u32(out, p, frame.keyframe ? SAMPLE_FLAGS_SYNC : SAMPLE_FLAGS_NON_SYNC);
  return u32(out, p, frame.pts - frame.dts);
}

function writeMdat(out: Uint8Array, p: number, payload: number): void {
  header(out, p, MDAT_HEADER + payload, MDAT);
}

function header(out: Uint8Array, p: number, size: number, type: number): number {
  u32(out, p, size);
  return u32(out, p + 4, type);
}

function u32(out: Uint8Array, p: number, v: number): number {
  out[p] = v >>> 24;
  out[p + 1] = v >>> 16;
  out[p + 2] = v >>> 8;
  out[p + 3] = v;
  return p + 4;
}
