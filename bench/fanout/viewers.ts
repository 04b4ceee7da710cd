/**
 * The load generator: N WebSocket viewers of one stream in this one process, apart from the server so that the
 * server's CPU is measured alone. Forked by run.ts and driven over IPC (ramp, mark, read, stop).
 *
 *   node bench/fanout/viewers.ts --url ws://127.0.0.1:8080/mse/live/bench --format mse --fps 30 --sample-rate 48000
 */
import { parseArgs } from 'node:util';
import { maxOf, median, minOf, type Quantiles, sparseCounts, windowQuantiles } from './stats.ts';
import { SpreadMeter, Viewer, type WireFormat } from './Viewer.ts';

export type GeneratorCommand =
  | { type: 'ramp'; count: number; batch: number; intervalMs: number; timeoutMs: number }
  | { type: 'mark' }
  | { type: 'read' }
  | { type: 'stop' };

export interface RampResult {
  type: 'ramped';
  /** Viewers that failed to connect or play and were replaced by a new one (at most twice per slot). */
  retried: number;
  /** Viewers open and playing (at least one video frame received). */
  playing: number;
  failed: number;
  seconds: number;
  firstError: string;
}

/** What the viewers saw between `mark` and `read`. Frame counts are video + audio frames. */
export interface WindowResult {
  type: 'window';
  seconds: number;
  /** Viewers open at mark and still open at read; the figures below are over these. */
  viewers: number;
  /** Viewers that closed or failed during the window. */
  closed: number;
  frames: { min: number | null; median: number | null; max: number | null };
  /**
   * Frames the source produced over each viewer's span of decode times in the window (received + missing,
   * from gaps in the decode times of a constant-rate source), median across viewers.
   */
  expectedMedian: number | null;
  /** Viewers that missed at least one frame in the window, and the frames missed in total. */
  viewersWithLoss: number;
  framesLost: number;
  /** Subsecond's `skipped` messages (a viewer fell behind and was moved to the next keyframe). */
  skippedMessages: number;
  skippedFrames: number;
  /** Median bytes received per viewer, as Mbit/s. */
  mbitPerViewer: number | null;
  /**
   * For each frame, the time from its first arrival at any viewer in this process to its arrival at each
   * viewer: the server's fan-out spread plus this process's own scheduling, so an upper bound.
   */
  spreadMs: Quantiles;
  readerErrors: number;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      format: { type: 'string' },
      fps: { type: 'string', default: '30' },
      'sample-rate': { type: 'string', default: '48000' },
    },
  });
  const url = values.url ?? '';
  const format = values.format as WireFormat;
  if (!url.startsWith('ws://') || (format !== 'mse' && format !== 'flv')) {
    throw new Error(`usage: viewers.ts --url ws://… --format mse|flv (got url "${url}", format "${format}")`);
  }
  if (!process.send) throw new Error('viewers.ts is driven over IPC: run.ts starts it with an IPC channel');
  const send = (message: RampResult | WindowResult | { type: 'marked' | 'stopped' }) =>
    process.send?.(message);
  const source = { fps: Number(values.fps), sampleRate: Number(values['sample-rate']) };
  const spread = new SpreadMeter();
  const viewers: Viewer[] = [];
  let markedAt = 0;

  process.on('message', async (command: GeneratorCommand) => {
    if (command.type === 'ramp') {
      send(await ramp(command, viewers, () => new Viewer(url, format, source, spread)));
    } else if (command.type === 'mark') {
      for (const v of viewers) v.mark = v.closed ? null : { ...v.tally };
      spread.start();
      markedAt = performance.now();
      send({ type: 'marked' });
    } else if (command.type === 'read') {
      send(readWindow(viewers, spread, markedAt));
    } else if (command.type === 'stop') {
      for (const v of viewers) v.ws.terminate();
      send({ type: 'stopped' });
      process.disconnect();
    }
  });
  process.on('disconnect', () => {
    for (const v of viewers) v.ws.terminate();
    setTimeout(() => process.exit(0), 100).unref();
  });
}

