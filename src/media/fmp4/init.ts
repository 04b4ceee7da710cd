import { parseAudioSpecificConfig } from '../aac/asc.ts';
import type { Track } from '../Frame.ts';
import { opusHeadToDops, parseOpusHead } from '../opus/opusHead.ts';
import { BoxWriter } from './BoxWriter.ts';

/*
 * Initialization segment (ISO/IEC 14496-12 §8.16, the CMAF header of ISO/IEC 23000-19): ftyp + moov describing
 * the tracks, with empty sample tables and an mvex announcing that samples arrive in movie fragments.
 *
 * The movie declares no duration: mvhd, tkhd and mdhd durations are 0 and there is no mehd. With a duration
 * present, browsers' MSE treats the presentation as bounded and buffers more before playing; without one the
 * MediaSource duration stays +Infinity and a live stream renders with about one frame of buffering.
 */

const UNITY_MATRIX = [0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000];
const MOVIE_TIMESCALE = 1000;

/** The compatible brands say: ISO BMFF with fragments (iso6), CMAF (cmfc), DASH-friendly (dash). */
const MAJOR_BRAND = 'iso6';
const COMPATIBLE_BRANDS = ['iso6', 'cmfc', 'mp41', 'dash'];

export function writeInitSegment(tracks: readonly Track[]): Uint8Array {
  if (tracks.length === 0) throw new RangeError('an init segment needs at least one track');
  const ids = new Set<number>();
  for (const t of tracks) {
    if (!Number.isInteger(t.id) || t.id < 1 || t.id > 0xffffffff)
      throw new RangeError(`track id ${t.id} is invalid`);
    if (ids.has(t.id)) throw new RangeError(`track id ${t.id} appears twice`);
    ids.add(t.id);
    if (!Number.isInteger(t.timescale) || t.timescale < 1 || t.timescale > 0xffffffff) {
      throw new RangeError(`track ${t.id}: timescale ${t.timescale} is invalid`);
    }
  }
  const w = new BoxWriter();
  w.box('ftyp', () => {
    w.ascii(MAJOR_BRAND).u32(0);
    for (const brand of COMPATIBLE_BRANDS) w.ascii(brand);
  });
  w.box('moov', () => {
    writeMvhd(w, Math.max(...ids) + 1);
    for (const t of tracks) writeTrak(w, t);
    w.box('mvex', () => {
      for (const t of tracks) {
        // §8.8.3: defaults are unused, every trun carries duration, size and flags per sample.
        w.fullBox('trex', 0, 0, () => w.u32(t.id).u32(1).u32(0).u32(0).u32(0));
      }
    });
  });
  return w.finish();
}

function writeMatrix(w: BoxWriter): void {
  for (const v of UNITY_MATRIX) w.u32(v);
}

/** §8.2.2 */
function writeMvhd(w: BoxWriter, nextTrackId: number): void {
  w.fullBox('mvhd', 0, 0, () => {
    w.u32(0).u32(0).u32(MOVIE_TIMESCALE).u32(0); // creation, modification, timescale, duration
    w.u32(0x00010000).u16(0x0100).zeros(10); // rate 1.0, volume 1.0, reserved
    writeMatrix(w);
    w.zeros(24); // pre_defined
    w.u32(nextTrackId);
  });
}

function writeTrak(w: BoxWriter, t: Track): void {
  const video = t.kind === 'video';
  w.box('trak', () => {
    // §8.3.2: flags track_enabled | track_in_movie.
    w.fullBox('tkhd', 0, 0x000003, () => {
      w.u32(0).u32(0).u32(t.id).u32(0).u32(0); // creation, modification, track_ID, reserved, duration
      w.zeros(8).u16(0).u16(0); // reserved, layer, alternate_group
      w.u16(video ? 0 : 0x0100).u16(0); // volume, reserved
      writeMatrix(w);
      w.u32(video ? fixed16(t.width ?? 0) : 0).u32(video ? fixed16(t.height ?? 0) : 0);
    });
    w.box('mdia', () => {
      // §8.4.2: language "und" packed as three 5-bit letters minus 0x60.
      w.fullBox('mdhd', 0, 0, () => w.u32(0).u32(0).u32(t.timescale).u32(0).u16(0x55c4).u16(0));
      w.fullBox('hdlr', 0, 0, () => {
        w.u32(0)
          .ascii(video ? 'vide' : 'soun')
          .zeros(12);
        w.ascii(video ? 'VideoHandler' : 'SoundHandler').u8(0);
      });
      w.box('minf', () => {
        if (video) w.fullBox('vmhd', 0, 1, () => w.zeros(8));
        else w.fullBox('smhd', 0, 0, () => w.zeros(4));
        w.box('dinf', () => {
          // §8.7.2: flag 1 means the media data is in this same file.
          w.fullBox('dref', 0, 0, () => {
            w.u32(1);
            w.fullBox('url ', 0, 1, () => {});
          });
        });
        w.box('stbl', () => {
          w.fullBox('stsd', 0, 0, () => {
            w.u32(1);
            writeSampleEntry(w, t);
          });
          w.fullBox('stts', 0, 0, () => w.u32(0));
          w.fullBox('stsc', 0, 0, () => w.u32(0));
          w.fullBox('stsz', 0, 0, () => w.u32(0).u32(0));
          w.fullBox('stco', 0, 0, () => w.u32(0));
        });
      });
    });
  });
}

