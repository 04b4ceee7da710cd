/**
 * The deployment files of docs/deploy.md as they are committed: deploy/config.yaml loads with the server's own
 * loader; deploy/subsecond.service passes `systemd-analyze verify`; deploy/nginx-subsecond.conf, with only its
 * ports, certificate and folders changed, runs in front of a server: pages and WebSocket upgrades pass, LL-HLS
 * keeps the origin's Cache-Control and is answered from nginx's cache, and the kick API is not reachable.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { WebSocket } from 'ws';
import { loadConfig } from '../../src/config/load.ts';
import { type RunningServer, startServer } from '../../src/server.ts';
import { killAll, publishTestSource, stop, waitFor } from '../helpers/processes.ts';

const root = join(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'subsecond-deploy-'));
let server: RunningServer | undefined;
let nginx: ChildProcess | undefined;

after(async () => {
  await stop(nginx);
  killAll();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('deploy/config.yaml loads: TLS, the UDP port, a publish key, the embedding origin', () => {
  const { config } = loadConfig(['--config', join(root, 'deploy/config.yaml')]);
  assert.equal(config.http.port, 443);
  assert.match(config.http.tlsCert, /fullchain\.pem$/);
  assert.equal(config.webrtc.udpPort, 8189);
  assert.ok(config.auth.publishKey.length >= 16);
  assert.equal(config.http.corsOrigin, 'https://www.example.com');
});

test('deploy/subsecond.service passes systemd-analyze verify', () => {
  // verify checks that ExecStart exists: the installed command is not on this machine, so /bin/true stands in.
  const unit = readFileSync(join(root, 'deploy/subsecond.service'), 'utf8');
  assert.match(
    unit,
    /^ExecStart=\/usr\/local\/bin\/subsecond serve --config \/etc\/subsecond\/config\.yaml$/m,
  );
  assert.match(unit, /^KillMode=mixed$/m);
  const file = join(dir, 'subsecond.service');
  writeFileSync(file, unit.replace(/^ExecStart=\S+/m, 'ExecStart=/bin/true'));
  // It reports bad keys and values on stderr and still exits 0.
  const verify = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
  assert.equal(verify.status, 0);
  assert.equal(verify.stderr.trim(), '', `systemd-analyze verify: ${verify.stderr}`);
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

function get(
  url: string,
  method = 'GET',
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, rejectUnauthorized: false }, (res) => {
      let body = '';
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('deploy/nginx-subsecond.conf in front of the server: pages, WebSocket upgrade, cached LL-HLS, no kick', async () => {
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { host: '127.0.0.1', port: 0 },
    webrtc: { enabled: false },
    log: { level: 'warn' },
  });
  publishTestSource(`${server.rtmpUrl}/live/cam1`, { size: '320x180', gop: 30, seconds: 60 });
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  const port = await freePort();
  const origin = new URL(server.httpUrl).port;
  const site = readFileSync(join(root, 'deploy/nginx-subsecond.conf'), 'utf8')
    .replace('listen 443 ssl', `listen 127.0.0.1:${port} ssl`)
    .replace('server 127.0.0.1:8080;', `server 127.0.0.1:${origin};`)
    .replace(/\/etc\/letsencrypt\/live\/live\.example\.com\/fullchain\.pem/, join(dir, 'cert.pem'))
    .replace(/\/etc\/letsencrypt\/live\/live\.example\.com\/privkey\.pem/, join(dir, 'key.pem'))
    .replace('/var/cache/nginx/subsecond', join(dir, 'cache'));
  writeFileSync(join(dir, 'site.conf'), site);
  for (const sub of ['logs', 'temp']) mkdirSync(join(dir, sub), { recursive: true });
  writeFileSync(
    join(dir, 'nginx.conf'),
    // Tests run as root with private temp folders; the worker writes the cache there.
    `user root;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/temp/body;
  proxy_temp_path ${dir}/temp/proxy;
  fastcgi_temp_path ${dir}/temp/fastcgi;
  uwsgi_temp_path ${dir}/temp/uwsgi;
  scgi_temp_path ${dir}/temp/scgi;
  include ${dir}/site.conf;
}
`,
  );
  nginx = spawn('/usr/sbin/nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const edge = `https://127.0.0.1:${port}`;
  await waitFor('nginx', () =>
    get(`${edge}/healthz`).then(
      (r) => r.status === 200,
      () => false,
    ),
  );

  const page = await get(`${edge}/play/live/cam1`);
  assert.equal(page.status, 200, `${page.body} ${readFileSync(join(dir, 'logs/error.log'), 'utf8')}`);
  assert.match(page.body, /<video/);

  const ws = new WebSocket(`wss://127.0.0.1:${port}/ws/channels/deploy-test`, { rejectUnauthorized: false });
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  ws.close();

  const hls = server.hls;
  assert.ok(hls);
  await waitFor('two segments', () => (hls.packagers.get('live/cam1')?.segments.length ?? 0) >= 2, 20_000);
  const playlistUrl = `${edge}/hls/live/cam1/media.m3u8`;
  const direct = await fetch(`${server.httpUrl}/hls/live/cam1/media.m3u8`);
  const viaEdge = await get(playlistUrl);
  assert.equal(viaEdge.status, 200, readFileSync(join(dir, 'logs/error.log'), 'utf8'));
  assert.equal(viaEdge.headers['cache-control'], direct.headers.get('cache-control'));
  const segment = /^(\S+\.m4s)$/m.exec(viaEdge.body)?.[1];
  assert.ok(segment, viaEdge.body);
  const segmentUrl = new URL(segment, playlistUrl).href;
  const originSegments = hls.counters.segments;
  const first = await get(segmentUrl);
  const second = await get(segmentUrl);
  assert.equal(first.status, 200);
  assert.equal(first.headers['cache-control'], 'public, max-age=3600, immutable');
  assert.equal(second.body, first.body);
  assert.equal(
    hls.counters.segments,
    originSegments + 1,
    "the second request was answered from nginx's cache",
  );

  const kick = await get(`${edge}/api/v1/streams/live/cam1`, 'DELETE');
  assert.equal(kick.status, 403);
  assert.equal(server.registry.get('live/cam1')?.live, true);
});
