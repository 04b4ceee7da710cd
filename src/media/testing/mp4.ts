/**
 * Test-only: turns a fragmented MP4 written by ffmpeg into our Track and Frame values (through our own reader
 * and codec parsers), and muxes Tracks and Frames back with our writer, one fragment per frame.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAudioSpecificConfig } from '../aac/asc.ts';
import { av1TrackInfo } from '../av1/av1C.ts';
import type { Codec, Frame, MediaKind, Track } from '../Frame.ts';
import { FragmentWriter } from '../fmp4/fragment.ts';
import { writeInitSegment } from '../fmp4/init.ts';
import {
  findBox,
  findBoxes,
  parseEsds,
  parseMdhd,
  parseStsd,
  parseTkhd,
  readBoxes,
  readFragmentSamples,
} from '../fmp4/reader.ts';
import { h264TrackInfo } from '../h264/avcC.ts';
import { hevcTrackInfo } from '../h265/hvcC.ts';
import { opusHeadFromDops, opusTrackInfo } from '../opus/opusHead.ts';
import { vp9TrackInfo } from '../vp9/vpcC.ts';
import { concatBytes, type FfprobeResult, ffmpeg, ffprobe, withTempDir } from './ffmpeg.ts';

const CODECS: Record<string, { codec: Codec; kind: MediaKind; configBox: string }> = {
  avc1: { codec: 'h264', kind: 'video', configBox: 'avcC' },
  hvc1: { codec: 'h265', kind: 'video', configBox: 'hvcC' },
  hev1: { codec: 'h265', kind: 'video', configBox: 'hvcC' },
  av01: { codec: 'av1', kind: 'video', configBox: 'av1C' },
  vp09: { codec: 'vp9', kind: 'video', configBox: 'vpcC' },
  mp4a: { codec: 'aac', kind: 'audio', configBox: 'esds' },
  Opus: { codec: 'opus', kind: 'audio', configBox: 'dOps' },
};

export interface Demuxed {
  tracks: Track[];
  frames: Frame[];
}

/** Tracks from the moov and frames from the moofs of a fragmented MP4, frames in file order. */
export function demuxFragmentedMp4(buf: Uint8Array): Demuxed {
  const boxes = readBoxes(buf);
  const tracks = findBoxes(boxes, 'moov/trak').map((trak): Track => {
    const children = trak.children ?? [];
    const id = parseTkhd(findBox(children, 'tkhd')!).trackId;
    const timescale = parseMdhd(findBox(children, 'mdia/mdhd')!).timescale;
    const entry = parseStsd(findBox(children, 'mdia/minf/stbl/stsd')!)[0];
    const known = CODECS[entry.type];
    if (!known) throw new Error(`test demuxer: no mapping for sample entry ${entry.type}`);
    const box = entry.children.find((b) => b.type === known.configBox);
    if (!box) throw new Error(`test demuxer: ${entry.type} without ${known.configBox}`);
    const base = { id, kind: known.kind, codec: known.codec, timescale };
    switch (known.codec) {
      case 'h264': {
        const config = box.payload().slice();
        const info = h264TrackInfo(config);
        return { ...base, config, codecString: info.codecString, width: info.width, height: info.height };
      }
      case 'h265': {
        const config = box.payload().slice();
        return { ...base, config, ...hevcTrackInfo(config) };
      }
      case 'av1': {
        const config = box.payload().slice();
        return { ...base, config, ...av1TrackInfo(config) };
      }
      case 'vp9': {
        const config = box.payload().slice(4); // after the FullBox version and flags
        return { ...base, config, ...vp9TrackInfo(config), width: entry.width, height: entry.height };
      }
      case 'aac': {
        const config = parseEsds(box).decoderSpecificInfo.slice();
        const asc = parseAudioSpecificConfig(config);
        return {
          ...base,
          config,
          codecString: asc.codecString,
          sampleRate: asc.sampleRate,
          channels: asc.channels,
        };
      }
      case 'opus': {
        const config = opusHeadFromDops(box.payload());
        return { ...base, config, ...opusTrackInfo(config) };
      }
      default:
        throw new Error(`test demuxer: codec ${known.codec}`);
    }
  });
  const frames = readFragmentSamples(buf, boxes).map(
    (s): Frame => ({
      trackId: s.trackId,
      dts: s.dts,
      pts: s.pts,
      duration: s.duration,
      keyframe: s.keyframe,
      data: s.data,
      arrival: 0,
    }),
  );
  return { tracks, frames };
}

/** Our init segment, then one fragment per frame in the order given, each lasting `frame.duration`. */
export function muxPerFrame(tracks: readonly Track[], frames: readonly Frame[]): Uint8Array {
  const writer = new FragmentWriter();
  const byId = new Map(tracks.map((t) => [t.id, t]));
  const parts = [writeInitSegment(tracks)];
  for (const f of frames) parts.push(writer.fragment(byId.get(f.trackId)!, f, f.duration));
  return concatBytes(parts);
}

/** Frames of several tracks interleaved by decode time in seconds, as a live source delivers them. */
export function interleave(tracks: readonly Track[], frames: readonly Frame[]): Frame[] {
  const scale = new Map(tracks.map((t) => [t.id, t.timescale]));
  return [...frames].sort((a, b) => a.dts / scale.get(a.trackId)! - b.dts / scale.get(b.trackId)!);
}

/**
 * Encodes with ffmpeg (`args` are the input and codec options) into Matroska, then copies into a fragmented
 * MP4: going through Matroska makes the codec configuration (av1C, dOps …) known before the moov is written.
 */
export function ffmpegFragmentedMp4(args: readonly string[]): Uint8Array {
  return withTempDir((dir) => {
    const mkv = join(dir, 'src.mkv');
    const mp4 = join(dir, 'src.mp4');
    ffmpeg([...args, '-f', 'matroska', mkv]);
    ffmpeg([
      '-i',
      mkv,
      '-c',
      'copy',
      '-movflags',
      'frag_keyframe+empty_moov+default_base_moof',
      '-f',
      'mp4',
      mp4,
    ]);
    return new Uint8Array(readFileSync(mp4));
  });
}

/** ffprobe on bytes, through a temporary file. */
export function probeBytes(bytes: Uint8Array, args: readonly string[]): FfprobeResult {
  return withTempDir((dir) => {
    const path = join(dir, 'probe.mp4');
    writeFileSync(path, bytes);
    return ffprobe([...args, path]);
  });
}
