/**
 * Messaging fan-out benchmark: one channel, N WebSocket subscribers in a separate process, one publisher at a
 * fixed rate. Reports delivered messages/s, publish→deliver delay p50/p99 (measured in the subscribers), the
 * server's CPU (from /proc, % of one core) and resident memory per idle connection.
 *
 *   npm run bench:messaging -- --subscribers 100,1000,5000 --rate 100 --seconds 10
 */
import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import {
  Children,
  cpuPercent,
  freePort,
  machinePercent,
  readMachine,
  readProc,
  sleep,
  within,
} from '../fanout/processes.ts';
import type { SubscriberCommand, WindowReport } from './subscribers.ts';

const root = join(import.meta.dirname, '../..');
const { values } = parseArgs({
  options: {
    subscribers: { type: 'string', default: '100,1000,5000' },
    rate: { type: 'string', default: '100' },
    size: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '10' },
    windows: { type: 'string', default: '2' },
    out: { type: 'string' },
  },
});
const counts = values.subscribers.split(',').map(Number);
const rate = Number(values.rate);
const size = Number(values.size);
const seconds = Number(values.seconds);
const windows = Number(values.windows);
const CHANNEL = 'bench:fanout';

const children = new Children();
process.on('exit', () => children.killAll());
process.on('SIGINT', () => process.exit(130));

interface PhaseResult {
  subscribers: number;
  open: number;
  rssPerConnectionBytes: number;
  windows: (WindowReport & {
    serverCpuPercent: number;
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

/** Publishes `rate` messages/s of about `size` bytes of data, paced against the clock, not a drifting timer. */
function startPublisher(url: string): Promise<{ stop(): void; published(): number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/ws/channels/`, { perMessageDeflate: false });
    const pad = 'x'.repeat(Math.max(0, size - 30));
    let sent = 0;
    let stopped = false;
    ws.once('error', reject);
    ws.once('open', () => {
      const started = performance.now();
      const tick = () => {
        if (stopped) return;
        const due = Math.floor(((performance.now() - started) / 1000) * rate);
        for (; sent < due; sent++) {
          const sentAt = performance.timeOrigin + performance.now();
          ws.send(
            `{"op":"publish","channel":"${CHANNEL}","type":"chat","data":{"pad":"${pad}","sentAt":${sentAt}}}`,
          );
        }
        setTimeout(tick, Math.max(1, 1000 / rate / 2));
      };
      tick();
      resolve({
        stop: () => {
          stopped = true;
          ws.close();
        },
        published: () => sent,
      });
    });
  });
}

async function phase(count: number): Promise<PhaseResult> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const server = children.spawn('subsecond', process.execPath, [
    join(root, 'src/cli/main.ts'),
    'serve',
    ...[
      '--http.host',
      '127.0.0.1',
      '--http.port',
      String(port),
      '--rtmp.enabled',
      'false',
      '--log.level',
      'warn',
    ],
    ...['--messaging.publishRatePerSecond', '1000000', '--messaging.publishBurst', '1000000'],
    ...['--messaging.maxConnectionsPerIp', '1000000'],
  ]);
  try {
    await healthy(url);
    await sleep(1000);
    const base = readProc(server.pid).rssBytes;
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
      const opened = await ask<{ open: number; failed: number; seconds: number }>(
        { type: 'open', url: `${url.replace('http', 'ws')}/ws/channels/${CHANNEL}`, count, batch: 200 },
        'opened',
      );
      console.log(
        `${count} subscribers: ${opened.open} open (${opened.failed} failed) in ${opened.seconds.toFixed(1)} s`,
      );
      await sleep(2000);
      const idle = readProc(server.pid).rssBytes;
      const rssPerConnectionBytes = Math.round((idle - base) / Math.max(1, opened.open));
      const publisher = await startPublisher(url);
      await sleep(2000);
      const results: PhaseResult['windows'] = [];
      for (let w = 0; w < windows; w++) {
        await ask({ type: 'mark' }, 'marked');
        const published0 = publisher.published();
        const cpu0 = readProc(server.pid);
        const gen0 = readProc(generator.pid!);
        const machine0 = readMachine();
        await sleep(seconds * 1000);
        const cpu1 = readProc(server.pid);
        const gen1 = readProc(generator.pid!);
        const machine1 = readMachine();
        const report = await ask<WindowReport>({ type: 'read' }, 'window');
        const serverCpuPercent = cpuPercent(cpu0, cpu1);
        const generatorCpuPercent = cpuPercent(gen0, gen1);
        const machineCpuPercent = machinePercent(machine0, machine1, cpus().length);
        results.push({
          ...report,
          serverCpuPercent,
          generatorCpuPercent,
          machineCpuPercent,
          published: publisher.published() - published0,
        });
        console.log(
          `  window ${w + 1}: ${(report.delivered / report.seconds).toFixed(0)} delivered/s, ` +
            `p50 ${report.delayMs.p50.toFixed(1)} ms, p99 ${report.delayMs.p99.toFixed(1)} ms, ` +
            `server CPU ${serverCpuPercent.toFixed(0)} %, subscribers' CPU ${generatorCpuPercent.toFixed(0)} %, ` +
            `machine ${machineCpuPercent.toFixed(0)} %, missing ${report.missing}, disordered ${report.disordered}`,
        );
      }
      publisher.stop();
      return { subscribers: count, open: opened.open, rssPerConnectionBytes, windows: results };
    } finally {
      generator.send({ type: 'stop' });
      generator.kill();
    }
  } finally {
    await server.stop();
  }
}

const results: PhaseResult[] = [];
for (const count of counts) results.push(await phase(count));

const rows = [
  [
    'subscribers',
    'msg/s in',
    'delivered msg/s',
    'p50 ms',
    'p99 ms',
    'server CPU %',
    'delivered/s per server core',
    'subscribers CPU %',
    'machine CPU %',
    'server RSS/conn',
    'lost',
  ],
  ...results.map((r) => {
    const best = [...r.windows].sort((a, b) => a.delayMs.p99 - b.delayMs.p99)[0];
    const perSecond = best.delivered / best.seconds;
    return [
      String(r.subscribers),
      String(rate),
      perSecond.toFixed(0),
      best.delayMs.p50.toFixed(1),
      best.delayMs.p99.toFixed(1),
      best.serverCpuPercent.toFixed(0),
      (perSecond / Math.max(0.01, best.serverCpuPercent / 100)).toFixed(0),
      best.generatorCpuPercent.toFixed(0),
      best.machineCpuPercent.toFixed(0),
      `${(r.rssPerConnectionBytes / 1024).toFixed(1)} KiB`,
      String(r.windows.reduce((n, w) => n + w.missing + w.disordered, 0)),
    ];
  }),
];
const table = [
  `| ${rows[0].join(' | ')} |`,
  `|${rows[0].map(() => '---').join('|')}|`,
  ...rows.slice(1).map((r) => `| ${r.join(' | ')} |`),
].join('\n');
console.log(`\n${table}\n(window with the lowest p99 of ${windows}; ${rate} msg/s of ${size} B)`);

const out =
  values.out ?? join(root, 'bench/results', `messaging-${new Date().toISOString().slice(0, 10)}.json`);
mkdirSync(join(out, '..'), { recursive: true });
writeFileSync(
  out,
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
      workload: { channel: CHANNEL, rate, size, seconds, windows },
      results,
    },
    null,
    2,
  )}\n`,
);
console.log(`results in ${out}`);
await children.stopAll();
