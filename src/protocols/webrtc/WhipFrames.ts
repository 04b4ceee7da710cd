import type { Logger } from '../../core/log.ts';
import type { Stream } from '../../core/Stream.ts';
import type { Frame, Track } from '../../media/Frame.ts';
import { h264TrackInfo } from '../../media/h264/avcC.ts';
import { buildOpusHead } from '../../media/opus/opusHead.ts';
import { H264Depacketizer } from '../../media/rtp/h264.ts';
import { OpusDepacketizer, opusPacketDuration } from '../../media/rtp/opus.ts';
import { parseRtpPacket, type RtpPacket, timestampDelta } from '../../media/rtp/packet.ts';
import type { Depacketizer } from '../../media/rtp/payload.ts';
import type { FeedKind } from './RtpFeed.ts';
import type { ChosenCodec } from './sdp.ts';

/*
 * A WHIP stream as frames, for the consumers that need them (WS+MSE, RTMP play, recording): RTP is
 * depacketized only while the stream has a frame consumer, so a WHIP → WHEP-only stream costs nothing here.
 */

const VIDEO_TRACK_ID = 1;
const AUDIO_TRACK_ID = 2;

/** Per track: RTP timestamps unwrapped onto the stream's common timeline (arrival of the first frame). */
class Timeline {
  readonly clockRate: number;
  #lastRtp = 0;
  #ticks = -1;

  constructor(clockRate: number) {
    this.clockRate = clockRate;
  }

