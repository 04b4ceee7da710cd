import { av1TrackInfo } from '../../media/av1/av1C.ts';
import type { AudioCodec, VideoCodec } from '../../media/Frame.ts';
import { h264TrackInfo, parseAvcDecoderConfig } from '../../media/h264/avcC.ts';
import { hevcTrackInfo, parseHevcDecoderConfig } from '../../media/h265/hvcC.ts';
import { vp9TrackInfo } from '../../media/vp9/vpcC.ts';

/** What a video Track needs from a decoder configuration record, with the record made to match Frame.data. */
export interface VideoConfigDescription {
  /** The record as the Track carries it: for AVC/HEVC, rewritten to declare 4-byte NAL lengths. */
  readonly config: Uint8Array;
  readonly codecString: string;
  readonly width?: number;
  readonly height?: number;
  /** NAL length size of the publisher's frames (AVC/HEVC), 0 for codecs without length prefixes. */
  readonly lengthSize: number;
}

/**
 * Frame.data always has 4-byte NAL lengths, so a record declaring 1 or 2 gets lengthSizeMinusOne = 3 while
 * the frames are relengthed (ISO/IEC 14496-15 §5.3.3.1 for avcC, §8.3.3.1 for hvcC). Returns null for codecs we
 * cannot describe yet.
 */
export function describeVideoConfig(codec: VideoCodec, record: Uint8Array): VideoConfigDescription | null {
  switch (codec) {
    case 'h264': {
      const { lengthSize } = parseAvcDecoderConfig(record);
      const info = h264TrackInfo(record);
      const config = Uint8Array.prototype.slice.call(record);
      config[4] = 0xfc | 0x03; // reserved '111111', lengthSizeMinusOne
      return { config, ...info, lengthSize };
    }
    case 'h265': {
      const { lengthSize } = parseHevcDecoderConfig(record);
      const info = hevcTrackInfo(record);
      const config = Uint8Array.prototype.slice.call(record);
      config[21] |= 0x03; // constantFrameRate, numTemporalLayers, temporalIdNested, lengthSizeMinusOne
      return { config, ...info, lengthSize };
    }
    case 'av1':
      return { config: Uint8Array.prototype.slice.call(record), ...av1TrackInfo(record), lengthSize: 0 };
    case 'vp9':
      return { config: Uint8Array.prototype.slice.call(record), ...vp9TrackInfo(record), lengthSize: 0 };
    default:
      return null;
  }
}

/** E-RTMP FourCCs by codec; onMetaData gives them as numbers (videocodecid/audiocodecid). */
const VIDEO_FOURCCS: Readonly<Record<VideoCodec, string>> = {
  h264: 'avc1',
  h265: 'hvc1',
  av1: 'av01',
  vp9: 'vp09',
  vp8: 'vp08',
};
const AUDIO_FOURCCS: Readonly<Record<AudioCodec, string>> = { aac: 'mp4a', opus: 'Opus' };
/** Legacy FLV codec ids: 7 AVC, 12 HEVC (a widespread non-Adobe extension); 10 AAC. */
const FLV_VIDEO_CODEC_IDS = [7, 12];
const FLV_AUDIO_CODEC_IDS = [10];

export function fourCcNumber(s: string): number {
  return ((s.charCodeAt(0) << 24) | (s.charCodeAt(1) << 16) | (s.charCodeAt(2) << 8) | s.charCodeAt(3)) >>> 0;
}

/** The onMetaData videocodecid for players: 7 for H.264 (what every player knows), the FourCC otherwise. */
export function metadataVideoCodecId(codec: VideoCodec): number {
  return codec === 'h264' ? 7 : fourCcNumber(VIDEO_FOURCCS[codec]);
}

export function metadataAudioCodecId(codec: AudioCodec): number {
  return codec === 'aac' ? 10 : fourCcNumber(AUDIO_FOURCCS[codec]);
}

/** Whether an onMetaData videocodecid (legacy id, FourCC string or FourCC number) names a codec we carry. */
export function isSupportedVideoCodecId(id: number | string): boolean {
  const fourCcs = Object.values(VIDEO_FOURCCS);
  if (typeof id === 'string') return fourCcs.includes(id);
  return FLV_VIDEO_CODEC_IDS.includes(id) || fourCcs.some((f) => fourCcNumber(f) === id);
}

export function isSupportedAudioCodecId(id: number | string): boolean {
  const fourCcs = Object.values(AUDIO_FOURCCS);
  if (typeof id === 'string') return fourCcs.includes(id);
  return FLV_AUDIO_CODEC_IDS.includes(id) || fourCcs.some((f) => fourCcNumber(f) === id);
}
