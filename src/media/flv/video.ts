import { ByteReader } from '../bytes.ts';
import type { Track, VideoCodec } from '../Frame.ts';

/**
 * FLV video tag bodies (the payload of an RTMP video message): legacy AVC (FLV v10.1 §E.4.3.1, codec id 7) and
 * Enhanced RTMP (veovera E-RTMP v1/v2, "Enhanced Video"): the IsExHeader bit, a FourCC, packet types.
 */
export type FlvVideoPacket =
  /** The decoder configuration record: avcC, hvcC, av1C or vpcC (without its FullBox header). */
  | { readonly kind: 'config'; readonly codec: VideoCodec; readonly config: Uint8Array }
  | {
      readonly kind: 'frame';
      readonly codec: VideoCodec;
      readonly keyframe: boolean;
      /** pts - dts in milliseconds (signed). */
      readonly compositionTime: number;
      /** Length-prefixed NAL units (AVC/HEVC, lengths per the config record), OBUs (AV1), a frame (VP8/VP9). */
      readonly data: Uint8Array;
    }
  | { readonly kind: 'end'; readonly codec: VideoCodec }
  /** E-RTMP VideoPacketType.Metadata: AMF-encoded [name, value] pairs such as colorInfo. */
  | { readonly kind: 'metadata'; readonly data: Uint8Array }
  /** Video info/command frame (frame type 5): seek start/end, carries no picture. */
  | { readonly kind: 'command'; readonly command: number }
  /** Well-formed but nothing we carry (other codecs, multitrack): the reason says which. */
  | { readonly kind: 'unsupported'; readonly reason: string };

/** FLV legacy VideoCodecId values we take. 12 is the widespread (non-Adobe) HEVC extension. */
const CODEC_AVC = 7;
const CODEC_HEVC_LEGACY = 12;

const FRAME_KEY = 1;
const FRAME_GENERATED_KEY = 4;
const FRAME_COMMAND = 5;

export const VideoPacketType = {
  SequenceStart: 0,
  CodedFrames: 1,
  SequenceEnd: 2,
  /** Coded frames with an implicit composition time of zero. */
  CodedFramesX: 3,
  Metadata: 4,
  Mpeg2TsSequenceStart: 5,
  Multitrack: 6,
  ModEx: 7,
} as const;

const FOURCC_CODECS: Readonly<Record<string, VideoCodec>> = {
  avc1: 'h264',
  hvc1: 'h265',
  av01: 'av1',
  vp09: 'vp9',
  vp08: 'vp8',
};
const CODEC_FOURCCS: Readonly<Record<VideoCodec, string>> = {
  h264: 'avc1',
  h265: 'hvc1',
  av1: 'av01',
  vp9: 'vp09',
  vp8: 'vp08',
};

const LEGACY_CODEC_NAMES: Readonly<Record<number, string>> = {
  2: 'Sorenson H.263',
  3: 'Screen video',
  4: 'On2 VP6',
  5: 'On2 VP6 with alpha',
  6: 'Screen video v2',
};

export function parseVideoTag(body: Uint8Array): FlvVideoPacket {
  const r = new ByteReader(body, 'FLV video tag');
  const b0 = r.u8('frame type and codec id');
  if (b0 & 0x80) return parseExVideo(r, (b0 >> 4) & 0x07, b0 & 0x0f);
  const frameType = b0 >> 4;
  const codecId = b0 & 0x0f;
  if (codecId !== CODEC_AVC && codecId !== CODEC_HEVC_LEGACY) {
    const name = LEGACY_CODEC_NAMES[codecId] ?? 'unknown';
    return { kind: 'unsupported', reason: `FLV video codec id ${codecId} (${name}) is not supported` };
  }
  const codec: VideoCodec = codecId === CODEC_AVC ? 'h264' : 'h265';
  if (frameType === FRAME_COMMAND) return { kind: 'command', command: r.u8('video command') };
  const packetType = r.u8('AVCPacketType');
  const compositionTime = si24(r.u24('CompositionTime'));
  switch (packetType) {
    case 0:
      return { kind: 'config', codec, config: r.bytes(r.remaining, 'decoder configuration record') };
    case 1:
      return { kind: 'frame', codec, keyframe: isKey(frameType), compositionTime, data: rest(r) };
    case 2:
      return { kind: 'end', codec };
    default:
      return r.fail(`AVCPacketType ${packetType} is not 0, 1 or 2`, 1);
  }
}