  /** The frame's time in ticks of `clockRate`: its first frame placed at its arrival since `epochMs`. */
  place(rtpTimestamp: number, arrivalMs: number, epochMs: number): number {
    if (this.#ticks < 0)
      this.#ticks = Math.max(0, Math.round(((arrivalMs - epochMs) * this.clockRate) / 1000));
    else this.#ticks += timestampDelta(rtpTimestamp, this.#lastRtp);
    this.#lastRtp = rtpTimestamp;
    return Math.max(0, this.#ticks);
  }
}

export class WhipFrames {
  readonly #stream: Stream;
  readonly #video: ChosenCodec | null;
  readonly #audio: ChosenCodec | null;
  readonly #requestKeyframe: () => void;
  readonly #log: Logger;
  #active = false;
  #videoDepacketizer: Depacketizer | null = null;
  #audioDepacketizer: Depacketizer | null = null;
  #videoTimeline = new Timeline(90000);
  #audioTimeline = new Timeline(48000);
  #epochMs = 0;
  #videoTrack: Track | null = null;
  readonly #audioTrack: Track | null;
  #tracksSet = false;
  /** Ticks (90 kHz) after a keyframe at which the next is asked for; 0: never on a cadence. */
  readonly #cadenceTicks: number;
  #lastKeyframeDts = -1;

  constructor(
    stream: Stream,
    video: ChosenCodec | null,
    audio: ChosenCodec | null,
    requestKeyframe: () => void,
    log: Logger,
    keyframeCadenceMs = 0,
  ) {
    this.#cadenceTicks = keyframeCadenceMs * 90;
    this.#stream = stream;
    // Only H.264 and Opus become frames for now; other video still reaches WHEP viewers as RTP.
    this.#video = video?.name === 'H264' ? video : null;
    this.#audio = audio?.name === 'opus' ? audio : null;
    this.#requestKeyframe = requestKeyframe;
    this.#log = log;
    if (video && !this.#video) {
      stream.warnings.add(
        `${video.name} video from WHIP is forwarded to WHEP viewers only (no WS+MSE, no RTMP play)`,
      );
    }
    this.#audioTrack = this.#audio
      ? {
          id: AUDIO_TRACK_ID,
          kind: 'audio',
          codec: 'opus',
          timescale: 48000,
          config: buildOpusHead(2),
          codecString: 'opus',
          sampleRate: 48000,
          channels: 2,
        }
      : null;
  }

  /** One RTP packet of `kind`, before anyone rewrites its header. Cheap when nobody consumes frames. */
  push(kind: FeedKind, packet: Buffer): void {
    if (this.#stream.consumers.size === 0) {
      if (this.#active) this.#deactivate();
      return;
    }
    if (!this.#active) this.#activate();
    const depacketizer = kind === 'video' ? this.#videoDepacketizer : this.#audioDepacketizer;
    if (!depacketizer) return;
    let rtp: RtpPacket;
    try {
      rtp = parseRtpPacket(packet);
    } catch {
      return;
    }
    const result = depacketizer.push(rtp);
    if (result.error)
      this.#log.debug({ path: this.#stream.path, err: result.error.message }, 'WHIP RTP payload dropped');
    if (result.keyframeNeeded && kind === 'video') this.#requestKeyframe();
    const done = result.frame;
    if (!done) return;
    const now = Date.now();
    if (this.#epochMs === 0) this.#epochMs = now;
    if (kind === 'video') {
      if (done.config) this.#setVideoConfig(done.config);
      if (!this.#tracksSet) return;
      const dts = this.#videoTimeline.place(done.timestamp, now, this.#epochMs);
      this.#emit(VIDEO_TRACK_ID, dts, 0, done.keyframe, done.data);
      this.#keepCadence(dts, done.keyframe);
    } else {
      if (!this.#tracksSet && !this.#video) this.#setTracks();
      if (!this.#tracksSet) return;
      const dts = this.#audioTimeline.place(done.timestamp, now, this.#epochMs);
      let duration = 0;
      try {
        duration = opusPacketDuration(done.data);
      } catch {
        return;
      }
      this.#emit(AUDIO_TRACK_ID, dts, duration, true, done.data);
    }
  }

  /**
   * Segments are cut at keyframes, and a browser sends one only when asked: without asking, an LL-HLS/LL-DASH
   * segment (and the GOP every new viewer is replayed) grows for as long as the stream lasts. So once the GOP
   * reaches the segment target a keyframe is asked for (rate-limited by the feed, like every request); it lands
   * a frame or two later, at or just past the target, where the packager cuts.
   */
  #keepCadence(dts: number, keyframe: boolean): void {
    if (keyframe || this.#lastKeyframeDts < 0) {
      if (keyframe) this.#lastKeyframeDts = dts;
      return;
    }
    if (this.#cadenceTicks > 0 && dts - this.#lastKeyframeDts >= this.#cadenceTicks) this.#requestKeyframe();
  }

  #emit(trackId: number, dts: number, duration: number, keyframe: boolean, data: Uint8Array): void {
    const frame: Frame = { trackId, dts, pts: dts, duration, keyframe, data, arrival: performance.now() };
    this.#stream.pushFrame(frame);
  }

  #setVideoConfig(avcC: Uint8Array): void {
    try {
      const info = h264TrackInfo(avcC);
      this.#videoTrack = {
        id: VIDEO_TRACK_ID,
        kind: 'video',
        codec: 'h264',
        timescale: 90000,
        config: avcC,
        codecString: info.codecString,
        width: info.width,
        height: info.height,
      };
      this.#setTracks();
    } catch (err) {
      this.#log.warn(
        { path: this.#stream.path, err: (err as Error).message },
        'WHIP H.264 parameter sets unusable',
      );
    }
  }

  #setTracks(): void {
    const tracks = [this.#videoTrack, this.#audioTrack].filter((t): t is Track => t !== null);
    if (tracks.length === 0 || !this.#stream.publisher) return;
    this.#stream.setTracks(tracks);
    this.#tracksSet = true;
  }

  #activate(): void {
    this.#active = true;
    this.#videoDepacketizer = this.#video ? new H264Depacketizer() : null;
    this.#audioDepacketizer = this.#audio ? new OpusDepacketizer() : null;
    this.#videoTimeline = new Timeline(90000);
    this.#audioTimeline = new Timeline(48000);
    this.#epochMs = 0;
    this.#tracksSet = false;
    this.#lastKeyframeDts = -1;
    if (this.#video) this.#requestKeyframe();
    this.#log.debug({ path: this.#stream.path }, 'WHIP frames: a frame consumer attached; depacketizing');
  }

  #deactivate(): void {
    this.#active = false;
    this.#videoDepacketizer = null;
    this.#audioDepacketizer = null;
    // What the cache holds is stale by the time a consumer comes back.
    this.#stream.gop.clear();
    this.#log.debug(
      { path: this.#stream.path },
      'WHIP frames: no frame consumer left; depacketizing stopped',
    );
  }
}
