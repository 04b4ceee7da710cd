/**
 * Messaging fan-out benchmark: one channel, N subscribers in a separate process, one publisher at a fixed
 * rate, against Subsecond and (in the same run) Socket.IO on the same workload. Reports delivered messages/s,
 * publish→deliver delay p50/p99 (measured in the subscribers), the server's CPU (from /proc, % of one core),
 * delivered messages per server core-second, and resident memory per idle connection.
 *
 *   npm run bench:messaging -- [--subscribers 100,1000,5000] [--rate 100] [--seconds 10] [--windows 2]
 *                              [--server subsecond|socketio|both] [--transport ws|sse] [--pin] [--nodes 1,2]
 *
 * `--nodes 1,2` runs each server as one node, then as N nodes on one Redis (a redis-server this benchmark
 * starts): Subsecond with `cluster.redis`, Socket.IO with `@socket.io/redis-adapter`. The publisher is on the
 * first node, the subscribers split evenly over the nodes (one subscriber process per node); the report adds
 * the delay seen on the other nodes (cross-node) and what Redis did per published message (INFO commandstats
 * and stats: commands, bytes in and out, its CPU). One node runs without Redis, as a single server does.
 *
 * `--transport sse` reads Subsecond's Server-Sent Events endpoint (Socket.IO has no SSE transport).
 * `--pin` runs the server on CPU 0 and this process, the publisher and the subscribers on the other CPUs
 * (taskset(1)), so the server is not preempted by its own load: figures then describe a server with a core
 * of its own.
 */
import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
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
import { BUCKET_MS, type SubscriberCommand, type SubscriberKind, type WindowReport } from './subscribers.ts';

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
    nodes: { type: 'string', default: '1' },
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
const nodeCounts = values.nodes.split(',').map(Number);
for (const n of nodeCounts) {
  if (!Number.isInteger(n) || n < 1 || n > 4) throw new Error(`--nodes: ${n} is not 1-4`);
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
  /** Server processes; above 1 they share one Redis. */
  nodes: number;
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
    /** Delay seen by subscribers on nodes other than the publisher's (nodes > 1). */
    crossNodeDelayMs: { p50: number; p99: number } | null;
    /** What Redis did in the window per published message (nodes > 1). */
    redis: RedisWindow | null;
  })[];
}

interface RedisWindow {
  commandsPerMessage: number;
  bytesInPerMessage: number;
  bytesOutPerMessage: number;
  cpuPercent: number;
}

