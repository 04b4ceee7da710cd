/**
 * WHEP across both cores: the same fan-out (one ~1.5 Mbit/s 30 fps H.264 source over RTMP, N node-datachannel
 * viewers in separate processes) served with `webrtc.workers` 0 (everything in the main process) and N > 0
 * (viewers in worker processes). Per window: CPU of the main process and of each worker from /proc, their
 * event-loop utilisation (the probe in main, the workers' own gauges in /metrics), packets the server sent
 * per viewer (sessions API), packets received and lost at the viewers, machine CPU and load average.
 *
 *   node bench/whep-workers/run.ts [--workers 0,2] [--viewers 200] [--windows 3] [--window 8] [--procs 2] [--out F]
 */
import { type ChildProcess, fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { ProbeSample } from '../fanout/probe.ts';
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
import { childPids } from './proc.ts';

const ROOT = join(import.meta.dirname, '../..');

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const layouts = flag('workers', '0,2').split(',').map(Number);
const viewerCount = Number(flag('viewers', '200'));
const windows = Number(flag('windows', '3'));
const windowSeconds = Number(flag('window', '8'));
const viewerProcesses = Number(flag('procs', '2'));

interface ViewerReport {
  type: 'report';
  viewers: number;
  receiving: number;
  packets: number;
  lost: number;
}

function ask<T>(child: ChildProcess, message: object, type: string, ms = 180_000): Promise<T> {
  return within(
    ms,
    `${type} from a child`,
    new Promise<T>((resolve, reject) => {
      const onMessage = (reply: { type: string; message?: string }) => {
        if (reply.type !== type && reply.type !== 'error') return;
        child.off('message', onMessage);
        if (reply.type === 'error') reject(new Error(reply.message));
        else resolve(reply as T);
      };
      child.on('message', onMessage);
      child.send(message);
    }),
  );
}

async function packetsSent(base: string): Promise<number> {
  const { sessions } = (await (await fetch(`${base}/api/v1/webrtc/sessions`)).json()) as {
    sessions: { tracks?: { packetsSent: number }[] }[];
  };
  return sessions.reduce((a, s) => a + (s.tracks ?? []).reduce((b, t) => b + t.packetsSent, 0), 0);
}

/** Each worker's event-loop utilisation since the previous scrape, from /metrics. */
async function workerElu(base: string): Promise<number[]> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return [...text.matchAll(/^subsecond_webrtc_worker_event_loop_utilization\{worker="(\d+)"\} ([\d.e-]+)$/gm)]
    .sort((a, b) => Number(a[1]) - Number(b[1]))
    .map((m) => Number(m[2]));
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor(sorted.length / 2)] : 0;
}

const round = (n: number, digits = 1) => Number(n.toFixed(digits));
const children = new Children();
process.on('exit', () => children.killAll());

