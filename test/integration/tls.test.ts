import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import { type RunningServer, startServer } from '../../src/server.ts';

const dir = mkdtempSync(join(tmpdir(), 'subsecond-tls-'));
let server: RunningServer;
let ca: Buffer;

before(async () => {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
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
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  ca = readFileSync(cert);
  server = await startServer({
    http: { host: '127.0.0.1', port: 0, tlsCert: cert, tlsKey: key },
    rtmp: { enabled: false },
    log: { level: 'silent' },
  });
});

after(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('with a certificate configured the HTTP port speaks HTTPS', async () => {
  assert.match(server.httpUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
  const body = await new Promise<string>((resolve, reject) => {
    get(`${server.httpUrl}/healthz`, { ca }, (res) => {
      let text = '';
      res.on('data', (d) => {
        text += d;
      });
      res.on('end', () => resolve(text));
    }).on('error', reject);
  });
  assert.equal(JSON.parse(body).status, 'ok');
});

test('and WebSocket upgrades run over TLS (wss://)', async () => {
  const status = await new Promise<number>((resolve, reject) => {
    const ws = new WebSocket(`${server.httpUrl.replace('https', 'wss')}/mse/live/none`, { ca });
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('error', reject);
  });
  assert.equal(status, 404);
});