async function healthy(url: string): Promise<void> {
  // Up to 60 s: a fresh Node loading the server's TypeScript takes long on a loaded 2-core machine.
  for (let i = 0; i < 600; i++) {
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

/** `redisUrl`: one node of several on that Redis. */
function spawnServer(server: ServerKind, port: number, redisUrl?: string, node = 0) {
  if (server === 'socketio') {
    return children.spawn(
      `socket.io ${node}`,
      ...serverCommand([
        ...serverNodeArgs,
        join(import.meta.dirname, 'socketio-server.ts'),
        String(port),
        ...(redisUrl ? [redisUrl] : []),
      ]),
    );
  }
  const cluster = redisUrl
    ? [
        ...['--cluster.redis', redisUrl, '--cluster.secret', 'bench-cluster-secret'],
        ...['--cluster.nodeId', `bench-${node}`, '--webrtc.enabled', 'false'],
      ]
    : [];
  return children.spawn(
    `subsecond ${node}`,
    ...serverCommand([
      ...serverNodeArgs,
      join(root, 'src/cli/main.ts'),
      'serve',
      ...['--http.host', '127.0.0.1', '--http.port', String(port), '--rtmp.enabled', 'false'],
      ...['--log.level', 'warn'],
      ...['--messaging.publishRatePerSecond', '1000000', '--messaging.publishBurst', '1000000'],
      ...['--messaging.maxConnectionsPerIp', '1000000'],
      ...cluster,
    ]),
  );
}

/** A redis-server of this run's own (no persistence), on CPUs other than a pinned server's. */
async function startBenchRedis() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'subsecond-bench-redis-'));
  const child = children.spawn(
    'redis-server',
    ...onCpus(pinned?.others, 'redis-server', [
      ...['--port', String(port), '--bind', '127.0.0.1', '--dir', dir],
      ...['--save', '', '--appendonly', 'no'],
    ]),
  );
  const url = `redis://127.0.0.1:${port}`;
  const admin = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  admin.on('error', () => {});
  for (let i = 0; (await admin.ping().catch(() => '')) !== 'PONG'; i++) {
    if (i > 50) throw new Error(`redis-server on port ${port} did not answer PING within 5 s: ${child.tail}`);
    await sleep(100);
  }
  return {
    url,
    pid: child.pid,
    admin,
    async stop() {
      admin.disconnect();
      await child.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Commands (INFO commandstats, what scripts run counted too, INFO itself left out) and bytes in and out. */
async function redisCounters(admin: Redis): Promise<{ commands: number; bytesIn: number; bytesOut: number }> {
  const text = (await admin.info('commandstats')) + (await admin.info('stats'));
  let commands = 0;
  let bytesIn = 0;
  let bytesOut = 0;
  for (const line of text.split('\r\n')) {
    const cmd = /^cmdstat_([a-z|]+):calls=(\d+)/.exec(line);
    if (cmd && cmd[1] !== 'info') commands += Number(cmd[2]);
    const bytes = /^total_net_(input|output)_bytes:(\d+)/.exec(line);
    if (bytes?.[1] === 'input') bytesIn = Number(bytes[2]);
    if (bytes?.[1] === 'output') bytesOut = Number(bytes[2]);
  }
  return { commands, bytesIn, bytesOut };
}

/** Quantiles of merged delay histograms ([bucket, count] pairs). */
function mergedQuantiles(histograms: [number, number][][]): { p50: number; p99: number } {
  const counts = new Map<number, number>();
  let samples = 0;
  for (const h of histograms) {
    for (const [bucket, n] of h) {
      counts.set(bucket, (counts.get(bucket) ?? 0) + n);
      samples += n;
    }
  }
  const ordered = [...counts].sort((x, y) => x[0] - y[0]);
  const at = (q: number) => {
    let seen = 0;
    for (const [bucket, n] of ordered) {
      seen += n;
      if (seen >= q * samples) return (bucket + 1) * BUCKET_MS;
    }
    return 0;
  };
  return { p50: at(0.5), p99: at(0.99) };
}

function subscriberUrl(server: ServerKind, url: string): string {
  if (server === 'socketio') return url;
  return transport === 'sse'
    ? `${url}/sse/channels/${CHANNEL}`
    : `${url.replace('http', 'ws')}/ws/channels/${CHANNEL}`;
}

async function phase(server: ServerKind, count: number, nodes: number): Promise<PhaseResult> {
  const redis = nodes > 1 ? await startBenchRedis() : null;
  const urls: string[] = [];
  const nodeProcesses: ReturnType<typeof spawnServer>[] = [];
  const kind: SubscriberKind = server === 'socketio' ? 'socketio' : transport;
  const loadAverage = loadavg().map((l) => Math.round(l * 100) / 100);
  const generators: ChildProcess[] = [];
  try {
    for (let i = 0; i < nodes; i++) {
      const port = await freePort();
      urls.push(`http://127.0.0.1:${port}`);
      nodeProcesses.push(spawnServer(server, port, redis?.url, i));
    }
    await Promise.all(urls.map(healthy));
    await sleep(1000);
    const rss = () => nodeProcesses.reduce((n, c) => n + readProc(c.pid).rssBytes, 0);
    const base = rss();
    const ask = <T>(generator: ChildProcess, command: SubscriberCommand, answer: string, ms = 120_000) =>
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
    // One subscriber process per node, its share of the subscribers on that node.
    for (let i = 0; i < nodes; i++) {
      generators.push(
        fork(join(import.meta.dirname, 'subscribers.ts'), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
      );
    }
    const share = (i: number) => Math.floor(count / nodes) + (i < count % nodes ? 1 : 0);
    const openedAll = await Promise.all(
      generators.map((g, i) =>
        ask<{ open: number; failed: number; firstError: string; seconds: number }>(
          g,
          {
            type: 'open',
            kind,
            url: subscriberUrl(server, urls[i]),
            channel: CHANNEL,
            count: share(i),
            batch: 200,
          },
          'opened',
        ),
      ),
    );
    const open = openedAll.reduce((n, o) => n + o.open, 0);
    const failed = openedAll.reduce((n, o) => n + o.failed, 0);
    const firstError = openedAll.map((o) => o.firstError).find((e) => e) ?? '';
    const openSeconds = Math.max(...openedAll.map((o) => o.seconds));
    console.log(
      `${server} ${kind}, ${count} subscribers on ${nodes} node(s): ${open} open (${failed} failed${firstError ? `: ${firstError}` : ''}) in ${openSeconds.toFixed(1)} s; load ${loadAverage.join(' ')}`,
    );
    await sleep(2000);
    const rssPerConnectionBytes = Math.round((rss() - base) / Math.max(1, open));
    const publisher = await startPublisher(server, urls[0]);
    await sleep(2000);
    const results: PhaseResult['windows'] = [];
    const cpuOf = () => nodeProcesses.map((c) => readProc(c.pid));
    for (let w = 0; w < windows; w++) {
      await Promise.all(generators.map((g) => ask(g, { type: 'mark' }, 'marked')));
      const published0 = publisher.published();
      const cpu0 = cpuOf();
      const gen0 = generators.map((g) => readProc(g.pid!));
      const machine0 = readMachine();
      const redis0 = redis ? { counters: await redisCounters(redis.admin), cpu: readProc(redis.pid) } : null;
      await sleep(seconds * 1000);
      const cpu1 = cpuOf();
      const gen1 = generators.map((g) => readProc(g.pid!));
      const machine1 = readMachine();
      const redis1 = redis ? { counters: await redisCounters(redis.admin), cpu: readProc(redis.pid) } : null;
      const published = publisher.published() - published0;
      const reports = await Promise.all(
        generators.map((g) => ask<WindowReport>(g, { type: 'read' }, 'window')),
      );
      const sum = (f: (i: number) => number) => nodeProcesses.reduce((n, _, i) => n + f(i), 0);
      const serverCpuPercent = sum((i) => cpuPercent(cpu0[i], cpu1[i]));
      const serverSystemPercent = sum((i) => systemPercent(cpu0[i], cpu1[i]));
      const generatorCpuPercent = sum((i) => cpuPercent(gen0[i], gen1[i]));
      const machineCpuPercent = machinePercent(machine0, machine1, cpus().length);
      const merged = mergedQuantiles(reports.map((r) => r.histogram));
      const report: WindowReport = {
        type: 'window',
        seconds: Math.max(...reports.map((r) => r.seconds)),
        open: reports.reduce((n, r) => n + r.open, 0),
        delivered: reports.reduce((n, r) => n + r.delivered, 0),
        missing: reports.reduce((n, r) => n + r.missing, 0),
        disordered: reports.reduce((n, r) => n + r.disordered, 0),
        delayMs: {
          p50: merged.p50,
          p90: Math.max(...reports.map((r) => r.delayMs.p90)),
          p99: merged.p99,
          max: Math.max(...reports.map((r) => r.delayMs.max)),
        },
        histogram: [],
      };
      const crossNodeDelayMs = nodes > 1 ? mergedQuantiles(reports.slice(1).map((r) => r.histogram)) : null;
      const redisWindow: RedisWindow | null =
        redis0 && redis1
          ? {
              commandsPerMessage:
                (redis1.counters.commands - redis0.counters.commands) / Math.max(1, published),
              bytesInPerMessage: (redis1.counters.bytesIn - redis0.counters.bytesIn) / Math.max(1, published),
              bytesOutPerMessage:
                (redis1.counters.bytesOut - redis0.counters.bytesOut) / Math.max(1, published),
              cpuPercent: cpuPercent(redis0.cpu, redis1.cpu),
            }
          : null;
      results.push({
        ...report,
        serverCpuPercent,
        serverSystemPercent,
        generatorCpuPercent,
        machineCpuPercent,
        published,
        crossNodeDelayMs,
        redis: redisWindow,
      });
      console.log(
        `  window ${w + 1}: ${(report.delivered / report.seconds).toFixed(0)} delivered/s, ` +
          `p50 ${report.delayMs.p50.toFixed(1)} ms, p99 ${report.delayMs.p99.toFixed(1)} ms` +
          (crossNodeDelayMs
            ? ` (other nodes p50 ${crossNodeDelayMs.p50.toFixed(1)}, p99 ${crossNodeDelayMs.p99.toFixed(1)})`
            : '') +
          `, server CPU ${serverCpuPercent.toFixed(0)} % (kernel ${serverSystemPercent.toFixed(0)} %), subscribers' CPU ${generatorCpuPercent.toFixed(0)} %, ` +
          `machine ${machineCpuPercent.toFixed(0)} %, missing ${report.missing}, disordered ${report.disordered}` +
          (redisWindow
            ? `; Redis ${redisWindow.commandsPerMessage.toFixed(1)} commands, ${redisWindow.bytesInPerMessage.toFixed(0)} B in, ${redisWindow.bytesOutPerMessage.toFixed(0)} B out per message, CPU ${redisWindow.cpuPercent.toFixed(0)} %`
            : ''),
      );
    }
    publisher.stop();
    return {
      server,
      transport: kind,
      subscribers: count,
      nodes,
      open,
      rssPerConnectionBytes,
      loadAverage,
      windows: results,
    };
  } finally {
    for (const g of generators) {
      if (g.connected) g.send({ type: 'stop' });
      g.kill();
    }
    await Promise.all(nodeProcesses.map((c) => c.stop()));
    await redis?.stop();
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
// Servers alternate per subscriber count (and node count), so both meet the same machine within minutes.
for (const nodes of nodeCounts) {
  for (const count of counts) for (const server of servers) results.push(await phase(server, count, nodes));
}

const rows = [
  [
    'server',
    'transport',
    'nodes',
    'subscribers',
    'msg/s in',
    'delivered msg/s',
    'p50 ms',
    'p99 ms',
    'other nodes p50/p99 ms',
    'server CPU %',
    'delivered/s per server core',
    'per user-space core',
    'subscribers CPU %',
    'machine CPU %',
    'server RSS/conn',
    'lost',
    'Redis commands/msg',
    'Redis B in/out per msg',
    'Redis CPU %',
    'load avg',
  ],
  ...results.map((r) => {
    const m = (f: (w: PhaseResult['windows'][number]) => number) => median(r.windows.map(f));
    return [
      r.server,
      r.transport,
      String(r.nodes),
      String(r.subscribers),
      String(rate),
      m((w) => w.delivered / w.seconds).toFixed(0),
      m((w) => w.delayMs.p50).toFixed(1),
      m((w) => w.delayMs.p99).toFixed(1),
      r.nodes > 1
        ? `${m((w) => w.crossNodeDelayMs?.p50 ?? 0).toFixed(1)} / ${m((w) => w.crossNodeDelayMs?.p99 ?? 0).toFixed(1)}`
        : '—',
      m((w) => w.serverCpuPercent).toFixed(0),
      m(perCore).toFixed(0),
      m(perUserCore).toFixed(0),
      m((w) => w.generatorCpuPercent).toFixed(0),
      m((w) => w.machineCpuPercent).toFixed(0),
      `${(r.rssPerConnectionBytes / 1024).toFixed(1)} KiB`,
      String(r.windows.reduce((n, w) => n + w.missing + w.disordered, 0)),
      r.nodes > 1 ? m((w) => w.redis?.commandsPerMessage ?? 0).toFixed(1) : '—',
      r.nodes > 1
        ? `${m((w) => w.redis?.bytesInPerMessage ?? 0).toFixed(0)} / ${m((w) => w.redis?.bytesOutPerMessage ?? 0).toFixed(0)}`
        : '—',
      r.nodes > 1 ? m((w) => w.redis?.cpuPercent ?? 0).toFixed(0) : '—',
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

const medianOf = (r: PhaseResult, f: (w: PhaseResult['windows'][number]) => number) =>
  median(r.windows.map(f));
const ratios = nodeCounts.flatMap((nodes) =>
  counts.flatMap((count) => {
    const find = (server: ServerKind) =>
      results.find((r) => r.server === server && r.subscribers === count && r.nodes === nodes);
    const ours = find('subsecond');
    const theirs = find('socketio');
    if (!ours || !theirs) return [];
    const ratio = medianOf(ours, perCore) / medianOf(theirs, perCore);
    const p99 = [medianOf(ours, (w) => w.delayMs.p99), medianOf(theirs, (w) => w.delayMs.p99)];
    console.log(
      `${count} subscribers on ${nodes} node(s): Subsecond delivers ${ratio.toFixed(2)}x Socket.IO's messages per server core; p99 ${p99[0].toFixed(1)} vs ${p99[1].toFixed(1)} ms`,
    );
    return [
      { subscribers: count, nodes, perCoreRatio: ratio, p99Ms: { subsecond: p99[0], socketio: p99[1] } },
    ];
  }),
);
// Cross-node added latency: the other nodes' p50 over the same server's single-node p50.
const crossNode = results.flatMap((r) => {
  const single = results.find(
    (o) => o.server === r.server && o.subscribers === r.subscribers && o.nodes === 1,
  );
  if (r.nodes === 1 || !single) return [];
  const added = medianOf(r, (w) => w.crossNodeDelayMs?.p50 ?? 0) - medianOf(single, (w) => w.delayMs.p50);
  console.log(
    `${r.server}, ${r.subscribers} subscribers on ${r.nodes} nodes: cross-node p50 adds ${added.toFixed(1)} ms over one node`,
  );
  return [{ server: r.server, subscribers: r.subscribers, nodes: r.nodes, addedP50Ms: added }];
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
      workload: {
        channel: CHANNEL,
        rate,
        size,
        seconds,
        windows,
        transport,
        serverNodeArgs,
        pin,
        nodeCounts,
      },
      results,
      ratios,
      crossNode,
    },
    null,
    2,
  )}\n`,
);
console.log(`results in ${out}`);
await children.stopAll();