async function measure(workers: number): Promise<Record<string, unknown>> {
  const http = await freePort();
  const rtmp = await freePort();
  const udp = await freePort();
  const workerPorts = await Promise.all(Array.from({ length: workers }, () => freePort()));
  const server = children.spawn(
    'subsecond',
    process.execPath,
    [
      ...['--import', './bench/fanout/probe.ts', 'src/cli/main.ts', 'serve'],
      ...['--http.host', '127.0.0.1', '--http.port', String(http)],
      ...['--rtmp.host', '127.0.0.1', '--rtmp.port', String(rtmp)],
      ...['--webrtc.udpPort', String(udp), '--log.level', 'warn', '--hls.enabled', 'false'],
      ...['--webrtc.workers', String(workers)],
      ...(workers ? ['--webrtc.workerUdpPorts', workerPorts.join(',')] : []),
      // These viewers send no receiver reports: the server must not free them for silence.
      ...['--webrtc.inactivityTimeoutMs', '600000'],
    ],
    { cwd: ROOT, stdio: ['ignore', 'inherit', 'pipe', 'ipc'] },
  );
  const base = `http://127.0.0.1:${http}`;
  for (let i = 0; i < 150; i++) {
    if (
      await fetch(`${base}/healthz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    if (!server.running) throw new Error(`server exited: ${server.tail}`);
    await sleep(100);
  }
  const ffmpeg = children.spawn('ffmpeg', 'ffmpeg', [
    ...['-hide_banner', '-loglevel', 'error', '-re', '-f', 'lavfi'],
    ...['-i', 'testsrc2=size=640x360:rate=30,noise=alls=40:allf=t+u', '-t', '600'],
    ...['-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-g', '30', '-pix_fmt', 'yuv420p'],
    ...['-b:v', '1500k', '-maxrate', '1500k', '-bufsize', '750k', '-an', '-f', 'flv'],
    `rtmp://127.0.0.1:${rtmp}/bench/workers`,
  ]);
  for (let i = 0; i < 150; i++) {
    const r = await fetch(`${base}/api/v1/streams/bench/workers`);
    if (r.ok && ((await r.json()) as { tracks: unknown[] }).tracks.length > 0) break;
    await sleep(100);
  }
  const viewerProcs = Array.from({ length: viewerProcesses }, () =>
    fork(join(import.meta.dirname, 'viewers.ts'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
  );
  const url = `${base}/whep/bench/workers`;
  const share = (i: number) =>
    Math.floor(viewerCount / viewerProcesses) + (i < viewerCount % viewerProcesses ? 1 : 0);
  await Promise.all(viewerProcs.map((p, i) => ask(p, { type: 'add', count: share(i), url }, 'added')));
  await sleep(5000);
  const reports = () =>
    Promise.all(viewerProcs.map((p) => ask<ViewerReport>(p, { type: 'report' }, 'report')));
  const rows: Record<string, number | number[]>[] = [];
  for (let w = 0; w < windows; w++) {
    const pids = [server.pid, ...childPids(server.pid)];
    const p0 = pids.map(readProc);
    const m0 = readMachine();
    const s0 = await ask<ProbeSample>(server.process, { type: 'sample' }, 'sample');
    const sent0 = await packetsSent(base);
    const v0 = await reports();
    if (workers) await workerElu(base);
    await sleep(windowSeconds * 1000);
    const p1 = pids.map(readProc);
    const m1 = readMachine();
    const s1 = await ask<ProbeSample>(server.process, { type: 'sample' }, 'sample');
    const sent1 = await packetsSent(base);
    const v1 = await reports();
    const elus = workers ? await workerElu(base) : [];
    const seconds = (p1[0].at - p0[0].at) / 1000;
    const cpu = pids.map((_, i) => cpuPercent(p0[i], p1[i]));
    const active = s1.elu.active - s0.elu.active;
    const idle = s1.elu.idle - s0.elu.idle;
    const received = v1.reduce((a, r) => a + r.packets, 0) - v0.reduce((a, r) => a + r.packets, 0);
    const lost = v1.reduce((a, r) => a + r.lost, 0) - v0.reduce((a, r) => a + r.lost, 0);
    const row = {
      window: w + 1,
      mainCpuPercent: round(cpu[0]),
      workerCpuPercent: cpu.slice(1).map((c) => round(c)),
      totalServerCpuPercent: round(cpu.reduce((a, b) => a + b, 0)),
      busiestProcessCpuPercent: round(Math.max(...cpu)),
      mainElu: round(active / (active + idle), 3),
      workerElu: elus.map((e) => round(e, 3)),
      sentPacketsPerViewerPerSecond: Math.round((sent1 - sent0) / viewerCount / seconds),
      receiving: v1.reduce((a, r) => a + r.receiving, 0),
      receivedPacketsPerSecond: Math.round(received / seconds),
      packetsLost: lost,
      mainRssMiB: round(p1[0].rssBytes / 2 ** 20),
      workerRssMiB: p1.slice(1).map((p) => round(p.rssBytes / 2 ** 20)),
      machineCpuPercentOf200: round(machinePercent(m0, m1, 2)),
      loadAverage1m: round(loadavg()[0], 2),
    };
    rows.push(row);
    console.log(JSON.stringify({ workers, viewers: viewerCount, ...row }));
  }
  for (const p of viewerProcs) p.send({ type: 'close' });
  await sleep(500);
  await ffmpeg.stop();
  await server.stop();
  const pick = (key: string) => median(rows.map((r) => r[key] as number));
  return {
    workers,
    viewers: viewerCount,
    median: {
      mainCpuPercent: pick('mainCpuPercent'),
      totalServerCpuPercent: pick('totalServerCpuPercent'),
      busiestProcessCpuPercent: pick('busiestProcessCpuPercent'),
      mainElu: pick('mainElu'),
      sentPacketsPerViewerPerSecond: pick('sentPacketsPerViewerPerSecond'),
      machineCpuPercentOf200: pick('machineCpuPercentOf200'),
      loadAverage1m: pick('loadAverage1m'),
    },
    windows: rows,
  };
}

async function main(): Promise<void> {
  const results = [];
  for (const workers of layouts) results.push(await measure(workers));
  for (const r of results)
    console.log(JSON.stringify({ workers: r.workers, viewers: r.viewers, ...(r.median as object) }));
  const file = join(
    ROOT,
    flag('out', `bench/results/whep-workers-${viewerCount}-${new Date().toISOString().slice(0, 10)}.json`),
  );
  writeFileSync(file, `${JSON.stringify({ at: new Date().toISOString(), results }, null, 2)}\n`);
  console.log(`results in ${file}`);
}

main().catch(async (error: Error) => {
  console.error(`bench failed: ${error.message}`);
  await children.stopAll();
  process.exit(1);
});