function fixed16(v: number): number {
  return (v & 0xffff) * 0x10000;
}

/**
 * Visual sample entry name and decoder configuration box per codec (ISO/IEC 14496-15 §5.4.2 and §8.4.1, the AV1
 * and VP codec ISO-BMFF bindings). 'hvc1' rather than 'hev1': parameter sets live in the hvcC. vpcC is a
 * FullBox of version 1 (VP codec ISO-BMFF binding §2.3); the others are plain boxes.
 */
const VISUAL_ENTRIES: Readonly<Record<string, { entry: string; box: string; fullBox: boolean }>> = {
  h264: { entry: 'avc1', box: 'avcC', fullBox: false },
  h265: { entry: 'hvc1', box: 'hvcC', fullBox: false },
  av1: { entry: 'av01', box: 'av1C', fullBox: false },
  vp9: { entry: 'vp09', box: 'vpcC', fullBox: true },
  vp8: { entry: 'vp08', box: 'vpcC', fullBox: true },
};

function writeSampleEntry(w: BoxWriter, t: Track): void {
  const visual = VISUAL_ENTRIES[t.codec];
  if (visual) {
    writeVisualEntry(w, t, visual.entry, () => {
      if (visual.fullBox) w.fullBox(visual.box, 1, 0, () => w.bytes(t.config));
      else w.box(visual.box, () => w.bytes(t.config));
    });
  } else if (t.codec === 'aac') {
    const asc = parseAudioSpecificConfig(t.config);
    writeAudioEntry(w, 'mp4a', t.channels ?? asc.channels, t.sampleRate ?? asc.sampleRate, () =>
      writeEsds(w, t.config),
    );
  } else if (t.codec === 'opus') {
    const head = parseOpusHead(t.config);
    // Opus in ISOBMFF §4.3.1: channelcount is the output channel count, samplerate 48000.
    writeAudioEntry(w, 'Opus', head.channels, 48000, () => {
      w.box('dOps', () => w.bytes(opusHeadToDops(t.config)));
    });
  } else {
    throw new RangeError(`track ${t.id}: cannot write an MP4 sample entry for codec "${t.codec}"`);
  }
}

/** VisualSampleEntry, §12.1.3. */
function writeVisualEntry(w: BoxWriter, t: Track, type: string, children: () => void): void {
  w.box(type, () => {
    w.zeros(6).u16(1); // SampleEntry reserved, data_reference_index
    w.zeros(16); // pre_defined, reserved, pre_defined[3]
    w.u16(t.width ?? 0).u16(t.height ?? 0);
    w.u32(0x00480000).u32(0x00480000).u32(0); // 72 dpi, 72 dpi, reserved
    w.u16(1).zeros(32); // frame_count, compressorname
    w.u16(0x0018).u16(0xffff); // depth, pre_defined -1
    children();
  });
}

/** AudioSampleEntry, §12.2.3. */
function writeAudioEntry(
  w: BoxWriter,
  type: string,
  channels: number,
  sampleRate: number,
  children: () => void,
): void {
  w.box(type, () => {
    w.zeros(6).u16(1); // SampleEntry reserved, data_reference_index
    w.zeros(8).u16(channels).u16(16).u16(0).u16(0); // reserved, channelcount, samplesize, pre_defined, reserved
    // 16.16 fixed point; rates above 65535 do not fit and are left to the decoder configuration.
    w.u32(sampleRate <= 0xffff ? sampleRate * 0x10000 : 0);
    children();
  });
}

/** ES_Descriptor in an esds box, ISO/IEC 14496-14 §5.6 and 14496-1 §7.2.6.5–7.2.6.7. */
function writeEsds(w: BoxWriter, asc: Uint8Array): void {
  const dsi = descriptorSize(asc.length);
  const dcd = descriptorSize(13 + dsi);
  const sl = descriptorSize(1);
  w.fullBox('esds', 0, 0, () => {
    writeDescriptorHeader(w, 0x03, 3 + dcd + sl);
    w.u16(0).u8(0); // ES_ID 0 as 14496-14 stores it, no dependence, URL or OCR
    writeDescriptorHeader(w, 0x04, 13 + dsi);
    // objectTypeIndication 0x40 = Audio ISO/IEC 14496-3; streamType 5 (audio) << 2 | upStream 0 | reserved 1.
    w.u8(0x40).u8(0x15).u24(0).u32(0).u32(0); // bufferSizeDB, maxBitrate, avgBitrate unknown
    writeDescriptorHeader(w, 0x05, asc.length);
    w.bytes(asc);
    writeDescriptorHeader(w, 0x06, 1);
    w.u8(0x02); // SLConfigDescriptor predefined = 2, reserved for MP4 files
  });
}

/** Bytes of a descriptor with `bodySize` bytes of body: tag, expandable size (14496-1 §8.3.3), body. */
function descriptorSize(bodySize: number): number {
  let n = 1;
  while (bodySize >= 2 ** (7 * n)) n++;
  return 1 + n + bodySize;
}

function writeDescriptorHeader(w: BoxWriter, tag: number, bodySize: number): void {
  w.u8(tag);
  const bytes = descriptorSize(bodySize) - 1 - bodySize;
  for (let i = bytes - 1; i >= 0; i--) {
    const seven = Math.floor(bodySize / 2 ** (7 * i)) & 0x7f;
    w.u8(i > 0 ? seven | 0x80 : seven);
  }
}
