/**
 * Test-only: real media (encoded by ffmpeg, demuxed by our reader) with the regular timing of a live encoder,
 * and a publisher that pushes it into a stream on repeat, as far as a test asks, so each test decides exactly
 * when media exists.
 */

import type { Publisher, Stream } from '../../../core/Stream.ts';
import type { StreamRegistry } from '../../../core/StreamRegistry.ts';
import type { Frame, Track } from '../../../media/Frame.ts';
import { ffmpeg } from '../../../media/testing/ffmpeg.ts';
import { demuxFragmentedMp4, interleave } from '../../../media/testing/mp4.ts';

/** A clip with regular timing, pushed on repeat by a ClipSource. */
export interface Clip {
  tracks: Track[];
  frames: Frame[];
  /** Per track, the clip's length in its timescale: the offset of each repetition. */
  length: Map<number, number>;
  /** The track whose time `pushUntil` counts: the video, or the only track. */
  timing: Track;
}

/**
 * ffmpeg's muxers stretch the first video frame over the audio priming; a live source is regular: every frame
 * of a track lasts its nominal duration (`steps`: per kind, in a new timescale), as pushed by a real encoder.
 */
export function regularClip(
  media: { tracks: Track[]; frames: Frame[] },
  steps: Record<string, [number, number]>,
): Clip {
  const retimed = media.tracks.map((t) => ({ ...t, timescale: steps[t.kind][0] }));
  const length = new Map<number, number>();
  const timed: Frame[] = [];
  for (const t of retimed) {
    const own = media.frames.filter((f) => f.trackId === t.id);
    const step = steps[t.kind][1];
    own.forEach((f, i) => {
      timed.push({ ...f, dts: i * step, pts: i * step, duration: step });
    });
    length.set(t.id, own.length * step);
  }
  const timing = retimed.find((t) => t.kind === 'video') ?? retimed[0];
  return { tracks: retimed, frames: interleave(retimed, timed), length, timing };
}

/** 4 s of 320x240 H.264 (keyframe every second, no B-frames) and AAC: 30 fps at 90 kHz, 1024-sample frames. */
export function h264AacClip(): Clip {
  const media = demuxFragmentedMp4(
    ffmpeg([
      ...['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30'],
      ...['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000'],
      ...[
        '-t',
        '4',
        '-c:v',
        'libx264',
        '-preset',
        'ultrafast',
        '-g',
        '30',
        '-bf',
        '0',
        '-pix_fmt',
        'yuv420p',
      ],
      ...['-c:a', 'aac', '-b:a', '64k', '-video_track_timescale', '90000'],
      ...['-movflags', 'frag_keyframe+empty_moov+default_base_moof', '-f', 'mp4', '-'],
    ]),
  );
  return regularClip(media, { video: [90000, 3000], audio: [48000, 1024] });
}

/** A publisher pushing a clip on repeat, as far as the test asks. */
export class ClipSource {
  readonly stream: Stream;
  readonly publisher: Publisher;
  readonly clip: Clip;
  readonly #registry: StreamRegistry;
  #i = 0;

  constructor(registry: StreamRegistry, path: string, clip: Clip) {
    this.#registry = registry;
    this.clip = clip;
    this.publisher = { protocol: 'test', remoteAddress: '127.0.0.1', id: path, close: () => {} };
    this.stream = registry.publish(path, this.publisher);
    this.stream.setTracks(clip.tracks);
  }

  /** Pushes frames until the timing track reaches `seconds` of media time. */
  pushUntil(seconds: number): void {
    const timing = this.clip.timing;
    for (let guard = 0; guard < 100_000; guard++) {
      const f = this.#frame(this.#i);
      if (f.trackId === timing.id && f.dts / timing.timescale >= seconds) return;
      this.stream.pushFrame(f);
      this.#i++;
    }
    throw new Error('pushUntil ran away');
  }

  #frame(i: number): Frame {
    const frames = this.clip.frames;
    const base = frames[i % frames.length];
    const offset = Math.floor(i / frames.length) * this.clip.length.get(base.trackId)!;
    return { ...base, dts: base.dts + offset, pts: base.pts + offset, arrival: performance.now() };
  }

  unpublish(): void {
    this.#registry.unpublish(this.stream, this.publisher);
  }
}