function parseExVideo(r: ByteReader, frameType: number, packetType: number): FlvVideoPacket {
  // E-RTMP v2 ModEx: modifier blocks ahead of the real packet type. The one defined so far, a nanosecond
  // timestamp offset, is finer than anything downstream keeps, so the blocks are skipped.
  while (packetType === VideoPacketType.ModEx) {
    let size = r.u8('ModEx data size') + 1;
    if (size === 256) size = r.u16('ModEx data size (16-bit)') + 1;
    r.skip(size, 'ModEx data');
    packetType = r.u8('ModEx type and packet type') & 0x0f;
  }
  if (packetType === VideoPacketType.Multitrack) {
    return { kind: 'unsupported', reason: 'E-RTMP multitrack video is not supported' };
  }
  if (packetType !== VideoPacketType.Metadata && frameType === FRAME_COMMAND) {
    return { kind: 'command', command: r.u8('video command') };
  }
  const fourCc = readFourCc(r, 'video FourCC');
  const codec = FOURCC_CODECS[fourCc];
  if (packetType === VideoPacketType.Metadata) return { kind: 'metadata', data: rest(r) };
  if (codec === undefined) {
    return { kind: 'unsupported', reason: `E-RTMP video FourCC "${printable(fourCc)}" is not supported` };
  }
  switch (packetType) {
    case VideoPacketType.SequenceStart: {
      const record = r.bytes(r.remaining, 'decoder configuration record');
      return {
        kind: 'config',
        codec,
        config: codec === 'vp9' || codec === 'vp8' ? stripVpcCHeader(record) : record,
      };
    }
    case VideoPacketType.CodedFrames: {
      // Only the codecs with B-frames carry a composition time (E-RTMP "ExVideoTagBody").
      const compositionTime = codec === 'h264' || codec === 'h265' ? si24(r.u24('CompositionTime')) : 0;
      return { kind: 'frame', codec, keyframe: isKey(frameType), compositionTime, data: rest(r) };
    }
    case VideoPacketType.CodedFramesX:
      return { kind: 'frame', codec, keyframe: isKey(frameType), compositionTime: 0, data: rest(r) };
    case VideoPacketType.SequenceEnd:
      return { kind: 'end', codec };
    case VideoPacketType.Mpeg2TsSequenceStart:
      return {
        kind: 'unsupported',
        reason: 'E-RTMP MPEG2TSSequenceStart (AV1 video descriptor) is not supported',
      };
    default:
      return r.fail(`E-RTMP VideoPacketType ${packetType} is reserved`, 0);
  }
}

function isKey(frameType: number): boolean {
  return frameType === FRAME_KEY || frameType === FRAME_GENERATED_KEY;
}

function si24(v: number): number {
  return (v << 8) >> 8;
}

function rest(r: ByteReader): Uint8Array {
  return r.bytes(r.remaining, 'coded data');
}

export function readFourCc(r: ByteReader, field: string): string {
  const b = r.bytes(4, field);
  return String.fromCharCode(b[0], b[1], b[2], b[3]);
}

function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?');
}

/**
 * The VPCodecConfigurationRecord proper. ffmpeg writes E-RTMP vp09/vp08 sequence starts with the vpcC box's
 * FullBox header (version 1, flags 0) in front; Track.config keeps the record alone. The record's own length
 * (8 bytes + codecInitializationDataSize) tells the two apart even when the profile byte happens to be 1.
 */
export function stripVpcCHeader(record: Uint8Array): Uint8Array {
  if (
    record.length >= 12 &&
    record[0] === 1 &&
    record[1] === 0 &&
    record[2] === 0 &&
    record[3] === 0 &&
    12 + ((record[10] << 8) | record[11]) === record.length
  ) {
    return record.subarray(4);
  }
  return record;
}

/** The body of a video sequence start tag for `track` (its config record, in legacy or E-RTMP framing). */
export function videoSequenceStartTag(track: Track): Uint8Array {
  if (track.codec === 'h264') {
    const out = new Uint8Array(5 + track.config.length);
    out[0] = (FRAME_KEY << 4) | CODEC_AVC;
    out.set(track.config, 5);
    return out;
  }
  const fourCc = CODEC_FOURCCS[track.codec as VideoCodec];
  if (fourCc === undefined) throw new RangeError(`no FLV video framing for codec ${track.codec}`);
  const vp = track.codec === 'vp9' || track.codec === 'vp8';
  const out = new Uint8Array(5 + (vp ? 4 : 0) + track.config.length);
  out[0] = 0x80 | (FRAME_KEY << 4) | VideoPacketType.SequenceStart;
  writeFourCc(out, 1, fourCc);
  if (vp) out[5] = 1; // FullBox version 1, flags 0: what ffmpeg's E-RTMP reader and writer use
  out.set(track.config, vp ? 9 : 5);
  return out;
}

/**
 * The bytes of a video tag that precede a frame's data (which the caller sends as is, without copying it into
 * the tag): frame type, codec framing and, for H.264/H.265, the composition time in milliseconds.
 */
export function videoFrameTagHeader(track: Track, keyframe: boolean, compositionTimeMs: number): Uint8Array {
  const frameType = keyframe ? FRAME_KEY : 2;
  if (track.codec === 'h264') {
    const out = new Uint8Array(5);
    out[0] = (frameType << 4) | CODEC_AVC;
    out[1] = 1;
    writeSi24(out, 2, compositionTimeMs);
    return out;
  }
  const fourCc = CODEC_FOURCCS[track.codec as VideoCodec];
  if (fourCc === undefined) throw new RangeError(`no FLV video framing for codec ${track.codec}`);
  const withCts = track.codec === 'h265' && compositionTimeMs !== 0;
  const out = new Uint8Array(withCts ? 8 : 5);
  const packetType =
    track.codec === 'h265' && !withCts ? VideoPacketType.CodedFramesX : VideoPacketType.CodedFrames;
  out[0] = 0x80 | (frameType << 4) | packetType;
  writeFourCc(out, 1, fourCc);
  if (withCts) writeSi24(out, 5, compositionTimeMs);
  return out;
}

function writeSi24(out: Uint8Array, p: number, v: number): void {
  const clamped = Math.max(-0x800000, Math.min(0x7fffff, Math.round(v)));
  out[p] = (clamped >> 16) & 0xff;
  out[p + 1] = (clamped >> 8) & 0xff;
  out[p + 2] = clamped & 0xff;
}

export function writeFourCc(out: Uint8Array, p: number, fourCc: string): void {
  for (let i = 0; i < 4; i++) out[p + i] = fourCc.charCodeAt(i);
}
