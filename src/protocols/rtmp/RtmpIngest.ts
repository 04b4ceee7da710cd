import type { Logger } from '../../core/log.ts';
import type { Publisher, Stream } from '../../core/Stream.ts';
import type { StreamRegistry } from '../../core/StreamRegistry.ts';
import { B_FRAMES_WARNING } from '../../core/warnings.ts';
import { parseAudioSpecificConfig } from '../../media/aac/asc.ts';
import type { AudioCodec, Frame, MediaKind, Track, VideoCodec } from '../../media/Frame.ts';
import { parseAudioTag } from '../../media/flv/audio.ts';
import { parseVideoTag } from '../../media/flv/video.ts';
import { avccRelength } from '../../media/nalu.ts';
import { opusTrackInfo } from '../../media/opus/opusHead.ts';
import type { Amf0Object, Amf0Value } from './amf0.ts';
import { describeVideoConfig, isSupportedAudioCodecId, isSupportedVideoCodecId } from './codecs.ts';

export const VIDEO_TRACK_ID = 1;
export const AUDIO_TRACK_ID = 2;

/** How long after the first media message a track the metadata did not announce may still turn up. */
const UNANNOUNCED_TRACK_WAIT_MS = 1000;
/** How long an announced track may keep the others waiting: metadata can lie. */
const ANNOUNCED_TRACK_WAIT_MS = 3000;
/** Frames held until the track set is known. Past either bound, the tracks known so far are published. */
const MAX_HELD_FRAMES = 512;
const MAX_HELD_BYTES = 16 * 1024 * 1024;
/** An AAC timeline further than this from the RTMP clock is re-anchored to it (seconds). */
const AUDIO_REANCHOR_S = 0.1;

interface VideoState {
  readonly track: Track;
  /** NAL unit length size the publisher's frames use (AVC/HEVC), 0 for codecs without length prefixes. */
  readonly lengthSize: number;
}

interface AudioState {
  readonly track: Track;
  /** Samples per AAC access unit (1024, 960, 2048 with SBR); 0 when frames carry no fixed duration. */
  readonly samplesPerFrame: number;
}

export interface RtmpIngestOptions {
  readonly registry: StreamRegistry;
  readonly path: string;
  readonly remoteAddress: string;
  readonly id: string;
  readonly log: Logger;
  /** Ends the connection: the server kicked the publisher (control API, shutdown). */
  readonly onKick: (reason: string) => void;
  /** An error outside the connection's own call stack (the track wait timer): the connection ends. */
  readonly onError: (err: unknown) => void;
}

/**
 * One RTMP publisher, from FLV tags to the core: builds the tracks from the sequence headers, holds the first
 * frames until every track the publisher will send is known, then pushes frames with timestamps in each
 * track's timescale.
 */
export class RtmpIngest implements Publisher {
  readonly protocol = 'rtmp';
  readonly remoteAddress: string;
  readonly id: string;
  readonly path: string;
  /** The publisher's onMetaData (from @setDataFrame), kept for RTMP players and the API. */
  metadata: Amf0Object | null = null;
  readonly stream: Stream;
  readonly #registry: StreamRegistry;
  readonly #log: Logger;
  readonly #onKick: (reason: string) => void;
  readonly #onError: (err: unknown) => void;
  #video: VideoState | null = null;
  #audio: AudioState | null = null;
  /** What the stream was last given by setTracks; null until the track set is first known. */
  #published: readonly Track[] | null = null;
  /** Per kind, from onMetaData: true announced, false announced absent or unsupported, undefined unknown. */
  #expect: { video?: boolean; audio?: boolean } = {};
  #held: Frame[] = [];
  #heldBytes = 0;
  #firstMediaAt = -1;
  /** Arrival time of the latest media message: the clock the track wait is measured on. */
  #now = 0;
  #timer: NodeJS.Timeout | null = null;
  #audioNextDts: number | null = null;
  #lastTimestamp = -1;
  #timestampEpoch = 0;
  readonly #reported = new Set<string>();
  #ended = false;

