/**
 * LL-HLS delivery capacity: one RTMP source, N hls.js-like clients (blocking playlist reload for the next part,
 * then that part) from a separate load-generator process. For each N: the server's CPU and memory from /proc,
 * responses per second from its counters, and how fast held requests are answered once their part completes
 * (in the server: part completion to response written; across clients: first to last client answered).
 *
 *   node bench/hls/run.ts [--clients 100,500,1000] [--seconds 15]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpuPercent, freePort, readProc, sleep } from '../fanout/processes.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const STREAM = 'live/bench';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '100,500,1000' },
    seconds: { type: 'string', default: '15' },
  },
});
const clientCounts = values.clients.split(',').map(Number);
const seconds = Number(values.seconds);

const children: ChildProcess[] = [];
function start(command: string, args: string[]): ChildProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return child;
}
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

interface ServerStats {
  hls: {
    playlists: number;
    parts: number;
    blockedResponseDelayMs: { p50: number; p99: number; max: number; samples: number };
    streams: { bytes: number }[];
  };
}

/** A fresh server and source for each N, so every figure (the server's delay histogram too) is that N's alone. */
async function measure(clients: number) {
  const httpPort = await freePort();
  const rtmpPort = await freePort();
  const server = start(process.execPath, [
    `${REPO}src/cli/main.ts`,
    'serve',
    ...['--http.host', '127.0.0.1', '--http.port', String(httpPort)],
    ...['--rtmp.host', '127.0.0.1', '--rtmp.port', String(rtmpPort), '--log.level', 'warn'],
  ]);
  const http = `http://127.0.0.1:${httpPort}`;
  for (let i = 0; i < 100; i++) {
    if (
      await fetch(`${http}/healthz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    await sleep(100);
  }
  const source = start('ffmpeg', [
    ...['-hide_banner', '-loglevel', 'error', '-re'],
    ...['-f', 'lavfi', '-i', 'testsrc2=size=854x480:rate=30'],
    ...['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000'],
    ...['-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-b:v', '1M', '-g', '60'],
    ...[
      '-pix_fmt',
      'yuv420p',
      '-c:a',
      'aac',
      '-b:a',
      '96k',
      '-f',
      'flv',
      `rtmp://127.0.0.1:${rtmpPort}/${STREAM}`,
    ],
  ]);
  const media = `${http}/hls/${STREAM}/media.m3u8`;
  for (let i = 0; i < 150; i++) {
    const text = await fetch(media).then(
      (r) => (r.ok ? r.text() : ''),
      () => '',
    );
    if ((text.match(/#EXTINF/g) ?? []).length >= 2) break;
    await sleep(200);
  }
  const serverStats = async () => (await (await fetch(`${http}/api/v1/server`)).json()) as ServerStats;
  const before = await serverStats();
  const cpu0 = readProc(server.pid!);
  const generator = start(process.execPath, [
    `${REPO}bench/hls/pollers.ts`,
    media,
    String(clients),
    String(seconds),
  ]);
  let out = '';
  generator.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  await new Promise((r) => generator.once('exit', r));
  const cpu1 = readProc(server.pid!);
  const after = await serverStats();
  source.kill('SIGKILL');
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  const load = JSON.parse(out.trim().split('\n').at(-1) ?? '{}');
  const served = after.hls.playlists + after.hls.parts - before.hls.playlists - before.hls.parts;
  const wall = (cpu1.at - cpu0.at) / 1000;
  return {
    clients,
    serverCpuPercent: Math.round(cpuPercent(cpu0, cpu1)),
    serverRssMB: Math.round(cpu1.rssBytes / 2 ** 20),
    heldMediaMB: Number(((after.hls.streams[0]?.bytes ?? 0) / 2 ** 20).toFixed(1)),
    responsesPerSecond: Math.round(served / wall),
    responsesPerCpuSecond: Math.round(served / (cpu1.cpuSeconds - cpu0.cpuSeconds)),
    heldResponseDelayMs: after.hls.blockedResponseDelayMs,
    client: load,
  };
}

const rows = [];
for (const clients of clientCounts) {
  const row = await measure(clients);
  rows.push(row);
  console.log(JSON.stringify(row));
}

console.log(
  '\n| clients | server CPU % | RSS MB | responses/s | responses per CPU-s | held response p50 / p99 ms (server) | fan-out spread p50 / p99 ms | part GET p50 / p99 ms | errors |',
);
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(
    `| ${r.clients} | ${r.serverCpuPercent} | ${r.serverRssMB} | ${r.responsesPerSecond} | ${r.responsesPerCpuSecond} | ${r.heldResponseDelayMs.p50} / ${r.heldResponseDelayMs.p99} | ${Math.round(r.client.fanOutSpreadMs.p50)} / ${Math.round(r.client.fanOutSpreadMs.p99)} | ${r.client.partFetchMs.p50.toFixed(1)} / ${r.client.partFetchMs.p99.toFixed(1)} | ${r.client.errors} |`,
  );
}
const dir = join(REPO, 'bench/results');
mkdirSync(dir, { recursive: true });
const file = join(dir, `hls-${new Date().toISOString().slice(0, 10)}.json`);
writeFileSync(file, `${JSON.stringify({ cores: availableParallelism(), seconds, rows }, null, 2)}\n`);
console.log(`\nwritten to ${file}`);
process.exit(0);
