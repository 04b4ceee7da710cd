/**
 * docs/security.md "HTTP": a half-sent request head is closed after http.headersTimeoutMs, WHIP/WHEP paths are
 * percent-decoded once, and /metrics can require auth.metricsToken.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { type RunningServer, startServer } from '../../src/server.ts';

let server: RunningServer;

before(async () => {
  server = await startServer({
    http: { host: '127.0.0.1', port: 0, headersTimeoutMs: 1000 },
    rtmp: { enabled: false },
    hls: { enabled: false },
    webrtc: { udpPort: 0 },
    auth: { metricsToken: 'metrics-secret' },
    log: { level: 'silent' },
  });
});

after(async () => {
  await server?.close();
});

test('a half-sent request head is closed after http.headersTimeoutMs', async () => {
  const socket = connect(server.httpPort, '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  const started = performance.now();
  socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
  socket.on('data', () => {});
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.once('close', resolve));
  const elapsed = performance.now() - started;
  // Checked every second by Node: between the timeout and the timeout plus the interval, not 60 s.
  assert.ok(elapsed >= 900 && elapsed < 4000, `closed after ${Math.round(elapsed)} ms`);
});

test('a WHIP path is percent-decoded once: live%252Fcam1 is not live/cam1', async () => {
  const response = await fetch(`${server.httpUrl}/whip/live%252Fcam1`, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp' },
    body: 'v=0',
  });
  assert.equal(response.status, 400);
  assert.match(((await response.json()) as { error: string }).error, /live%2Fcam1/);
});

test('/metrics requires auth.metricsToken when it is set', async () => {
  const anonymous = await fetch(`${server.httpUrl}/metrics`);
  assert.equal(anonymous.status, 401);
  assert.match(((await anonymous.json()) as { error: string }).error, /auth\.metricsToken/);
  const scraper = await fetch(`${server.httpUrl}/metrics`, {
    headers: { authorization: 'Bearer metrics-secret' },
  });
  assert.equal(scraper.status, 200);
  assert.match(await scraper.text(), /# HELP/);
});
