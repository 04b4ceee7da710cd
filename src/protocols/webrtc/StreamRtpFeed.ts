import { randomInt } from 'node:crypto';
import type { Logger } from '../../core/log.ts';
import type { FrameConsumer, Stream } from '../../core/Stream.ts';
import { B_FRAMES_WARNING } from '../../core/warnings.ts';
import { parseAv1CodecConfig } from '../../media/av1/av1C.ts';
import type { Frame, Track } from '../../media/Frame.ts';
import { Av1Packetizer, av1WithSequenceHeader } from '../../media/rtp/av1.ts';
import { H264Packetizer } from '../../media/rtp/h264.ts';
import { OpusPacketizer } from '../../media/rtp/opus.ts';
import { writeRtpPacket } from '../../media/rtp/packet.ts';
import type { RtpPayloads } from '../../media/rtp/payload.ts';
import { Vp8Packetizer } from '../../media/rtp/vp8.ts';
import { Vp9Packetizer } from '../../media/rtp/vp9.ts';
import { OpusTranscoder } from './OpusTranscoder.ts';
import { type FeedKind, RtpFeed } from './RtpFeed.ts';

/*
 * A stream whose publisher sends frames (RTMP, and anything else that is not WHIP) as RTP: each frame is
 * packetized once for every WHEP viewer of the stream. H.264 goes out per RFC 6184 with SPS/PPS before every
 * keyframe, VP8 per RFC 7741, VP9 per RFC 9628, AV1 per the AOMedia RTP spec with the sequence header in band
 * on key frames; Opus as it is (RFC 7587); AAC through an ffmpeg Opus transcoder that runs while viewers watch.
 */

/** Viewers rewrite the payload type to what they negotiated; this one only has to be a dynamic one. */
const PLACEHOLDER_PT = 96;

export interface StreamRtpFeedOptions {
  readonly opusBitrate: number;
  readonly ffmpegPath: string;
  /** How long viewers wait for a departed publisher to come back before they are closed. */
  readonly republishWaitMs: number;
  readonly log: Logger;
}

/** One frame of the stream's video codec to RTP payloads; throws MediaParseError on a malformed frame. */
type VideoPacketize = (data: Uint8Array, keyframe: boolean) => RtpPayloads;

/** The video codecs a frame source may have that WebRTC carries, as the RTP format names them. */
const WEBRTC_VIDEO = { h264: 'H264', vp8: 'VP8', vp9: 'VP9', av1: 'AV1' } as const;

class OutgoingStream {
  ssrc = randomInt(1, 0xffffffff);
  sequence = randomInt(0, 0x10000);
}

const feeds = new WeakMap<Stream, StreamRtpFeed>();

export class StreamRtpFeed extends RtpFeed implements FrameConsumer {
  readonly stream: Stream;
  readonly anchor: Record<FeedKind, { unixMs: number; rtp: number } | null> = { video: null, audio: null };
  /** Why the stream's audio does not reach WHEP viewers, when it does not. */
  audioProblem = '';
  readonly #options: StreamRtpFeedOptions;
  #videoTrack: Track | null = null;
  #audioTrack: Track | null = null;
  #packetize: VideoPacketize | null = null;
  readonly #opus = new OpusPacketizer();
  #transcoder: OpusTranscoder | null = null;
  readonly #out = { video: new OutgoingStream(), audio: new OutgoingStream() };
  #detach: (() => void) | null = null;
  #replaying = false;
  #republishTimer: NodeJS.Timeout | null = null;

  /** The stream's feed, created with its first WHEP viewer. */
  static of(stream: Stream, options: StreamRtpFeedOptions): StreamRtpFeed {
    let feed = feeds.get(stream);
    if (!feed) {
      feed = new StreamRtpFeed(stream, options);
      feeds.set(stream, feed);
    }
    return feed;
  }

  private constructor(stream: Stream, options: StreamRtpFeedOptions) {
    super(stream.path, 0);
    this.stream = stream;
    this.#options = options;
    this.#describe(stream.tracks);
  }

  /** Whether the stream has anything a WebRTC viewer can receive. */
  get playable(): boolean {
    return this.video !== null || this.audio !== null;
  }

