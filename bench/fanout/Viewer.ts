import WebSocket from 'ws';
import { DelayHistogram } from '../../src/core/DelayHistogram.ts';
import { FlvTagReader, Fmp4FrameReader, type FrameSink, type TrackIndex } from './readers.ts';

/** `mse`: Subsecond's init + one fMP4 fragment per frame; `flv`: node-media-server's WebSocket-FLV. */
export type WireFormat = 'mse' | 'flv';

export interface Tally {
  frames: number;
  lost: number;
  bytes: number;
  skippedMessages: number;
  skippedFrames: number;
}

/** First arrival, in this process, of each frame (keyed by track and decode time) during a window. */
export class SpreadMeter {
  measuring = false;
  readonly histogram = new DelayHistogram();
  readonly #first = new Map<number, number>();

  seen(track: TrackIndex, dts: number, now: number): void {
    const key = dts * 2 + track;
    const first = this.#first.get(key);
    if (first === undefined) {
      this.#first.set(key, now);
      this.histogram.record(0);
    } else {
      this.histogram.record(now - first);
    }
  }

  start(): void {
    this.#first.clear();
    this.histogram.reset();
    this.measuring = true;
  }
}

export interface SourceRates {
  /** Video frames per second. */
  fps: number;
  /** Audio sample rate; an AAC frame is 1024 samples. */
  sampleRate: number;
}

/**
 * One WebSocket viewer that counts what it receives: frames per track, frames missing from the sequence, bytes
 * and Subsecond's `skipped` notices. It never decodes or keeps payloads.
 */
export class Viewer implements FrameSink {
  readonly ws: WebSocket;
  readonly #format: WireFormat;
  readonly #source: SourceRates;
  readonly #spread: SpreadMeter;
  readonly #fmp4: Fmp4FrameReader;
  readonly #flv: FlvTagReader;
  /** Ticks per frame for video and audio, in the wire's time units. */
  readonly #nominal = [0, 0];
  readonly #last = [-1, -1];
  #expectInit = false;
  #now = 0;
  opened = false;
  playing = false;
  closed = false;
  error = '';
  readerErrors = 0;
  readonly tally: Tally = { frames: 0, lost: 0, bytes: 0, skippedMessages: 0, skippedFrames: 0 };
  mark: Tally | null = null;

  constructor(url: string, format: WireFormat, source: SourceRates, spread: SpreadMeter) {
    this.#format = format;
    this.#spread = spread;
    this.#fmp4 = new Fmp4FrameReader(this);
    this.#flv = new FlvTagReader(this);
    this.#source = source;
    if (format === 'flv') this.#setNominal(1000, 1000);
    this.ws = new WebSocket(url, {
      perMessageDeflate: false,
      skipUTF8Validation: true,
      handshakeTimeout: 10_000,
    });
    this.ws.on('open', () => {
      this.opened = true;
    });
    this.ws.on('message', (data: Buffer, isBinary: boolean) => this.#onMessage(data, isBinary));
    this.ws.on('error', (err) => {
      this.error ||= err.message;
    });
    this.ws.on('close', (code, reason) => {
      this.closed = true;
      this.error ||= `closed ${code} ${reason.toString()}`;
    });
  }

  #setNominal(videoTimescale: number, audioTimescale: number): void {
    this.#nominal[0] = videoTimescale / this.#source.fps;
    this.#nominal[1] = (audioTimescale * 1024) / this.#source.sampleRate;
    this.#last[0] = -1;
    this.#last[1] = -1;
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    this.#now = performance.now();
    this.tally.bytes += data.byteLength;
    try {
      if (this.#format === 'flv') {
        this.#flv.push(data);
      } else if (!isBinary) {
        this.#onControl(JSON.parse(data.toString()) as { type: string; frames?: number; message?: string });
      } else if (this.#expectInit) {
        this.#expectInit = false;
        this.#fmp4.readInit(data);
        this.#setNominal(this.#fmp4.timescale(0), this.#fmp4.timescale(1));
      } else {
        this.#fmp4.readFragments(data);
      }
    } catch (err) {
      this.readerErrors++;
      this.error ||= (err as Error).message;
    }
  }

  #onControl(message: { type: string; frames?: number; message?: string }): void {
    if (message.type === 'init') this.#expectInit = true;
    else if (message.type === 'skipped') {
      this.tally.skippedMessages++;
      this.tally.skippedFrames += message.frames ?? 0;
    } else if (message.type === 'error') this.error ||= message.message ?? 'error';
  }

  frame(track: TrackIndex, dts: number, samples: number): void {
    this.tally.frames += samples;
    if (track === 0) this.playing = true;
    const last = this.#last[track];
    this.#last[track] = dts;
    const nominal = this.#nominal[track];
    // A constant-rate source: a step of more than 1.5 frame intervals means frames in between never came.
    if (last >= 0 && nominal > 0 && dts - last > 1.5 * nominal) {
      this.tally.lost += Math.round((dts - last) / nominal) - 1;
    }
    if (this.#spread.measuring) this.#spread.seen(track, dts, this.#now);
  }
}
