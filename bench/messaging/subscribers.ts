/**
 * The load generator: N WebSocket subscribers of one channel in this one process, apart from the server so
 * that the server's CPU is measured alone. Forked by run.ts and driven over IPC (open, mark, read, stop).
 * Each message carries its publish time (`performance.timeOrigin + performance.now()`, comparable across
 * processes on one machine); each subscriber records publish→receive delay and checks its ids are gapless.
 */
import { WebSocket } from 'ws';

export type SubscriberCommand =
  | { type: 'open'; url: string; count: number; batch: number }
  | { type: 'mark' }
  | { type: 'read' }
  | { type: 'stop' };

export interface WindowReport {
  type: 'window';
  seconds: number;
  open: number;
  delivered: number;
  /** Ids a subscriber skipped (should be 0) and ids it received twice or out of order (should be 0). */
  missing: number;
  disordered: number;
  delayMs: { p50: number; p90: number; p99: number; max: number };
}

/** Delay histogram in 0.1 ms buckets up to 10 s: a fixed array, so recording allocates nothing. */
const BUCKET_MS = 0.1;
const buckets = new Float64Array(100_000);
let samples = 0;
let maxDelay = 0;
let delivered = 0;
let missing = 0;
let disordered = 0;
let markedAt = 0;
const sockets: WebSocket[] = [];

function quantile(q: number): number {
  const target = q * samples;
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    seen += buckets[i];
    if (seen >= target && seen > 0) return (i + 1) * BUCKET_MS;
  }
  return maxDelay;
}

function reset(): void {
  buckets.fill(0);
  samples = 0;
  maxDelay = 0;
  delivered = 0;
  missing = 0;
  disordered = 0;
  markedAt = performance.now();
}

function subscribe(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    let last = -1;
    ws.on('message', (raw: Buffer) => {
      const now = performance.timeOrigin + performance.now();
      // Cheap field reads, not a full parse: the benchmark must not be bottlenecked by its own client.
      const text = raw.toString('latin1');
      if (text.charCodeAt(10) !== 109) {
        // Not {"event":"message",…}; subscribed/presence.
        if (text.startsWith('{"event":"subscribed"')) resolve();
        return;
      }
      const idAt = text.indexOf('"id":') + 5;
      const id = Number.parseInt(text.slice(idAt, text.indexOf(',', idAt)), 10);
      const sentAt = Number(
        text.slice(text.indexOf('"sentAt":') + 9, text.indexOf('}', text.indexOf('"sentAt":'))),
      );
      if (last >= 0) {
        if (id === last + 1) {
          // in order
        } else if (id > last + 1) missing += id - last - 1;
        else disordered++;
      }
      last = id;
      delivered++;
      const delay = now - sentAt;
      if (delay > maxDelay) maxDelay = delay;
      buckets[Math.min(buckets.length - 1, Math.max(0, Math.floor(delay / BUCKET_MS)))]++;
      samples++;
    });
    ws.once('error', reject);
    ws.once('close', () => reject(new Error('closed before subscribed')));
    sockets.push(ws);
  });
}

process.on('message', async (command: SubscriberCommand) => {
  if (command.type === 'open') {
    const started = performance.now();
    let failed = 0;
    for (let i = 0; i < command.count; i += command.batch) {
      const batch = Math.min(command.batch, command.count - i);
      const results = await Promise.allSettled(Array.from({ length: batch }, () => subscribe(command.url)));
      failed += results.filter((r) => r.status === 'rejected').length;
    }
    process.send!({
      type: 'opened',
      open: command.count - failed,
      failed,
      seconds: (performance.now() - started) / 1000,
    });
  } else if (command.type === 'mark') {
    reset();
    process.send!({ type: 'marked' });
  } else if (command.type === 'read') {
    const report: WindowReport = {
      type: 'window',
      seconds: (performance.now() - markedAt) / 1000,
      open: sockets.filter((s) => s.readyState === WebSocket.OPEN).length,
      delivered,
      missing,
      disordered,
      delayMs: { p50: quantile(0.5), p90: quantile(0.9), p99: quantile(0.99), max: maxDelay },
    };
    process.send!(report);
  } else if (command.type === 'stop') {
    for (const s of sockets) s.terminate();
    process.exit(0);
  }
});

// Stop with the benchmark: if its IPC channel closes, nothing is left behind.
process.on('disconnect', () => process.exit(0));
