import { ByteReader } from '../bytes.ts';
import type { AudioCodec, Track } from '../Frame.ts';
import { readFourCc, writeFourCc } from './video.ts';

/**
 * FLV audio tag bodies (the payload of an RTMP audio message): legacy AAC (FLV v10.1 §E.4.2.1, SoundFormat 10)
 * and Enhanced RTMP v2 audio (SoundFormat 9 "ExHeader" with a FourCC): Opus and AAC ("mp4a").
 */
export type FlvAudioPacket =
  /** AudioSpecificConfig for AAC, the OpusHead identification header for Opus. */
  | { readonly kind: 'config'; readonly codec: AudioCodec; readonly config: Uint8Array }
  /** One access unit: a raw AAC frame (no ADTS) or an Opus packet. */
  | { readonly kind: 'frame'; readonly codec: AudioCodec; readonly data: Uint8Array }
  | { readonly kind: 'end'; readonly codec: AudioCodec }
  /** Well-formed but carrying nothing a track needs (OpusTags, a channel layout): skip it. */
  | { readonly kind: 'ignored'; readonly reason: string }
  /** A codec or feature we do not carry (MP3, Speex, multitrack...): the reason says which. */
  | { readonly kind: 'unsupported'; readonly reason: string };

const SOUND_FORMAT_EX_HEADER = 9;
const SOUND_FORMAT_AAC = 10;

export const AudioPacketType = {
  SequenceStart: 0,
  CodedFrames: 1,
  SequenceEnd: 2,
  MultichannelConfig: 4,
  Multitrack: 5,
  ModEx: 7,
} as const;

const SOUND_FORMAT_NAMES: Readonly<Record<number, string>> = {
  0: 'linear PCM, platform endian',
  1: 'ADPCM',
  2: 'MP3',
  3: 'linear PCM, little endian',
  4: 'Nellymoser 16 kHz mono',
  5: 'Nellymoser 8 kHz mono',
  6: 'Nellymoser',
  7: 'G.711 A-law',
  8: 'G.711 mu-law',
  11: 'Speex',
  14: 'MP3 8 kHz',
  15: 'device-specific sound',
};

const FOURCC_CODECS: Readonly<Record<string, AudioCodec>> = { Opus: 'opus', mp4a: 'aac' };

export function parseAudioTag(body: Uint8Array): FlvAudioPacket {
  const r = new ByteReader(body, 'FLV audio tag');
  const b0 = r.u8('sound format');
  const soundFormat = b0 >> 4;
  if (soundFormat === SOUND_FORMAT_EX_HEADER) return parseExAudio(r, b0 & 0x0f);
  if (soundFormat !== SOUND_FORMAT_AAC) {
    const name = SOUND_FORMAT_NAMES[soundFormat] ?? 'reserved';
    return { kind: 'unsupported', reason: `FLV sound format ${soundFormat} (${name}) is not supported` };
  }
  const packetType = r.u8('AACPacketType');
  if (packetType === 0)
    return { kind: 'config', codec: 'aac', config: r.bytes(r.remaining, 'AudioSpecificConfig') };
  if (packetType === 1) return { kind: 'frame', codec: 'aac', data: r.bytes(r.remaining, 'raw AAC frame') };
  return r.fail(`AACPacketType ${packetType} is not 0 or 1`, 1);
}

function parseExAudio(r: ByteReader, packetType: number): FlvAudioPacket {
  // E-RTMP v2 ModEx: modifier blocks ahead of the real packet type, skipped (see the video parser).
  while (packetType === AudioPacketType.ModEx) {
    let size = r.u8('ModEx data size') + 1;
    if (size === 256) size = r.u16('ModEx data size (16-bit)') + 1;
    r.skip(size, 'ModEx data');
    packetType = r.u8('ModEx type and packet type') & 0x0f;
  }
  if (packetType === AudioPacketType.Multitrack) {
    return { kind: 'unsupported', reason: 'E-RTMP multitrack audio is not supported' };
  }
  const fourCc = readFourCc(r, 'audio FourCC');
  const codec = FOURCC_CODECS[fourCc];
  if (codec === undefined) {
    return {
      kind: 'unsupported',
      reason: `E-RTMP audio FourCC "${fourCc.replace(/[^\x20-\x7e]/g, '?')}" is not supported`,
    };
  }
  switch (packetType) {
    case AudioPacketType.SequenceStart: {
      const header = r.bytes(r.remaining, codec === 'opus' ? 'Opus header' : 'AudioSpecificConfig');
      // E-RTMP lets an Opus sequence start carry either the identification header or the comment header.
      if (codec === 'opus' && !startsWith(header, 'OpusHead')) {
        return { kind: 'ignored', reason: 'Opus sequence start without an OpusHead (a comment header)' };
      }
      return { kind: 'config', codec, config: header };
    }
    case AudioPacketType.CodedFrames:
      return { kind: 'frame', codec, data: r.bytes(r.remaining, 'coded audio') };
    case AudioPacketType.SequenceEnd:
      return { kind: 'end', codec };
    case AudioPacketType.MultichannelConfig:
      return {
        kind: 'ignored',
        reason: 'E-RTMP MultichannelConfig (the codec config describes the channels)',
      };
    default:
      return r.fail(`E-RTMP AudioPacketType ${packetType} is reserved`, 0);
  }
}

function startsWith(data: Uint8Array, magic: string): boolean {
  if (data.length < magic.length) return false;
  for (let i = 0; i < magic.length; i++) if (data[i] !== magic.charCodeAt(i)) return false;
  return true;
}

/** AAC tags always say 44 kHz, 16-bit, stereo (FLV v10.1 §E.4.2.1); the AudioSpecificConfig is what counts. */
const AAC_HEADER_BYTE = (SOUND_FORMAT_AAC << 4) | (3 << 2) | (1 << 1) | 1;
const AAC_FRAME_HEADER = new Uint8Array([AAC_HEADER_BYTE, 1]);
const OPUS_FRAME_HEADER = exHeader(AudioPacketType.CodedFrames, 'Opus');

function exHeader(packetType: number, fourCc: string): Uint8Array {
  const out = new Uint8Array(5);
  out[0] = (SOUND_FORMAT_EX_HEADER << 4) | packetType;
  writeFourCc(out, 1, fourCc);
  return out;
}

/** The body of an audio sequence start tag for `track`: the AudioSpecificConfig or the OpusHead. */
export function audioSequenceStartTag(track: Track): Uint8Array {
  const prefix =
    track.codec === 'aac'
      ? new Uint8Array([AAC_HEADER_BYTE, 0])
      : track.codec === 'opus'
        ? exHeader(AudioPacketType.SequenceStart, 'Opus')
        : null;
  if (prefix === null) throw new RangeError(`no FLV audio framing for codec ${track.codec}`);
  const out = new Uint8Array(prefix.length + track.config.length);
  out.set(prefix, 0);
  out.set(track.config, prefix.length);
  return out;
}

/** The bytes of an audio tag that precede a frame's data; shared constants, never to be modified. */
export function audioFrameTagHeader(track: Track): Uint8Array {
  if (track.codec === 'aac') return AAC_FRAME_HEADER;
  if (track.codec === 'opus') return OPUS_FRAME_HEADER;
  throw new RangeError(`no FLV audio framing for codec ${track.codec}`);
}