  onTracks(tracks: readonly Track[]): void {
    if (this.#republishTimer) clearTimeout(this.#republishTimer);
    this.#republishTimer = null;
    const before = `${this.video?.codec}/${this.video?.fmtp}|${this.audio?.codec}`;
    this.#describe(tracks);
    // A new publish is a new RTP source: viewers re-base their sequence and timestamps on the new SSRC.
    this.#out.video = new OutgoingStream();
    this.#out.audio = new OutgoingStream();
    if (this.#transcoder) {
      this.#stopTranscoder();
      this.#startTranscoder();
    }
    if (`${this.video?.codec}/${this.video?.fmtp}|${this.audio?.codec}` !== before) {
      for (const listener of [...this.listeners]) listener.onTracksChanged();
    }
  }

  onFrame(frame: Frame): void {
    // The GOP cache the stream replays at attach is in the past for a real-time viewer: it starts at the next
    // keyframe instead of playing seconds of old frames in a burst.
    if (this.#replaying) return;
    if (frame.trackId === this.#videoTrack?.id && this.#packetize) {
      if (frame.pts !== frame.dts && !this.stream.warnings.has(B_FRAMES_WARNING)) {
        this.stream.warnings.add(B_FRAMES_WARNING);
        this.#options.log.warn({ path: this.path }, B_FRAMES_WARNING);
      }
      let payloads: RtpPayloads;
      try {
        payloads = this.#packetize(frame.data, frame.keyframe);
      } catch (err) {
        this.#options.log.debug(
          { path: this.path, codec: this.#videoTrack.codec, err: (err as Error).message },
          'video frame not packetized',
        );
        return;
      }
      const timestamp = Math.round((frame.pts * 90000) / this.#videoTrack.timescale) >>> 0;
      this.anchor.video = { unixMs: Date.now(), rtp: timestamp };
      this.#send('video', payloads, timestamp, frame.keyframe);
    } else if (frame.trackId === this.#audioTrack?.id) {
      if (this.#audioTrack.codec === 'opus') {
        const timestamp = Math.round((frame.pts * 48000) / this.#audioTrack.timescale) >>> 0;
        this.anchor.audio = { unixMs: Date.now(), rtp: timestamp };
        this.#send('audio', this.#opus.packetize(frame.data), timestamp, true);
      } else {
        this.#transcoder?.push(frame.data);
      }
    }
  }

  onUnpublish(): void {
    this.#stopTranscoder();
    if (this.listeners.size === 0) return;
    this.#republishTimer = setTimeout(() => {
      this.#republishTimer = null;
      if (this.stream.live) return;
      this.end('the publisher left and did not come back');
      // end() dropped the listeners without the hook: detach from the stream, so it can be collected.
      this.onListenersChanged();
    }, this.#options.republishWaitMs);
    this.#republishTimer.unref();
  }

  protected askSourceForKeyframe(): void {
    // A relayed stream passes the request to its origin's publisher (WHIP: a PLI); RTMP has no way to ask the
    // encoder for a keyframe, so its viewers start at the next one.
    this.stream.publisher?.requestKeyframe?.();
  }

  protected override onListenersChanged(): void {
    if (this.listeners.size > 0 && !this.#detach) {
      this.#replaying = true;
      try {
        this.#detach = this.stream.addConsumer(this);
      } finally {
        this.#replaying = false;
      }
      if (this.stream.live) this.#startTranscoder();
    } else if (this.listeners.size === 0 && this.#detach) {
      this.#detach();
      this.#detach = null;
      this.#stopTranscoder();
      if (this.#republishTimer) clearTimeout(this.#republishTimer);
      this.#republishTimer = null;
      feeds.delete(this.stream);
    }
  }

  #describe(tracks: readonly Track[]): void {
    const video = tracks.find((t) => t.kind === 'video');
    const audio = tracks.find((t) => t.kind === 'audio');
    const name =
      video && video.codec in WEBRTC_VIDEO ? WEBRTC_VIDEO[video.codec as keyof typeof WEBRTC_VIDEO] : null;
    this.#videoTrack = name ? (video ?? null) : null;
    this.#packetize = null;
    this.video = null;
    if (video && name) {
      try {
        this.#packetize = videoPacketizer(video);
        this.video = { kind: 'video', codec: name, clockRate: 90000, fmtp: videoFmtp(video) };
      } catch (err) {
        this.#options.log.warn(
          { path: this.path, codec: video.codec, err: (err as Error).message },
          'video config unusable for WebRTC',
        );
      }
    } else if (video) {
      this.stream.warnings.add(
        `${video.codec} video is not sent over WebRTC (H.264, VP8, VP9 and AV1 are); WHEP viewers get audio only`,
      );
    }
    this.#audioTrack = audio ?? null;
    this.audio = null;
    this.audioProblem = '';
    if (audio?.codec === 'opus') {
      this.audio = {
        kind: 'audio',
        codec: 'opus',
        clockRate: 48000,
        channels: 2,
        fmtp: 'minptime=10;useinbandfec=1',
      };
    } else if (audio?.codec === 'aac') {
      this.audio = {
        kind: 'audio',
        codec: 'opus',
        clockRate: 48000,
        channels: 2,
        fmtp: 'minptime=10;useinbandfec=1',
      };
    }
  }

  #startTranscoder(): void {
    const audio = this.#audioTrack;
    if (audio?.codec !== 'aac' || this.#transcoder) return;
    try {
      this.#transcoder = new OpusTranscoder({
        asc: audio.config,
        bitrate: this.#options.opusBitrate,
        ffmpegPath: this.#options.ffmpegPath,
        log: this.#options.log.child({ path: this.path }),
        onPacket: (packet) => this.#onTranscoded(packet),
        onFailure: (reason) => this.#audioFailed(reason),
      });
      this.#transcoder.start();
    } catch (err) {
      this.#audioFailed((err as Error).message);
    }
  }

