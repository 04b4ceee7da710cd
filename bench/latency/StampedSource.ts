/**
 * A real-time RTMP source whose every frame carries the wall-clock time it was made (client/latency/barcode.ts):
 * Node renders raw yuv420p frames at the frame rate and pipes them into ffmpeg (x264 zerolatency, no B-frames,
 * AAC), stamping each just before it is written to the encoder's input. Audio (a 440 Hz tone) is written by the
 * same clock on a second pipe, so neither input runs ahead of the other in ffmpeg's muxer.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { Writable } from 'node:stream';
import { bandHeight, CELLS, cellLeft, encodeCells } from '../../client/latency/barcode.ts';

export interface StampedSourceOptions {
  /** One RTMP URL, or several: one encode goes to each (ffmpeg's tee), so every server gets the same frames. */
  url: string | readonly string[];
  width?: number;
  height?: number;
  fps?: number;
  /** x264 target, e.g. '2500k'. */
  bitrate?: string;
  audio?: boolean;
  /** The source stops by itself after this long. */
  seconds: number;
  /** Keep the stamp (performance.now()) of every frame, for encoderDelay.ts. */
  recordStamps?: boolean;
}

const SAMPLE_RATE = 48_000;

export class StampedSource {
  readonly ffmpeg: ChildProcess;
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  framesSent = 0;
  /** performance.now() at which frame N was stamped, when recordStamps is set. */
  readonly stamps: number[] = [];
  #timer: NodeJS.Timeout | null = null;
  #frame: Buffer;
  #audio: Buffer;
  #tonePhase = 0;
  #stderr = '';
  readonly #startedAt = performance.now();
  readonly #options: StampedSourceOptions;

  constructor(options: StampedSourceOptions) {
    this.#options = options;
    this.width = options.width ?? 1280;
    this.height = options.height ?? 720;
    this.fps = options.fps ?? 30;
    const withAudio = options.audio ?? true;
    const gop = this.fps * 2;
    const args = ['-hide_banner', '-loglevel', 'error', '-fflags', 'nobuffer'];
    args.push('-f', 'rawvideo', '-pix_fmt', 'yuv420p', '-s', `${this.width}x${this.height}`);
    args.push('-framerate', String(this.fps), '-i', 'pipe:0');
    if (withAudio) args.push('-f', 's16le', '-ar', String(SAMPLE_RATE), '-ac', '1', '-i', 'pipe:3');
    const bitrate = options.bitrate ?? '2500k';
    args.push('-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-bf', '0');
    args.push('-g', String(gop), '-keyint_min', String(gop), '-b:v', bitrate, '-maxrate', bitrate);
    args.push('-bufsize', bitrate, '-pix_fmt', 'yuv420p');
    if (withAudio) args.push('-c:a', 'aac', '-b:a', '96k');
    const urls = typeof options.url === 'string' ? [options.url] : options.url;
    if (urls.length === 1) {
      args.push('-flush_packets', '1', '-f', 'flv', urls[0]);
    } else {
      // FLV needs the codec configuration up front, which tee does not ask the encoders for by itself; a
      // destination that fails is dropped without stopping the others.
      args.push('-flags:v', '+global_header', '-flags:a', '+global_header', '-map', '0:v');
      if (withAudio) args.push('-map', '1:a');
      args.push('-f', 'tee', urls.map((url) => `[f=flv:onfail=ignore]${url}`).join('|'));
    }
    const toStdout = urls.length === 1 && urls[0] === 'pipe:1';
    this.ffmpeg = spawn('ffmpeg', args, {
      stdio: ['pipe', toStdout ? 'pipe' : 'ignore', 'pipe', withAudio ? 'pipe' : 'ignore'],
    });
    this.ffmpeg.stderr?.on('data', (d: Buffer) => {
      this.#stderr = (this.#stderr + d.toString()).slice(-4000);
    });
    // A closed pipe is how ffmpeg ending shows up here; the exit code tells the rest.
    this.ffmpeg.stdin?.on('error', () => {});
    (this.ffmpeg.stdio[3] as Writable | null)?.on('error', () => {});
    const lumaSize = this.width * this.height;
    this.#frame = Buffer.alloc(lumaSize + lumaSize / 2, 128);
    this.#audio = withAudio ? Buffer.alloc(Math.round(SAMPLE_RATE / this.fps) * 2) : Buffer.alloc(0);
  }

