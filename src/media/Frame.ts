/**
 * The unit that flows through Subsecond: one access unit of one track, and the track it belongs to.
 * Protocols produce and consume these; they never talk to each other directly.
 */

export type MediaKind = 'video' | 'audio';
export type VideoCodec = 'h264' | 'h265' | 'av1' | 'vp9' | 'vp8';
export type AudioCodec = 'aac' | 'opus';
export type Codec = VideoCodec | AudioCodec;

export interface Track {
  /** 1-based and unique within a stream; also the fMP4 track_ID. */
  readonly id: number;
  readonly kind: MediaKind;
  readonly codec: Codec;
  /** Units per second of every dts/pts/duration of this track's frames (video 90000, audio its sample rate). */
  readonly timescale: number;
  /**
   * Decoder configuration as MP4 carries it: the AVCDecoderConfigurationRecord (avcC) for H.264,
   * HEVCDecoderConfigurationRecord (hvcC), AV1CodecConfigurationRecord (av1C), VPCodecConfigurationRecord
   * (vpcC, without the FullBox header), AudioSpecificConfig for AAC, OpusHead for Opus.
   */
  readonly config: Uint8Array;
  /** RFC 6381 codecs parameter, e.g. `avc1.64001f` or `mp4a.40.2`. */
  readonly codecString: string;
  readonly width?: number;
  readonly height?: number;
  readonly sampleRate?: number;
  readonly channels?: number;
}

export interface Frame {
  readonly trackId: number;
  /** Decode time in the track's timescale. */
  readonly dts: number;
  /** Presentation time in the track's timescale (pts - dts is the composition offset). */
  readonly pts: number;
  /** Duration in the track's timescale when the source knows it (AAC: 1024 samples), else 0. */
  readonly duration: number;
  /** Random access point: an IDR/keyframe for video; every audio frame is one. */
  readonly keyframe: boolean;
  /**
   * The payload as MP4 stores it: length-prefixed (4-byte) NAL units for H.264/H.265, an OBU sequence for
   * AV1, a raw frame for VP8/VP9, a raw AAC access unit (no ADTS) or an Opus packet. Shared, never copied.
   */
  readonly data: Uint8Array;
  /** performance.now() when the frame reached the server, for latency accounting. */
  readonly arrival: number;
}

/** A track as clients see it (API, dashboard, the MSE init message): everything but the decoder config. */
export function describeTrack({ id, kind, codec, codecString, width, height, sampleRate, channels }: Track) {
  return { id, kind, codec, codecString, width, height, sampleRate, channels };
}