  #stopTranscoder(): void {
    this.#transcoder?.stop();
    this.#transcoder = null;
  }

  #audioFailed(reason: string): void {
    this.#transcoder = null;
    this.audioProblem = `AAC audio cannot travel over WebRTC and the Opus transcoder failed (${reason}); WHEP viewers get video only`;
    this.stream.warnings.add(this.audioProblem);
  }

  /** ffmpeg's RTP: the header is re-stamped with this feed's SSRC and sequence, the payload kept. */
  #onTranscoded(packet: Buffer): void {
    const headerSize = 12 + 4 * (packet[0] & 0x0f) + (packet[0] & 0x10 ? 4 + 4 * packet.readUInt16BE(14) : 0);
    if (headerSize >= packet.length) return;
    const timestamp = packet.readUInt32BE(4);
    this.anchor.audio = { unixMs: Date.now(), rtp: timestamp };
    const out = this.#out.audio;
    out.sequence = (out.sequence + 1) & 0xffff;
    packet.writeUInt16BE(out.sequence, 2);
    packet.writeUInt32BE(out.ssrc, 8);
    this.deliver('audio', packet, out.sequence, timestamp, out.ssrc, true);
  }

  #send(kind: FeedKind, payloads: RtpPayloads, timestamp: number, keyframe: boolean): void {
    const out = this.#out[kind];
    for (let i = 0; i < payloads.payloads.length; i++) {
      out.sequence = (out.sequence + 1) & 0xffff;
      const bytes = writeRtpPacket(
        {
          payloadType: PLACEHOLDER_PT,
          sequenceNumber: out.sequence,
          timestamp,
          ssrc: out.ssrc,
          marker: i === payloads.markerIndex,
        },
        payloads.payloads[i],
      );
      const packet = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      this.deliver(kind, packet, out.sequence, timestamp, out.ssrc, keyframe && i === 0);
    }
  }
}

function videoPacketizer(track: Track): VideoPacketize {
  switch (track.codec) {
    case 'h264': {
      const h264 = new H264Packetizer(track.config);
      return (data, keyframe) => h264.packetize(data, keyframe);
    }
    case 'vp8': {
      const vp8 = new Vp8Packetizer();
      return (data) => vp8.packetize(data);
    }
    case 'vp9': {
      const vp9 = new Vp9Packetizer();
      return (data) => vp9.packetize(data);
    }
    case 'av1': {
      const av1 = new Av1Packetizer();
      const configObus = parseAv1CodecConfig(track.config).configObus;
      return (data, keyframe) => av1.packetize(keyframe ? av1WithSequenceHeader(data, configObus) : data);
    }
    default:
      throw new Error(`${track.codec} has no RTP packetizer here`);
  }
}

/** The format parameters a viewer's answer must match: H.264's profile; VP9's profile (RFC 9628 §6). */
function videoFmtp(track: Track): string {
  if (track.codec === 'h264') {
    const plid = Buffer.from(track.config.subarray(1, 4)).toString('hex');
    return `level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=${plid}`;
  }
  if (track.codec === 'vp9' && track.config.length > 0) return `profile-id=${track.config[0]}`;
  return '';
}