  get stderrText(): string {
    return this.#stderr;
  }

  start(): this {
    const interval = 1000 / this.fps;
    const deadline = this.#startedAt + this.#options.seconds * 1000;
    const tick = () => {
      const now = performance.now();
      if (now >= deadline || this.ffmpeg.exitCode !== null) {
        this.stop();
        return;
      }
      // Frames due by now (a late timer sends the ones it missed, so the rate holds).
      const due = Math.floor((now - this.#startedAt) / interval) + 1;
      while (this.framesSent < due) this.#send();
      const next = this.#startedAt + this.framesSent * interval;
      this.#timer = setTimeout(tick, Math.max(0, next - performance.now()));
    };
    tick();
    return this;
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.ffmpeg.stdin?.end();
    (this.ffmpeg.stdio[3] as Writable | null)?.end();
  }

  /** Ends ffmpeg for good. */
  kill(): Promise<void> {
    this.stop();
    if (this.ffmpeg.exitCode !== null || this.ffmpeg.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      this.ffmpeg.once('exit', () => resolve());
      this.ffmpeg.kill('SIGKILL');
    });
  }

  #send(): void {
    const n = this.framesSent++;
    this.#paintMotion(n);
    // Stamped last, just before the frame enters the encoder's input.
    const now = performance.now();
    if (this.#options.recordStamps) this.stamps.push(now);
    this.#paintBand(Date.now());
    this.ffmpeg.stdin?.write(this.#frame);
    if (this.#audio.length > 0) {
      const samples = this.#audio.length / 2;
      for (let i = 0; i < samples; i++) {
        this.#audio.writeInt16LE(Math.round(Math.sin(this.#tonePhase) * 8000), i * 2);
        this.#tonePhase += (2 * Math.PI * 440) / SAMPLE_RATE;
      }
      // A fresh copy: the pipe may still hold the last one.
      (this.ffmpeg.stdio[3] as Writable | null)?.write(Buffer.from(this.#audio));
    }
  }

  /** Moving diagonal stripes and a bouncing box below the band, so the encoder does real work each frame. */
  #paintMotion(n: number): void {
    const { width, height } = this;
    const top = bandHeight(height);
    const frame = this.#frame;
    for (let y = top; y < height; y++) {
      const row = y * width;
      for (let x = 0; x < width; x++) frame[row + x] = 64 + (((x + y + n * 8) >> 4) & 7) * 16;
    }
    const box = Math.round(height / 5);
    const bx = Math.abs(((n * 12) % (2 * (width - box))) - (width - box));
    const by = top + Math.abs(((n * 7) % (2 * (height - top - box))) - (height - top - box));
    for (let y = by; y < by + box; y++) frame.fill(235, y * width + bx, y * width + bx + box);
    // Chroma: a slow colour drift.
    const lumaSize = width * height;
    frame.fill(128 + ((n >> 2) % 32), lumaSize, lumaSize + lumaSize / 4);
  }

  #paintBand(timeMs: number): void {
    const { width } = this;
    const cells = encodeCells(timeMs);
    const rows = bandHeight(this.height);
    for (let cell = 0; cell < CELLS; cell++) {
      const value = cells[cell] ? 235 : 16;
      const left = cellLeft(width, cell);
      const right = cellLeft(width, cell + 1);
      for (let y = 0; y < rows; y++) this.#frame.fill(value, y * width + left, y * width + right);
    }
  }
}
