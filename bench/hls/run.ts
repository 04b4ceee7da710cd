/**
 * LL-HLS delivery capacity: one RTMP source, N hls.js-like clients (blocking playlist reload for the next part,
 * then that part) from a separate load-generator process. For each N: the server's CPU and memory from /proc,
 * responses per second from its counters, and how fast held requests are answered once their part completes
 * (in the server: part completion to response written; across clients: first to last client answered).
 *
 * Beside it, nginx with Debian's RTMP module (libnginx-mod-rtmp) serving classic HLS from the same source
 * (1 s fragments, 4 s playlist; it has no LL-HLS) to plain live-HLS clients.
 *
 *   node bench/hls/run.ts [--clients 100,500,1000] [--seconds 15] [--server subsecond|nginx|both]
 *                         [--generators K] [--nice N] [--pin] [--out FILE]
 *
 * --generators K splits the clients over K load-generator processes (one Node event loop saturates near
 * 7,000 LL-HLS responses per second), their figures merged. --nice N runs the Subsecond server under nice(1):
 * on a machine shared with other work, a negative N approximates cores of its own. --pin puts the server (and
 * nginx) on CPU 0 and the source and generators on the other CPUs (taskset(1)).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DelayHistogram } from '../../src/core/DelayHistogram.ts';
import { cpuPercent, freePort, onCpus, pinCpus, readProc, sleep } from '../fanout/processes.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const STREAM = 'live/bench';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '100,500,1000' },
    seconds: { type: 'string', default: '15' },
    server: { type: 'string', default: 'both' },
    out: { type: 'string', default: '' },
    generators: { type: 'string', default: '1' },
    nice: { type: 'string', default: '0' },
    pin: { type: 'boolean', default: false },
  },
});
/**
 * --pin: the server on CPU 0, the source and the load generators on the others (taskset(1)), so the server's
 * write loop is not preempted by its own load; figures then describe a server with a core of its own.
 */
const pin = values.pin;
const cpus = pin ? pinCpus() : undefined;
/** The Subsecond server's nice(1) value: below 0, it is scheduled ahead of the other tenants of a shared machine. */
const serverNice = Number(values.nice);
if (!Number.isInteger(serverNice) || serverNice < -20 || serverNice > 19) {
  throw new Error(`--nice must be an integer from -20 to 19, got ${JSON.stringify(values.nice)}`);
}
const generators = Number(values.generators);
if (!Number.isInteger(generators) || generators < 1 || generators > 16) {
  throw new Error(`--generators must be an integer from 1 to 16, got ${JSON.stringify(values.generators)}`);
}
const servers = values.server === 'both' ? ['subsecond', 'nginx'] : [values.server];
const clientCounts = values.clients.split(',').map(Number);
const seconds = Number(values.seconds);

