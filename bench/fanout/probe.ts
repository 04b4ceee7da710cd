/**
 * Preloaded (`node --import`) into a server under test, so the benchmark can ask the process itself what /proc
 * cannot tell: event-loop utilisation and heap. It answers over the IPC channel run.ts opened, and only when
 * asked; it adds nothing to any media path. It also stops the server if run.ts goes away without doing so.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';

export interface ProbeSample {
  type: 'sample';
  /** Cumulative since the process started; run.ts takes differences. */
  elu: { idle: number; active: number };
  memory: NodeJS.MemoryUsage;
  /** Event-loop delay since the previous sample (reset at each): how late a 10 ms timer fired. */
  loopDelayMs: { p50: number; p99: number; max: number };
  /** Whatever server-specific readers were registered (see mse-probe.ts). */
  extra: Record<string, unknown>;
}

const RESOLUTION_MS = 10;
const readers = new Map<string, () => unknown>();

/** Adds `name` to every sample, read when the sample is taken. */
export function addProbeReader(name: string, read: () => unknown): void {
  readers.set(name, read);
}

if (process.send && process.channel) {
  // A 10 ms timer measuring how late it fires: about 100 wake-ups a second, the same for every server.
  const loopDelay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  loopDelay.enable();
  process.on('message', (message: { type?: string }) => {
    if (message?.type !== 'sample') return;
    const { idle, active } = performance.eventLoopUtilization();
    const extra: Record<string, unknown> = {};
    for (const [name, read] of readers) extra[name] = read();
    // The histogram holds whole timer intervals (10 ms when idle); the delay is what exceeds the interval.
    const late = (ns: number) => Math.max(0, Math.round((ns - RESOLUTION_MS * 1e6) / 1e4) / 100);
    const loopDelayMs = {
      p50: late(loopDelay.percentile(50)),
      p99: late(loopDelay.percentile(99)),
      max: late(loopDelay.max),
    };
    loopDelay.reset();
    const sample: ProbeSample = {
      type: 'sample',
      elu: { idle, active },
      memory: process.memoryUsage(),
      loopDelayMs,
      extra,
    };
    process.send?.(sample);
  });
  // The channel must not keep a server alive that was asked to stop.
  process.channel.unref();
  process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}
