/**
 * Messaging fan-out benchmark: one channel, N subscribers in a separate process, one publisher at a fixed
 * rate, against Subsecond and (in the same run) Socket.IO on the same workload. Reports delivered messages/s,
 * publish→deliver delay p50/p99 (measured in the subscribers), the server's CPU (from /proc, % of one core),
 * delivered messages per server core-second, and resident memory per idle connection.
 *
 *   npm run bench:messaging -- [--subscribers 100,1000,5000] [--rate 100] [--seconds 10] [--windows 2]
 *                              [--server subsecond|socketio|both] [--transport ws|sse] [--pin]
 *
 * `--transport sse` reads Subsecond's Server-Sent Events endpoint (Socket.IO has no SSE transport).
 * `--pin` runs the server on CPU 0 and this process, the publisher and the subscribers on the other CPUs
 * (taskset(1)), so the server is not preempted by its own load: figures then describe a server with a core
 * of its own.
 */
import { execFileSync, fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { io } from 'socket.io-client';
import { WebSocket } from 'ws';
import {
  Children,
  cpuPercent,
  freePort,
  machinePercent,
  onCpus,
  pinCpus,
  readMachine,
  readProc,
  sleep,
  systemPercent,
  within,
} from '../fanout/processes.ts';
import type { SubscriberCommand, SubscriberKind, WindowReport } from './subscribers.ts';

const root = join(import.meta.dirname, '../..');
const { values } = parseArgs({
  options: {
    subscribers: { type: 'string', default: '100,1000,5000' },
    rate: { type: 'string', default: '100' },
    size: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '10' },
    windows: { type: 'string', default: '2' },
    server: { type: 'string', default: 'both' },
    transport: { type: 'string', default: 'ws' },
    /** V8 flags for both servers; the default is what `npm start` and the `subsecond` CLI run with. */
    'server-node-args': { type: 'string', default: '--max-semi-space-size=2' },
    pin: { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});
const counts = values.subscribers.split(',').map(Number);
const rate = Number(values.rate);
const size = Number(values.size);
const seconds = Number(values.seconds);
const windows = Number(values.windows);
const CHANNEL = 'bench:fanout';
type ServerKind = 'subsecond' | 'socketio';
if (values.server !== 'subsecond' && values.server !== 'socketio' && values.server !== 'both') {
  throw new Error(`--server is subsecond, socketio or both, not "${values.server}"`);
}
if (values.transport !== 'ws' && values.transport !== 'sse') {
  throw new Error(`--transport is ws or sse, not "${values.transport}"`);
}
const transport = values.transport;
const servers: ServerKind[] =
  values.server === 'both' ? ['subsecond', 'socketio'] : [values.server as ServerKind];
if (transport === 'sse' && servers.includes('socketio')) {
  throw new Error('--transport sse: Socket.IO has no Server-Sent Events transport; use --server subsecond');
}
for (const n of counts) {
  if (!Number.isInteger(n) || n < 1 || n > 20_000) throw new Error(`--subscribers: ${n} is not 1-20000`);
}
const serverNodeArgs = values['server-node-args'].split(' ').filter((a) => a !== '');
const pin = values.pin;
const pinned = pin ? pinCpus() : undefined;
if (pinned) {
  // Every thread of this process (-a), so the publisher, and the subscriber process forked from it, stay off
  // the server's CPU.
  execFileSync('taskset', ['-a', '-p', '-c', pinned.others, String(process.pid)], { stdio: 'ignore' });
}
/** The server's command line: under --pin, `taskset -c 0` execs it, so the child's pid stays the server's. */
function serverCommand(args: string[]): [string, string[]] {
  return onCpus(pinned?.server, process.execPath, args);
}

const children = new Children();
process.on('exit', () => children.killAll());
process.on('SIGINT', () => process.exit(130));

interface PhaseResult {
  server: ServerKind;
  transport: SubscriberKind;
  subscribers: number;
  open: number;
  rssPerConnectionBytes: number;
  /** Load average (1, 5, 15 min) when the phase started: what else the machine was doing. */
  loadAverage: number[];
  windows: (WindowReport & {
    serverCpuPercent: number;
    /** The kernel's part of it: on loopback each write also runs the receiving side's TCP stack. */
    serverSystemPercent: number;
    /** The subscribers' process: when it nears 100 % the load generator, not the server, sets the delay. */
    generatorCpuPercent: number;
    /** The whole machine (200 % = both cores of a 2-core machine), to show contention from other work. */
    machineCpuPercent: number;
    published: number;
  })[];
}

async function healthy(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {}
    await sleep(100);
  }
  throw new Error(`server at ${url} did not come up`);
}

interface Publisher {
  stop(): void;
  published(): number;
}

/**
 * Sends `rate` messages/s of about `size` bytes of data, paced against the clock, not a drifting timer;
 * each carries its send time. `send` is the server's publish call.
 */
function pace(send: (data: { pad: string; sentAt: number }) => void, stop: () => void): Publisher {
  const pad = 'x'.repeat(Math.max(0, size - 30));
  let sent = 0;
  let stopped = false;
  const started = performance.now();
  const tick = () => {
    if (stopped) return;
    const due = Math.floor(((performance.now() - started) / 1000) * rate);
    for (; sent < due; sent++) send({ pad, sentAt: performance.timeOrigin + performance.now() });
    setTimeout(tick, Math.max(1, 1000 / rate / 2));
  };
  tick();
  return {
    stop: () => {
      stopped = true;
      stop();
    },
    published: () => sent,
  };
}

function startPublisher(server: ServerKind, url: string): Promise<Publisher> {
  return new Promise((resolve, reject) => {
    if (server === 'socketio') {
      const socket = io(url, { transports: ['websocket'], forceNew: true, reconnection: false });
      socket.once('connect_error', reject);
      socket.once('connect', () =>
        resolve(
          pace(
            (data) => socket.emit('publish', { channel: CHANNEL, type: 'chat', data }),
            () => socket.disconnect(),
          ),
        ),
      );
      return;
    }
    const ws = new WebSocket(`${url.replace('http', 'ws')}/ws/channels/`, { perMessageDeflate: false });
    ws.once('error', reject);
    ws.once('open', () =>
      resolve(
        pace(
          (data) =>
            ws.send(
              `{"op":"publish","channel":"${CHANNEL}","type":"chat","data":{"pad":"${data.pad}","sentAt":${data.sentAt}}}`,
            ),
          () => ws.close(),
        ),
      ),
    );
  });
}

function spawnServer(server: ServerKind, port: number) {
  if (server === 'socketio') {
    return children.spawn(
      'socket.io',
      ...serverCommand([...serverNodeArgs, join(import.meta.dirname, 'socketio-server.ts'), String(port)]),
    );
  }
  return children.spawn(
    'subsecond',
    ...serverCommand([
      ...serverNodeArgs,
      join(root, 'src/cli/main.ts'),
      'serve',
      ...['--http.host', '127.0.0.1', '--http.port', String(port), '--rtmp.enabled', 'false'],
      ...['--log.level', 'warn'],
      ...['--messaging.publishRatePerSecond', '1000000', '--messaging.publishBurst', '1000000'],
      ...['--messaging.maxConnectionsPerIp', '1000000'],
    ]),
  );
}

function subscriberUrl(server: ServerKind, url: string): string {
  if (server === 'socketio') return url;
  return transport === 'sse'
    ? `${url}/sse/channels/${CHANNEL}`
    : `${url.replace('http', 'ws')}/ws/channels/${CHANNEL}`;
}

async function phase(server: ServerKind, count: number): Promise<PhaseResult> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawnServer(server, port);
  const kind: SubscriberKind = server === 'socketio' ? 'socketio' : transport;
  const loadAverage = loadavg().map((l) => Math.round(l * 100) / 100);
  try {
    await healthy(url);
    await sleep(1000);
    const base = readProc(child.pid).rssBytes;
    const generator = fork(join(import.meta.dirname, 'subscribers.ts'), {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const ask = <T>(command: SubscriberCommand, answer: string, ms = 120_000) =>
      within(
        ms,
        `subscribers: ${command.type}`,
        new Promise<T>((resolve) => {
          const on = (m: { type: string }) => {
            if (m.type !== answer) return;
            generator.off('message', on);
            resolve(m as T);
          };
          generator.on('message', on);
          generator.send(command);
        }),
      );
    try {
      const opened = await ask<{ open: number; failed: number; firstError: string; seconds: number }>(
        { type: 'open', kind, url: subscriberUrl(server, url), channel: CHANNEL, count, batch: 200 },
        'opened',
      );
      console.log(
        `${server} ${kind}, ${count} subscribers: ${opened.open} open (${opened.failed} failed${opened.firstError ? `: ${opened.firstError}` : ''}) in ${opened.seconds.toFixed(1)} s; load ${loadAverage.join(' ')}`,
      );
      await sleep(2000);
      const idle = readProc(child.pid).rssBytes;
      const rssPerConnectionBytes = Math.round((idle - base) / Math.max(1, opened.open));
      const publisher = await startPublisher(server, url);
      await sleep(2000);
      const results: PhaseResult['windows'] = [];
      for (let w = 0; w < windows; w++) {
        await ask({ type: 'mark' }, 'marked');
        const published0 = publisher.published();
        const cpu0 = readProc(child.pid);
        const gen0 = readProc(generator.pid!);
        const machine0 = readMachine();
        await sleep(seconds * 1000);
        const cpu1 = readProc(child.pid);
        const gen1 = readProc(generator.pid!);
        const machine1 = readMachine();
        const report = await ask<WindowReport>({ type: 'read' }, 'window');
        const serverCpuPercent = cpuPercent(cpu0, cpu1);
        const generatorCpuPercent = cpuPercent(gen0, gen1);
        const machineCpuPercent = machinePercent(machine0, machine1, cpus().length);
        results.push({
          ...report,
          serverCpuPercent,
          serverSystemPercent: systemPercent(cpu0, cpu1),
          generatorCpuPercent,
          machineCpuPercent,
          published: publisher.published() - published0,
        });
        console.log(
          `  window ${w + 1}: ${(report.delivered / report.seconds).toFixed(0)} delivered/s, ` +
            `p50 ${report.delayMs.p50.toFixed(1)} ms, p99 ${report.delayMs.p99.toFixed(1)} ms, ` +
            `server CPU ${serverCpuPercent.toFixed(0)} % (kernel ${systemPercent(cpu0, cpu1).toFixed(0)} %), subscribers' CPU ${generatorCpuPercent.toFixed(0)} %, ` +
            `machine ${machineCpuPercent.toFixed(0)} %, missing ${report.missing}, disordered ${report.disordered}`,
        );
      }
      publisher.stop();
      return {
        server,
        transport: kind,
        subscribers: count,
        open: opened.open,
        rssPerConnectionBytes,
        loadAverage,
        windows: results,
      };
    } finally {
      generator.send({ type: 'stop' });
      generator.kill();
    }
  } finally {
    await child.stop();
  }
}

/** Delivered messages per second of server CPU in a window (the issue's "per core" figure). */
function perCore(w: PhaseResult['windows'][number]): number {
  return w.delivered / w.seconds / Math.max(0.01, w.serverCpuPercent / 100);
}

/** The same per user-space core-second: the kernel's part, which on loopback also runs every receiver's TCP
 * stack, left out. */
function perUserCore(w: PhaseResult['windows'][number]): number {
  return w.delivered / w.seconds / Math.max(0.01, (w.serverCpuPercent - w.serverSystemPercent) / 100);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const results: PhaseResult[] = [];
// Servers alternate per subscriber count, so both meet the same machine within minutes of each other.
for (const count of counts) for (const server of servers) results.push(await phase(server, count));

const rows = [
  [
    'server',
    'transport',
    'subscribers',
    'msg/s in',
    'delivered msg/s',
    'p50 ms',
    'p99 ms',
    'server CPU %',
    'delivered/s per server core',
    'per user-space core',
    'subscribers CPU %',
    'machine CPU %',
    'server RSS/conn',
    'lost',
    'load avg',
  ],
  ...results.map((r) => {
    const m = (f: (w: PhaseResult['windows'][number]) => number) => median(r.windows.map(f));
    return [
      r.server,
      r.transport,
      String(r.subscribers),
      String(rate),
      m((w) => w.delivered / w.seconds).toFixed(0),
      m((w) => w.delayMs.p50).toFixed(1),
      m((w) => w.delayMs.p99).toFixed(1),
      m((w) => w.serverCpuPercent).toFixed(0),
      m(perCore).toFixed(0),
      m(perUserCore).toFixed(0),
      m((w) => w.generatorCpuPercent).toFixed(0),
      m((w) => w.machineCpuPercent).toFixed(0),
      `${(r.rssPerConnectionBytes / 1024).toFixed(1)} KiB`,
      String(r.windows.reduce((n, w) => n + w.missing + w.disordered, 0)),
      r.loadAverage[0].toFixed(2),
    ];
  }),
];
const table = [
  `| ${rows[0].join(' | ')} |`,
  `|${rows[0].map(() => '---').join('|')}|`,
  ...rows.slice(1).map((r) => `| ${r.join(' | ')} |`),
].join('\n');
console.log(`\n${table}\n(medians of ${windows} windows of ${seconds} s; ${rate} msg/s of ${size} B)`);

const ratios = counts.flatMap((count) => {
  const ours = results.find((r) => r.server === 'subsecond' && r.subscribers === count);
  const theirs = results.find((r) => r.server === 'socketio' && r.subscribers === count);
  if (!ours || !theirs) return [];
  const ratio = median(ours.windows.map(perCore)) / median(theirs.windows.map(perCore));
  console.log(
    `${count} subscribers: Subsecond delivers ${ratio.toFixed(2)}x Socket.IO's messages per server core`,
  );
  return [{ subscribers: count, perCoreRatio: ratio }];
});

const out =
  values.out ?? join(root, 'bench/results', `messaging-${new Date().toISOString().slice(0, 10)}.json`);
mkdirSync(join(out, '..'), { recursive: true });
writeFileSync(
  out,
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
      workload: { channel: CHANNEL, rate, size, seconds, windows, transport, serverNodeArgs, pin },
      results,
      ratios,
    },
    null,
    2,
  )}\n`,
);
console.log(`results in ${out}`);
await children.stopAll();
