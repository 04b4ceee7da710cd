/**
 * The load generator: N subscribers of one channel in this one process, apart from the server so that the
 * server's CPU is measured alone. Forked by run.ts and driven over IPC (open, mark, read, stop). Three kinds:
 *
 * - `ws`: Subsecond's WebSocket transport (`ws` client, JSON frames);
 * - `sse`: Subsecond's Server-Sent Events transport (node:http, text/event-stream parsed here);
 * - `socketio`: the Socket.IO server of bench/messaging/socketio-server.ts (socket.io-client, websocket
 *   transport only, one connection per client).
 *
 * Each message carries its publish time (`performance.timeOrigin + performance.now()`, comparable across
 * processes on one machine); each subscriber records publish→receive delay and checks its ids are gapless.
 */
import { type ClientRequest, request } from 'node:http';
import { io, type Socket } from 'socket.io-client';
import { WebSocket } from 'ws';

export type SubscriberKind = 'ws' | 'sse' | 'socketio';

export type SubscriberCommand =
  | { type: 'open'; kind: SubscriberKind; url: string; channel: string; count: number; batch: number }
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
  /** The delay histogram's non-empty buckets as [bucket, count] (BUCKET_MS wide), so runs with several
   * subscriber processes can merge them into exact quantiles. */
  histogram: [number, number][];
}

/** Width of one delay bucket, ms. */
export const BUCKET_MS = 0.1;

/** Delay histogram in BUCKET_MS buckets up to 10 s: a fixed array, so recording allocates nothing. */
const buckets = new Float64Array(100_000);
let samples = 0;
let maxDelay = 0;
let delivered = 0;
let missing = 0;
let disordered = 0;
let markedAt = 0;

/** One open subscriber, whatever carries it. */
interface Open {
  open(): boolean;
  close(): void;
}
const subscribers: Open[] = [];

/** One subscriber's position: the last id it received. */
interface Position {
  last: number;
}

function record(at: Position, id: number, sentAt: number): void {
  const now = performance.timeOrigin + performance.now();
  if (at.last >= 0) {
    if (id === at.last + 1) {
      // in order
    } else if (id > at.last + 1) missing += id - at.last - 1;
    else disordered++;
  }
  at.last = id;
  delivered++;
  const delay = now - sentAt;
  if (delay > maxDelay) maxDelay = delay;
  buckets[Math.min(buckets.length - 1, Math.max(0, Math.floor(delay / BUCKET_MS)))]++;
  samples++;
}

/** `"id":N` and `"sentAt":T` read from a message's JSON text without a full parse. */
function recordText(at: Position, text: string, from: number): void {
  const idAt = text.indexOf('"id":', from) + 5;
  const id = Number.parseInt(text.slice(idAt, text.indexOf(',', idAt)), 10);
  const sentAtAt = text.indexOf('"sentAt":', idAt) + 9;
  record(at, id, Number(text.slice(sentAtAt, text.indexOf('}', sentAtAt))));
}

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

function subscribeWs(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const at: Position = { last: -1 };
    ws.on('message', (raw: Buffer) => {
      // Cheap field reads, not a full parse: the benchmark must not be bottlenecked by its own client.
      const text = raw.toString('latin1');
      if (text.charCodeAt(10) !== 109) {
        // Not {"event":"message",…}; subscribed/presence.
        if (text.startsWith('{"event":"subscribed"')) resolve();
        return;
      }
      recordText(at, text, 0);
    });
    ws.once('error', reject);
    ws.once('close', () => reject(new Error('closed before subscribed')));
    subscribers.push({ open: () => ws.readyState === WebSocket.OPEN, close: () => ws.terminate() });
  });
}

