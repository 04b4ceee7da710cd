/**
 * LL-HLS through a real HTTP cache: nginx (Debian package) as a CDN edge with `proxy_cache` and
 * `proxy_cache_lock`, in front of the server. What a CDN needs from the origin is that its headers let the
 * cache do the work: identical blocking playlist requests from a whole audience collapse into one origin
 * request, parts are fetched from the origin once and then served from the cache, and a player (ffmpeg here)
 * plays through the edge.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { parseMediaPlaylist } from '../../src/protocols/hls/testing/m3u8.ts';
import { type RunningServer, startServer } from '../../src/server.ts';
import { ffprobe, killAll, publishTestSource, stop, waitFor } from '../helpers/processes.ts';

const NGINX = '/usr/sbin/nginx';
const execFileAsync = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'subsecond-hls-cdn-'));
let server: RunningServer;
let publisher: ChildProcess | undefined;
let nginx: ChildProcess | undefined;
let edge: string;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

before(async () => {
  // scripts/setup installs nginx (Debian) when it is missing; without it this test cannot be real.
  assert.ok(existsSync(NGINX), `${NGINX} is missing: run scripts/setup`);
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { host: '127.0.0.1', port: 0 },
    log: { level: 'warn' },
  });
  publisher = publishTestSource(`${server.rtmpUrl}/live/cdn`, { size: '640x360', rate: 30, gop: 30 });
  const port = await freePort();
  edge = `http://127.0.0.1:${port}`;
  mkdirSync(join(dir, 'cache'));
  const origin = new URL(server.httpUrl);
  // A CDN edge as nginx makes one: the cache key is the whole request URI (a blocking request's query names
  // the part it waits for), one origin request per key at a time (proxy_cache_lock), freshness from the
  // origin's Cache-Control.
  writeFileSync(
    join(dir, 'nginx.conf'),
    `daemon off;
user root;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  proxy_cache_path ${dir}/cache levels=1:2 keys_zone=hls:10m max_size=64m inactive=1m use_temp_path=off;
  upstream origin { server ${origin.host}; keepalive 16; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache hls;
      proxy_cache_key $request_uri;
      proxy_cache_lock on;
      proxy_cache_lock_timeout 10s;
      proxy_cache_lock_age 10s;
      proxy_read_timeout 30s;
      add_header X-Cache-Status $upstream_cache_status always;
    }
  }
}
`,
  );
  nginx = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], {
    stdio: 'inherit',
  });
  await waitFor('nginx to answer', async () => (await fetch(`${edge}/healthz`).catch(() => null))?.ok);
  await waitFor(
    'two complete HLS segments of live/cdn',
    () => (server.hls?.packagers.get('live/cdn')?.segments.length ?? 0) >= 2,
  );
});

after(async () => {
  nginx?.kill('SIGTERM');
  await stop(publisher);
  killAll();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

const counters = () => ({ ...server.hls!.counters });

test('identical blocking playlist requests through the edge reach the origin once', async () => {
  const media = '/hls/live/cdn/media.m3u8';
  const now = parseMediaPlaylist(await (await fetch(`${server.httpUrl}${media}`)).text());
  const last = now.segments[now.segments.length - 1];
  // The part after the newest one: every request below is held until it exists.
  const query = `?_HLS_msn=${last.msn}&_HLS_part=${last.parts.length}`;
  const before = counters();
  const viewers = 40;
  const started = performance.now();
  const waits: number[] = [];
  const answers = await Promise.all(
    Array.from({ length: viewers }, async () => {
      const r = await fetch(`${edge}${media}${query}`);
      waits.push(performance.now() - started);
      return r;
    }),
  );
  const bodies = await Promise.all(answers.map((r) => r.text()));
  const originBlocked = counters().blockedPlaylists - before.blockedPlaylists;
  const statuses: Record<string, number> = {};
  for (const r of answers) {
    const status = r.headers.get('x-cache-status') ?? 'none';
    statuses[status] = (statuses[status] ?? 0) + 1;
  }
  console.log(
    `${viewers} held requests through nginx: origin answered ${originBlocked}; edge ${JSON.stringify(statuses)}; answered after ${Math.min(...waits).toFixed(0)}–${Math.max(...waits).toFixed(0)} ms`,
  );
  for (const [i, r] of answers.entries()) assert.equal(r.status, 200, `viewer ${i}: ${bodies[i]}`);
  // Every viewer got the playlist that lists the part it waited for, and they all got the same one.
  const listed = parseMediaPlaylist(bodies[0]);
  const segment = listed.segments.find((s) => s.msn === last.msn);
  const waitedFor = segment && segment.parts.length > last.parts.length;
  const next = listed.segments.find((s) => s.msn === last.msn + 1);
  assert.ok(waitedFor || (next && next.parts.length > 0), 'the playlist lists the part waited for');
  assert.ok(
    bodies.every((b) => b === bodies[0]),
    'one playlist for everyone',
  );
  // proxy_cache_lock sends the first request on and holds the others for its cached answer; a second one
  // can slip through only if the first is still being written when the lock's hold ends.
  assert.ok(originBlocked >= 1 && originBlocked <= 2, `${originBlocked} origin requests for ${viewers}`);
  // A late viewer asking the same question is answered by the edge without the origin.
  const late = await fetch(`${edge}${media}${query}`);
  await late.text();
  assert.equal(late.headers.get('x-cache-status'), 'HIT');
});

test('a part is fetched from the origin once, then served by the edge byte for byte', async () => {
  const playlist = parseMediaPlaylist(
    await (await fetch(`${server.httpUrl}/hls/live/cdn/media.m3u8`)).text(),
  );
  const part = playlist.segments.flatMap((s) => s.parts).at(-1);
  assert.ok(part, 'a part is listed');
  const url = new URL(part.uri, `${edge}/hls/live/cdn/media.m3u8`).href;
  const before = counters();
  const first = await Promise.all(Array.from({ length: 20 }, () => fetch(url)));
  const bodies = await Promise.all(first.map(async (r) => Buffer.from(await r.arrayBuffer())));
  const originParts = counters().parts - before.parts;
  for (const r of first) assert.equal(r.status, 200);
  assert.ok(
    bodies.every((b) => b.equals(bodies[0]) && b.length > 0),
    'every copy is the same part',
  );
  assert.equal(originParts, 1, `${originParts} origin part responses for 20 edge requests`);
  const again = await fetch(url);
  assert.equal(again.headers.get('x-cache-status'), 'HIT');
  assert.match(again.headers.get('cache-control') ?? '', /immutable/);
  const direct = Buffer.from(
    await (
      await fetch(
        part.uri.startsWith('http')
          ? part.uri
          : new URL(part.uri, `${server.httpUrl}/hls/live/cdn/media.m3u8`).href,
      )
    ).arrayBuffer(),
  );
  assert.ok(Buffer.from(await again.arrayBuffer()).equals(direct), 'the edge copy is the origin part');
});

test('ffmpeg plays the stream through the edge', async () => {
  const out = join(dir, 'edge.mp4');
  await execFileAsync(
    'ffmpeg',
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-i',
      `${edge}/hls/live/cdn/index.m3u8`,
      '-t',
      '3',
      '-c',
      'copy',
      '-y',
      out,
    ],
    { timeout: 60_000 },
  );
  const streams = await ffprobe(out);
  assert.deepEqual(streams.map((s) => s.codec_name).sort(), ['aac', 'h264']);
  const frames = Number(streams.find((s) => s.codec_type === 'video')?.nb_read_frames);
  assert.ok(frames >= 80 && frames <= 100, `${frames} video frames from 3 s through the edge`);
});