async function until(done: () => boolean, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  while (!done() && performance.now() < deadline) await sleep(20);
}

/**
 * Connects `count` viewers in batches. A batch starts `intervalMs` after the previous one and not before all
 * of that one finished its handshake, so the ramp never has more than one batch of handshakes in flight.
 * Viewers that fail are replaced, at most twice per slot; the rest must be playing by `timeoutMs`.
 */
async function ramp(
  command: Extract<GeneratorCommand, { type: 'ramp' }>,
  viewers: Viewer[],
  make: () => Viewer,
): Promise<RampResult> {
  const started = performance.now();
  const first = viewers.length;
  for (let i = 0; i < command.count; i += command.batch) {
    const batchStarted = performance.now();
    const batch: Viewer[] = [];
    for (let j = 0; j < Math.min(command.batch, command.count - i); j++) batch.push(make());
    viewers.push(...batch);
    await until(() => batch.every((v) => v.opened || v.closed), 15_000);
    await sleep(command.intervalMs - (performance.now() - batchStarted));
  }
  let retried = 0;
  for (let attempt = 0; attempt < 2; attempt++) {
    const again: Viewer[] = [];
    for (let i = first; i < viewers.length; i++) {
      if (!viewers[i].closed) continue;
      viewers[i] = make();
      again.push(viewers[i]);
    }
    if (again.length === 0) break;
    retried += again.length;
    await until(() => again.every((v) => v.opened || v.closed), 15_000);
  }
  const mine = viewers.slice(first);
  await until(() => mine.every((v) => v.playing || v.closed), command.timeoutMs);
  const failed = mine.filter((v) => !v.playing || v.closed);
  return {
    type: 'ramped',
    retried,
    playing: mine.length - failed.length,
    failed: failed.length,
    seconds: (performance.now() - started) / 1000,
    firstError: failed.find((v) => v.error)?.error ?? (failed.length ? 'no frame before the timeout' : ''),
  };
}

function readWindow(viewers: readonly Viewer[], spread: SpreadMeter, markedAt: number): WindowResult {
  const seconds = (performance.now() - markedAt) / 1000;
  spread.measuring = false;
  const frames: number[] = [];
  const expected: number[] = [];
  const bytes: number[] = [];
  let closed = 0;
  let viewersWithLoss = 0;
  let framesLost = 0;
  let skippedMessages = 0;
  let skippedFrames = 0;
  let readerErrors = 0;
  for (const v of viewers) {
    readerErrors += v.readerErrors;
    if (!v.mark) continue;
    if (v.closed) {
      closed++;
      continue;
    }
    const f = v.tally.frames - v.mark.frames;
    const lost = v.tally.lost - v.mark.lost;
    frames.push(f);
    expected.push(f + lost);
    bytes.push(v.tally.bytes - v.mark.bytes);
    if (lost > 0) viewersWithLoss++;
    framesLost += lost;
    skippedMessages += v.tally.skippedMessages - v.mark.skippedMessages;
    skippedFrames += v.tally.skippedFrames - v.mark.skippedFrames;
  }
  const medianBytes = median(bytes);
  return {
    type: 'window',
    seconds,
    viewers: frames.length,
    closed,
    frames: { min: minOf(frames), median: median(frames), max: maxOf(frames) },
    expectedMedian: median(expected),
    viewersWithLoss,
    framesLost,
    skippedMessages,
    skippedFrames,
    mbitPerViewer: medianBytes === null ? null : (medianBytes * 8) / seconds / 1e6,
    spreadMs: windowQuantiles([], sparseCounts(spread.histogram)),
    readerErrors,
  };
}

main().catch((err: Error) => {
  process.stderr.write(`viewers: ${err.message}\n`);
  process.exit(1);
});