/** An SSE reader: node:http, events split at blank lines (WHATWG HTML §9.2.6), `message` events recorded. */
function subscribeSse(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const at: Position = { last: -1 };
    let open = false;
    let pending = '';
    const req: ClientRequest = request(
      url,
      { agent: false, headers: { accept: 'text/event-stream' } },
      (res) => {
        if (res.statusCode !== 200) {
          reject(new Error(`SSE ${url}: HTTP ${res.statusCode}`));
          res.resume();
          return;
        }
        open = true;
        res.setEncoding('latin1');
        res.on('data', (chunk: string) => {
          pending = pending === '' ? chunk : pending + chunk;
          let start = 0;
          for (let end = pending.indexOf('\n\n'); end >= 0; end = pending.indexOf('\n\n', start)) {
            // "id: N\nevent: message\ndata: {…}" — the event name sits after the id line.
            const eventAt = pending.indexOf('event: ', start);
            if (eventAt >= 0 && eventAt < end) {
              const name = pending.charCodeAt(eventAt + 7);
              if (name === 109 /* m */) recordText(at, pending, eventAt);
              else if (name === 115 /* s */ && pending.startsWith('subscribed', eventAt + 7)) resolve();
            }
            start = end + 2;
          }
          pending = start === pending.length ? '' : pending.slice(start);
        });
        res.on('close', () => {
          open = false;
          reject(new Error('SSE stream ended before subscribed'));
        });
      },
    );
    req.once('error', reject);
    req.end();
    subscribers.push({ open: () => open, close: () => req.destroy() });
  });
}

function subscribeSocketIo(url: string, channel: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket: Socket = io(url, {
      transports: ['websocket'],
      forceNew: true,
      reconnection: false,
      query: { channel },
    });
    const at: Position = { last: -1 };
    socket.on('message', (message: { id: number; data: { sentAt: number } }) =>
      record(at, message.id, message.data.sentAt),
    );
    // The server joins the room before it answers the namespace connect, so "joined" follows "connect".
    socket.once('joined', () => resolve());
    socket.once('connect_error', reject);
    socket.once('disconnect', (reason) => reject(new Error(`disconnected before joined: ${reason}`)));
    subscribers.push({ open: () => socket.connected, close: () => socket.disconnect() });
  });
}

function subscribe(command: Extract<SubscriberCommand, { type: 'open' }>): Promise<void> {
  switch (command.kind) {
    case 'ws':
      return subscribeWs(command.url);
    case 'sse':
      return subscribeSse(command.url);
    case 'socketio':
      return subscribeSocketIo(command.url, command.channel);
  }
}

process.on('message', async (command: SubscriberCommand) => {
  if (command.type === 'open') {
    const started = performance.now();
    let failed = 0;
    let firstError = '';
    for (let i = 0; i < command.count; i += command.batch) {
      const batch = Math.min(command.batch, command.count - i);
      const results = await Promise.allSettled(Array.from({ length: batch }, () => subscribe(command)));
      for (const r of results) {
        if (r.status === 'rejected') {
          failed++;
          firstError ||= String(r.reason?.message ?? r.reason);
        }
      }
    }
    process.send!({
      type: 'opened',
      open: command.count - failed,
      failed,
      firstError,
      seconds: (performance.now() - started) / 1000,
    });
  } else if (command.type === 'mark') {
    reset();
    process.send!({ type: 'marked' });
  } else if (command.type === 'read') {
    const report: WindowReport = {
      type: 'window',
      seconds: (performance.now() - markedAt) / 1000,
      open: subscribers.filter((s) => s.open()).length,
      delivered,
      missing,
      disordered,
      delayMs: { p50: quantile(0.5), p90: quantile(0.9), p99: quantile(0.99), max: maxDelay },
      histogram: [],
    };
    for (let i = 0; i < buckets.length; i++) if (buckets[i] > 0) report.histogram.push([i, buckets[i]]);
    process.send!(report);
  } else if (command.type === 'stop') {
    for (const s of subscribers) s.close();
    process.exit(0);
  }
});

// Stop with the benchmark: if its IPC channel closes, nothing is left behind.
process.on('disconnect', () => process.exit(0));
