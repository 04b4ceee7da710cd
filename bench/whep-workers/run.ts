/**
 * WHEP across both cores: the same fan-out (one ~1.5 Mbit/s 30 fps H.264 source over RTMP, N node-datachannel
 * viewers in separate processes) served with `webrtc.workers` 0 (everything in the main process) and N > 0
 * (viewers in worker processes). Per window: CPU of the main process and of each worker from /proc, their
 * event-loop utilisation (the probe in main, the workers' own gauges in /metrics), packets the server sent
 * per viewer (sessions API), packets received and lost at the viewers, machine CPU and load average.
 *
 *   node bench/whep-workers/run.ts [--workers 0,2] [--viewers 200] [--windows 3] [--window 8] [--procs 2] [--out F]
 */
import { fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { countsFlag, numberFlag, parseFlags } from '../fanout/options.ts';
import type { ProbeSample } from '../fanout/probe.ts';
import {
  ask,
  Children,
  cpuPercent,
  freePort,
  machinePercent,
  readMachine,
  readProc,
  sleep,
  startSubsecond,
  waitForTracks,
  x264RtmpSourceArgs,
} from '../fanout/processes.ts';
import { quantile, round } from '../fanout/stats.ts';
import { childPids } from './proc.ts';

const ROOT = join(import.meta.dirname, '../..');

const flags = parseFlags(
  'node bench/whep-workers/run.ts [--workers 0,2] [--viewers 200] [--windows 3] [--window 8] [--procs 2] [--out F]',
  {
    workers: { type: 'string', default: '0,2' },
    viewers: { type: 'string', default: '200' },
    windows: { type: 'string', default: '3' },
    window: { type: 'string', default: '8' },
    procs: { type: 'string', default: '2' },
    out: { type: 'string' },
  },
);
const layouts = countsFlag('workers', flags.workers, 0, 64);
const viewerCount = numberFlag('viewers', flags.viewers, 1, Number.POSITIVE_INFINITY, true);
const windows = numberFlag('windows', flags.windows, 1, 20, true);
const windowSeconds = numberFlag('window', flags.window, 1, 600);
const viewerProcesses = numberFlag('procs', flags.procs, 1, Number.POSITIVE_INFINITY, true);

interface ViewerReport {
  type: 'report';
  viewers: number;
  receiving: number;
  packets: number;
  lost: number;
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

const children = new Children();
process.on('exit', () => children.killAll());

async function measure(workers: number): Promise<Record<string, unknown>> {
  const workerPorts = await Promise.all(Array.from({ length: workers }, () => freePort()));
  const {
    child: server,
    base,
    rtmpPort,
  } = await startSubsecond(
    children,
    [
      ...['--hls.enabled', 'false', '--webrtc.workers', String(workers)],
      ...(workers ? ['--webrtc.workerUdpPorts', workerPorts.join(',')] : []),
      // These viewers send no receiver reports: the server must not free them for silence.
      ...['--webrtc.inactivityTimeoutMs', '600000'],
    ],
    ['ignore', 'inherit', 'pipe', 'ipc'],
  );
  const ffmpeg = children.spawn(
    'ffmpeg',
    'ffmpeg',
    x264RtmpSourceArgs(`rtmp://127.0.0.1:${rtmpPort}/bench/workers`, 600),
  );
  await waitForTracks(base, 'bench/workers');
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
    // The same readings, in the same order, at both ends of the window.
    const snapshot = async () => ({
      procs: pids.map(readProc),
      machine: readMachine(),
      probe: await ask<ProbeSample>(server.process, { type: 'sample' }, 'sample'),
      sent: await packetsSent(base),
      viewers: await reports(),
    });
    const { procs: p0, machine: m0, probe: s0, sent: sent0, viewers: v0 } = await snapshot();
    if (workers) await workerElu(base);
    await sleep(windowSeconds * 1000);
    const { procs: p1, machine: m1, probe: s1, sent: sent1, viewers: v1 } = await snapshot();
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
  const pick = (key: string) =>
    quantile(
      rows.map((r) => r[key] as number),
      0.5,
    );
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
    flags.out ?? `bench/results/whep-workers-${viewerCount}-${new Date().toISOString().slice(0, 10)}.json`,
  );
  writeFileSync(file, `${JSON.stringify({ at: new Date().toISOString(), results }, null, 2)}\n`);
  console.log(`results in ${file}`);
}

main().catch(async (error: Error) => {
  console.error(`bench failed: ${error.message}`);
  await children.stopAll();
  process.exit(1);
});