  /** Claims the path: throws StreamBusyError when it already has a publisher. */
  constructor(options: RtmpIngestOptions) {
    this.remoteAddress = options.remoteAddress;
    this.id = options.id;
    this.path = options.path;
    this.#registry = options.registry;
    this.#log = options.log;
    this.#onKick = options.onKick;
    this.#onError = options.onError;
    this.stream = options.registry.publish(options.path, this);
  }

  get ended(): boolean {
    return this.#ended;
  }

  close(reason: string): void {
    this.#onKick(reason);
  }

  /** Ends the publish: the stream is unpublished exactly once, whatever ends it. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#held = [];
    this.#registry.unpublish(this.stream, this);
  }

  onMetaData(metadata: Amf0Object): void {
    this.metadata = metadata;
    const video = expectTrack(metadata.hasVideo, metadata.videocodecid, isSupportedVideoCodecId);
    const audio = expectTrack(metadata.hasAudio, metadata.audiocodecid, isSupportedAudioCodecId);
    // ffmpeg and OBS write a codec id for each stream they send: metadata naming one kind rules out the other.
    const named = metadata.videocodecid !== undefined || metadata.audiocodecid !== undefined;
    this.#expect = {
      video: video ?? (named ? false : undefined),
      audio: audio ?? (named ? false : undefined),
    };
    this.#maybeStart();
  }

  onVideo(rtmpTimestamp: number, payload: Uint8Array, arrival: number): void {
    if (this.#ended) return;
    const packet = parseVideoTag(payload);
    this.#firstMedia(arrival);
    switch (packet.kind) {
      case 'config':
        this.#setVideoConfig(packet.codec, packet.config);
        return;
      case 'frame': {
        const video = this.#video;
        if (!video || video.track.codec !== packet.codec) {
          this.#reportOnce(
            `video-before-config-${packet.codec}`,
            `${packet.codec} frames before their sequence header are dropped`,
          );
          return;
        }
        if (packet.data.length === 0) return;
        const ms = this.#unwrap(rtmpTimestamp);
        if (
          packet.compositionTime !== 0 &&
          packet.codec === 'h264' &&
          !this.stream.warnings.has(B_FRAMES_WARNING)
        ) {
          this.stream.warnings.add(B_FRAMES_WARNING);
          this.#log.warn({ path: this.path, compositionTime: packet.compositionTime }, B_FRAMES_WARNING);
        }
        const data = video.lengthSize === 0 ? packet.data : avccRelength(packet.data, video.lengthSize);
        this.#deliver({
          trackId: VIDEO_TRACK_ID,
          dts: ms * 90,
          pts: (ms + packet.compositionTime) * 90,
          duration: 0,
          keyframe: packet.keyframe,
          data,
          arrival,
        });
        return;
      }
      case 'unsupported':
        this.#warnOnce(packet.reason, `${packet.reason}; the video is ignored`);
        return;
      default:
        // Sequence end, E-RTMP metadata (HDR colour info) and seek commands change nothing downstream.
        return;
    }
  }

  onAudio(rtmpTimestamp: number, payload: Uint8Array, arrival: number): void {
    if (this.#ended) return;
    const packet = parseAudioTag(payload);
    this.#firstMedia(arrival);
    switch (packet.kind) {
      case 'config':
        this.#setAudioConfig(packet.codec, packet.config);
        return;
      case 'frame': {
        const audio = this.#audio;
        if (!audio || audio.track.codec !== packet.codec) {
          this.#reportOnce(
            `audio-before-config-${packet.codec}`,
            `${packet.codec} frames before their sequence header are dropped`,
          );
          return;
        }
        if (packet.data.length === 0) return;
        const ms = this.#unwrap(rtmpTimestamp);
        const dts = this.#audioDts(audio, ms);
        this.#deliver({
          trackId: AUDIO_TRACK_ID,
          dts,
          pts: dts,
          duration: audio.samplesPerFrame,
          keyframe: true,
          data: packet.data,
          arrival,
        });
        return;
      }
      case 'unsupported':
        this.#warnOnce(
          packet.reason,
          `${packet.reason}; the audio is ignored (publish AAC, or Opus over Enhanced RTMP)`,
        );
        return;
      default:
        return;
    }
  }

  #setVideoConfig(codec: VideoCodec, config: Uint8Array): void {
    const described = describeVideoConfig(codec, config);
    if (described === null) {
      this.#warnOnce(`unsupported-${codec}`, `${codec} video is not supported yet; the video is ignored`);
      return;
    }
    const track: Track = {
      id: VIDEO_TRACK_ID,
      kind: 'video',
      codec,
      timescale: 90000,
      config: described.config,
      codecString: described.codecString,
      ...(described.width !== undefined ? { width: described.width } : {}),
      ...(described.height !== undefined ? { height: described.height } : {}),
    };
    if (this.#video && sameTrack(this.#video.track, track)) return;
    this.#video = { track, lengthSize: described.lengthSize };
    this.#log.info(
      { path: this.path, codec: track.codecString, width: track.width, height: track.height },
      'video sequence header',
    );
    this.#tracksChanged('video');
  }

  #setAudioConfig(codec: AudioCodec, config: Uint8Array): void {
    let track: Track;
    let samplesPerFrame = 0;
    if (codec === 'aac') {
      const asc = parseAudioSpecificConfig(config);
      samplesPerFrame = asc.samplesPerFrame;
      track = {
        id: AUDIO_TRACK_ID,
        kind: 'audio',
        codec,
        timescale: asc.sampleRate,
        config: copy(config),
        codecString: asc.codecString,
        sampleRate: asc.sampleRate,
        channels: asc.channels,
      };
    } else {
      const info = opusTrackInfo(config);
      // RFC 7845 §4: Opus timestamps count 48 kHz samples whatever the input rate was.
      track = {
        id: AUDIO_TRACK_ID,
        kind: 'audio',
        codec,
        timescale: 48000,
        config: copy(config),
        codecString: info.codecString,
        sampleRate: info.sampleRate,
        channels: info.channels,
      };
    }
    if (this.#audio && sameTrack(this.#audio.track, track)) return;
    this.#audio = { track, samplesPerFrame };
    this.#audioNextDts = null;
    this.#log.info(
      { path: this.path, codec: track.codecString, sampleRate: track.sampleRate, channels: track.channels },
      'audio sequence header',
    );
    this.#tracksChanged('audio');
  }

  #tracksChanged(kind: MediaKind): void {
    if (this.#published === null) {
      this.#maybeStart();
      return;
    }
    const before = this.#published.find((t) => t.kind === kind);
    this.#log.info(
      { path: this.path, kind },
      before ? `${kind} configuration changed mid-stream; tracks updated` : `late ${kind} track added`,
    );
    this.#publishTracks();
  }

  /** AAC timestamps are counted in samples from the first frame, so the ms rounding of RTMP does not jitter. */
  #audioDts(audio: AudioState, ms: number): number {
    const rate = audio.track.timescale;
    const clock = Math.round((ms * rate) / 1000);
    if (audio.samplesPerFrame === 0) return clock;
    let dts = this.#audioNextDts;
    if (dts === null || Math.abs(dts - clock) > rate * AUDIO_REANCHOR_S) {
      if (dts !== null) {
        this.#log.debug(
          { path: this.path, drift: (dts - clock) / rate },
          'audio timeline re-anchored to the RTMP clock',
        );
      }
      dts = clock;
    }
    this.#audioNextDts = dts + audio.samplesPerFrame;
    return dts;
  }

  /** RTMP timestamps are 32-bit milliseconds; continue past the wrap instead of jumping back 49 days. */
  #unwrap(timestamp: number): number {
    if (
      this.#lastTimestamp >= 0 &&
      timestamp < this.#lastTimestamp &&
      this.#lastTimestamp - timestamp > 0x80000000
    ) {
      this.#timestampEpoch += 0x100000000;
    }
    this.#lastTimestamp = timestamp;
    return this.#timestampEpoch + timestamp;
  }

  #firstMedia(arrival: number): void {
    this.#now = arrival;
    if (this.#firstMediaAt >= 0) return;
    this.#firstMediaAt = arrival;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      try {
        this.#maybeStart(true);
      } catch (err) {
        this.#onError(err);
      }
    }, ANNOUNCED_TRACK_WAIT_MS);
    this.#timer.unref();
  }

  #deliver(frame: Frame): void {
    if (this.#published !== null) {
      if (this.#published.some((t) => t.id === frame.trackId)) this.stream.pushFrame(frame);
      return;
    }
    this.#held.push(frame);
    this.#heldBytes += frame.data.length;
    this.#maybeStart();
    // Nothing known to publish yet (media without sequence headers): keep only the newest frames.
    while (this.#held.length > MAX_HELD_FRAMES || this.#heldBytes > MAX_HELD_BYTES) {
      this.#heldBytes -= this.#held.shift()!.data.length;
    }
  }

  /** Publishes the track set once every track the publisher will send is known (or has had its chance). */
  #maybeStart(deadline = false): void {
    if (this.#published !== null || this.#ended) return;
    if (!this.#video && !this.#audio) return;
    const waited = this.#firstMediaAt >= 0 ? this.#now - this.#firstMediaAt : 0;
    const overflow = this.#held.length >= MAX_HELD_FRAMES || this.#heldBytes >= MAX_HELD_BYTES;
    const settled = (expect: boolean | undefined, known: boolean): boolean => {
      if (known || expect === false) return true;
      if (expect === true) return false;
      return waited >= UNANNOUNCED_TRACK_WAIT_MS;
    };
    const ready =
      (settled(this.#expect.video, this.#video !== null) &&
        settled(this.#expect.audio, this.#audio !== null)) ||
      deadline ||
      waited >= ANNOUNCED_TRACK_WAIT_MS ||
      overflow;
    if (!ready) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#publishTracks();
  }

  #publishTracks(): void {
    const tracks: Track[] = [];
    if (this.#video) tracks.push(this.#video.track);
    if (this.#audio) tracks.push(this.#audio.track);
    this.#published = tracks;
    this.stream.setTracks(tracks);
    const held = this.#held;
    this.#held = [];
    this.#heldBytes = 0;
    for (const frame of held) {
      if (tracks.some((t) => t.id === frame.trackId)) this.stream.pushFrame(frame);
    }
  }

  #reportOnce(key: string, message: string): void {
    if (this.#reported.has(key)) return;
    this.#reported.add(key);
    this.#log.warn({ path: this.path }, message);
  }

  /** A track the source sends that nobody will get: the API and the dashboard say so, not only the log. */
  #warnOnce(key: string, message: string): void {
    if (!this.#reported.has(key)) this.stream.warnings.add(message);
    this.#reportOnce(key, message);
  }
}

/**
 * onMetaData's hasVideo/videocodecid (and audio): announced and supported → wait for it; announced absent or
 * a codec we do not carry → do not wait; not said → wait briefly.
 */
function expectTrack(
  has: Amf0Value,
  codecId: Amf0Value,
  supported: (id: number | string) => boolean,
): boolean | undefined {
  if (has === false) return false;
  if (typeof codecId === 'number' || typeof codecId === 'string') {
    if (codecId === 0 || codecId === '') return has === true ? undefined : false;
    return supported(codecId);
  }
  return has === true ? true : undefined;
}

function sameBytes(a: Uint8Array | null, b: Uint8Array): boolean {
  return a !== null && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

function sameTrack(a: Track, b: Track): boolean {
  return a.codec === b.codec && sameBytes(a.config, b.config);
}

/** The config outlives the message it came in; copy it rather than pin the message buffer. */
function copy(bytes: Uint8Array): Uint8Array {
  return Uint8Array.prototype.slice.call(bytes);
}