const children: ChildProcess[] = [];
/** A child on the load's CPUs under --pin, or the server's with `role` 'server'. */
function start(command: string, args: string[], role: 'server' | 'others' = 'others'): ChildProcess {
  const child = spawn(...onCpus(cpus?.[role], command, args), { stdio: ['ignore', 'pipe', 'pipe'] });
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

function ffmpegSource(rtmpUrl: string): ChildProcess {
  return start('ffmpeg', [
    ...['-hide_banner', '-loglevel', 'error', '-re'],
    ...['-f', 'lavfi', '-i', 'testsrc2=size=854x480:rate=30'],
    ...['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000'],
    ...['-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-b:v', '1M', '-g', '30'],
    ...['-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '96k', '-f', 'flv', rtmpUrl],
  ]);
}

/** What one load-generator process prints (bench/hls/pollers.ts). */
interface GeneratorResult {
  clients: number;
  seconds: number;
  cpuPercent: number;
  playlists: number;
  parts: number;
  errors: number;
  bytes: number;
  partFetchBuckets: [number, number][];
  partFetchMaxMs: number;
  /** Per part URI: wall ms its first and last client saw it listed, and how many did. */
  seen: [string, number, number, number][];
}

function runGenerator(url: string, clients: number, mode: string): Promise<GeneratorResult> {
  const args = [`${REPO}bench/hls/pollers.ts`, url, String(clients), String(seconds), mode];
  const generator = start(process.execPath, args);
  let out = '';
  generator.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  return new Promise((resolve, reject) => {
    generator.once('exit', (code) => {
      const line = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0 || !line.startsWith('{')) reject(new Error(`load generator exited ${code}: ${line}`));
      else resolve(JSON.parse(line) as GeneratorResult);
    });
  });
}

/** The clients split over the generator processes, their figures merged. */
async function runPollers(url: string, clients: number, mode: string) {
  const shares = Array.from(
    { length: Math.min(generators, clients) },
    (_, i) => Math.floor(clients / generators) + (i < clients % generators ? 1 : 0),
  );
  const results = await Promise.all(shares.map((n) => runGenerator(url, n, mode)));
  const sum = (f: (r: GeneratorResult) => number) => results.reduce((n, r) => n + f(r), 0);
  const fetch = new DelayHistogram();
  for (const r of results) {
    for (const [i, n] of r.partFetchBuckets) {
      fetch.counts[i] += n;
      fetch.count += n;
    }
    fetch.max = Math.max(fetch.max, r.partFetchMaxMs);
  }
  // Fan-out spread: for parts that (nearly) every client followed, first to last client being answered.
  const seen = new Map<string, { first: number; last: number; count: number }>();
  for (const r of results) {
    for (const [uri, first, last, count] of r.seen) {
      const m = seen.get(uri);
      if (!m) seen.set(uri, { first, last, count });
      else {
        m.first = Math.min(m.first, first);
        m.last = Math.max(m.last, last);
        m.count += count;
      }
    }
  }
  const spreads = [...seen.values()]
    .filter((m) => m.count >= clients * 0.9)
    .map((m) => m.last - m.first)
    .sort((a, b) => a - b);
  const spreadQuantile = (q: number) =>
    spreads.length ? spreads[Math.min(spreads.length - 1, Math.ceil(q * spreads.length) - 1)] : 0;
  const elapsed = Math.max(...results.map((r) => r.seconds));
  const playlists = sum((r) => r.playlists);
  const parts = sum((r) => r.parts);
  return {
    clients,
    generators: results.length,
    generatorCpuPercent: Math.round(sum((r) => r.cpuPercent)),
    seconds: elapsed,
    playlists,
    parts,
    errors: sum((r) => r.errors),
    bytes: sum((r) => r.bytes),
    responsesPerSecond: Math.round((playlists + parts) / elapsed),
    partFetchMs: { p50: fetch.quantile(0.5), p99: fetch.quantile(0.99) },
    fanOutSpreadMs: { p50: spreadQuantile(0.5), p99: spreadQuantile(0.99), parts: spreads.length },
  };
}

/** The worker processes of an nginx master (proc(5): the children of each of its threads). */
function nginxWorkers(master: number): number[] {
  const pids: number[] = [];
  for (const task of readdirSync(`/proc/${master}/task`)) {
    const children = readFileSync(`/proc/${master}/task/${task}/children`, 'latin1').trim();
    if (children) pids.push(...children.split(' ').map(Number));
  }
  return pids;
}

/** nginx + RTMP module with its own prefix and config on loopback ports, one worker; plain HLS clients. */
async function measureNginx(clients: number) {
  const dir = mkdtempSync(join(tmpdir(), 'subsecond-bench-nginx-'));
  chmodSync(dir, 0o777);
  mkdirSync(join(dir, 'hls'));
  chmodSync(join(dir, 'hls'), 0o777);
  const httpPort = await freePort();
  const rtmpPort = await freePort();
  writeFileSync(
    join(dir, 'nginx.conf'),
    `load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 8192; }
rtmp {
  server {
    listen 127.0.0.1:${rtmpPort};
    application live { live on; hls on; hls_path ${dir}/hls; hls_fragment 1s; hls_playlist_length 4s; }
  }
}
http {
  access_log off;
  sendfile on;
  keepalive_requests 100000;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${httpPort};
    location /hls/ {
      types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }
      alias ${dir}/hls/;
      add_header Cache-Control no-cache;
      add_header Access-Control-Allow-Origin *;
    }
  }
}
`,
  );
  const nginx = start('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')], 'server');
  await sleep(500);
  const source = ffmpegSource(`rtmp://127.0.0.1:${rtmpPort}/live/bench`);
  const playlist = `http://127.0.0.1:${httpPort}/hls/bench.m3u8`;
  for (let i = 0; i < 150; i++) {
    const text = await fetch(playlist).then(
      (r) => (r.ok ? r.text() : ''),
      () => '',
    );
    if ((text.match(/#EXTINF/g) ?? []).length >= 3) break;
    await sleep(200);
  }
  const pids = [nginx.pid!, ...nginxWorkers(nginx.pid!)];
  const before = pids.map(readProc);
  const load = await runPollers(playlist, clients, 'classic');
  const after = pids.map(readProc);
  source.kill('SIGKILL');
  nginx.kill('SIGTERM');
  await new Promise((r) => nginx.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
  const cpuSeconds = after.reduce((n, a, i) => n + a.cpuSeconds - before[i].cpuSeconds, 0);
  const wall = (after[0].at - before[0].at) / 1000;
  const served = load.playlists + load.parts;
  return {
    server: 'nginx-rtmp (classic HLS)',
    clients,
    serverCpuPercent: Math.round((cpuSeconds / wall) * 100),
    serverRssMB: Math.round(after.reduce((n, a) => n + a.rssBytes, 0) / 2 ** 20),
    responsesPerSecond: Math.round(served / wall),
    responsesPerCpuSecond: cpuSeconds > 0 ? Math.round(served / cpuSeconds) : 0,
    client: load,
  };
}

/** A fresh server and source for each N, so every figure (the server's delay histogram too) is that N's alone. */
async function measure(clients: number) {
  const httpPort = await freePort();
  const rtmpPort = await freePort();
  const serve = [
    `${REPO}src/cli/main.ts`,
    'serve',
    ...['--http.host', '127.0.0.1', '--http.port', String(httpPort)],
    ...['--rtmp.host', '127.0.0.1', '--rtmp.port', String(rtmpPort), '--log.level', 'warn'],
  ];
  // nice(1) execs node in its own process, so the pid read from /proc is the server's.
  const server =
    serverNice === 0
      ? start(process.execPath, serve, 'server')
      : start('nice', ['-n', String(serverNice), process.execPath, ...serve], 'server');
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
  const source = ffmpegSource(`rtmp://127.0.0.1:${rtmpPort}/${STREAM}`);
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
  const load = await runPollers(media, clients, 'll');
  const cpu1 = readProc(server.pid!);
  const after = await serverStats();
  source.kill('SIGKILL');
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  const served = after.hls.playlists + after.hls.parts - before.hls.playlists - before.hls.parts;
  const wall = (cpu1.at - cpu0.at) / 1000;
  return {
    server: 'subsecond (LL-HLS)',
    clients,
    /** 1, 5 and 15 minute load averages at the end of the window: what else the machine was doing. */
    loadAverage: loadavg().map((n) => Number(n.toFixed(2))),
    serverCpuPercent: Math.round(cpuPercent(cpu0, cpu1)),
    /** The kernel's share of it: on loopback, sending includes delivering into the client's socket. */
    serverSystemCpuPercent: Math.round(((cpu1.systemSeconds - cpu0.systemSeconds) / wall) * 100),
    serverRssMB: Math.round(cpu1.rssBytes / 2 ** 20),
    heldMediaMB: Number(((after.hls.streams[0]?.bytes ?? 0) / 2 ** 20).toFixed(1)),
    responsesPerSecond: Math.round(served / wall),
    responsesPerCpuSecond: Math.round(served / (cpu1.cpuSeconds - cpu0.cpuSeconds)),
    heldResponseDelayMs: after.hls.blockedResponseDelayMs,
    client: load,
  };
}

type Row = Awaited<ReturnType<typeof measure>> | Awaited<ReturnType<typeof measureNginx>>;
const rows: Row[] = [];
for (const clients of clientCounts) {
  for (const server of servers) {
    const row = server === 'nginx' ? await measureNginx(clients) : await measure(clients);
    rows.push(row);
    console.log(JSON.stringify(row));
  }
}

console.log(
  '\n| server | clients | generators (CPU %) | server CPU % | RSS MB | responses/s | responses per CPU-s | held response p50 / p99 ms (server) | segment/part GET p50 / p99 ms | errors |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const held =
    'heldResponseDelayMs' in r
      ? `${r.heldResponseDelayMs.p50.toFixed(1)} / ${r.heldResponseDelayMs.p99.toFixed(1)}`
      : '—';
  console.log(
    `| ${r.server} | ${r.clients} | ${r.client.generators} (${r.client.generatorCpuPercent}) | ${r.serverCpuPercent} | ${r.serverRssMB} | ${r.responsesPerSecond} | ${r.responsesPerCpuSecond} | ${held} | ${r.client.partFetchMs.p50.toFixed(1)} / ${r.client.partFetchMs.p99.toFixed(1)} | ${r.client.errors} |`,
  );
}
const dir = join(REPO, 'bench/results');
mkdirSync(dir, { recursive: true });
const file = values.out || join(dir, `hls-${new Date().toISOString().slice(0, 10)}.json`);
const meta = { cores: availableParallelism(), seconds, generators, serverNice, pin, loadAverage: loadavg() };
writeFileSync(file, `${JSON.stringify({ ...meta, rows }, null, 2)}\n`);
console.log(`\nwritten to ${file}`);
process.exit(0);
