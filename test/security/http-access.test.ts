/**
 * docs/security.md "Loopback trust and CORS" and "Publisher addresses": loopback is trusted only with a
 * loopback Host and no foreign Origin (DNS rebinding, cross-site pages), the control API is never CORS-open,
 * and publishers' addresses are shown to control-API callers only.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import type { Publisher } from '../../src/core/Stream.ts';
import { type RunningServer, startServer } from '../../src/server.ts';
import { createNetns, type Netns } from '../helpers/netns.ts';

let local: RunningServer;
let exposed: RunningServer;
let ns: Netns;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** An HTTP request with any Host header (fetch may not set one), read to its end or its first chunk. */
function send(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  body = '',
  firstChunkOnly = false,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => {
        text += d.toString();
        if (firstChunkOnly) {
          res.destroy();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text });
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function fakePublisher(): Publisher {
  return { protocol: 'rtmp', remoteAddress: '192.0.2.77', id: 'p', close() {} };
}

before(async () => {
  local = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { enabled: false },
    hls: { enabled: false },
    webrtc: { udpPort: 0 },
    log: { level: 'silent' },
  });
  ns = await createNetns('http', 14);
  exposed = await startServer({
    http: { host: ns.hostAddress, port: 0 },
    rtmp: { enabled: false },
    hls: { enabled: false },
    webrtc: { enabled: false },
    auth: { apiToken: 'api-secret' },
    log: { level: 'silent' },
  });
  exposed.registry.publish('live/addr', fakePublisher());
  local.registry.publish('live/addr', fakePublisher());
});

after(async () => {
  await local?.close();
  await exposed?.close();
  await ns?.close();
});

test('a loopback WHIP publish needs a loopback Host and no foreign Origin to go without a key', async () => {
  const sdp = { 'content-type': 'application/sdp' };
  const rebound = await send(
    local.httpPort,
    'POST',
    '/whip/live/a',
    { ...sdp, host: 'rebind.evil.example' },
    'v=0',
  );
  assert.equal(rebound.status, 401, rebound.body);
  assert.match(rebound.body, /Host \\"rebind\.evil\.example\\" is not a loopback name/);
  const crossSite = await send(
    local.httpPort,
    'POST',
    '/whip/live/a',
    { ...sdp, host: `127.0.0.1:${local.httpPort}`, origin: 'https://evil.example' },
    'v=0',
  );
  assert.equal(crossSite.status, 401, crossSite.body);
  assert.match(crossSite.body, /Origin \\"https:\/\/evil\.example\\" is another site/);
  const ownPage = await send(
    local.httpPort,
    'POST',
    '/whip/live/a',
    { ...sdp, host: `localhost:${local.httpPort}`, origin: `http://localhost:${local.httpPort}` },
    'v=0',
  );
  assert.equal(ownPage.status, 400, `the operator's own page passes authorization: ${ownPage.body}`);
});

test('control calls from a loopback socket with a foreign Origin or Host are refused; the API is not CORS-open', async () => {
  const host = `127.0.0.1:${local.httpPort}`;
  const kick = await send(local.httpPort, 'DELETE', '/api/v1/streams/live/none', {
    host,
    origin: 'https://evil.example',
  });
  assert.equal(kick.status, 403);
  assert.match(kick.body, /loopback trust needs a loopback Host and Origin/);
  const rebound = await send(local.httpPort, 'DELETE', '/api/v1/streams/live/none', {
    host: 'rebind.evil.example',
  });
  assert.equal(rebound.status, 403);
  const own = await send(local.httpPort, 'DELETE', '/api/v1/streams/live/none', { host });
  assert.equal(own.status, 404, 'the operator is allowed (and told there is no such publisher)');

  const preflight = await send(local.httpPort, 'OPTIONS', '/api/v1/streams/live/addr', {
    host,
    origin: 'https://evil.example',
    'access-control-request-method': 'DELETE',
  });
  assert.equal(preflight.headers['access-control-allow-origin'], undefined);
  assert.equal(preflight.headers['access-control-allow-methods'], undefined);
  for (const path of ['/api/v1/server', '/api/v1/webrtc/sessions', '/metrics', '/healthz']) {
    const answer = await send(local.httpPort, 'GET', path, { host });
    assert.equal(answer.headers['access-control-allow-origin'], undefined, `${path} is not CORS-open`);
  }
  // Media, messaging and the public stream read stay open to players on other sites (http.corsOrigin).
  const publish = await send(local.httpPort, 'OPTIONS', '/api/v1/channels/room/messages', {
    host,
    origin: 'https://viewer.example',
    'access-control-request-method': 'POST',
  });
  assert.equal(publish.headers['access-control-allow-origin'], '*');
  assert.match(String(publish.headers['access-control-allow-methods']), /POST/);
  const streams = await send(local.httpPort, 'GET', '/api/v1/streams', { host });
  assert.equal(streams.headers['access-control-allow-origin'], '*');
});

test('publisher addresses are shown to control-API callers only', async () => {
  for (const path of ['/api/v1/streams', '/api/v1/streams/live/addr']) {
    const anonymous = await ns.fetch(`${exposed.httpUrl}${path}`);
    assert.equal(anonymous.status, 200);
    assert.match(anonymous.body, /"publisher":\{"protocol":"rtmp"\}/);
    assert.ok(!anonymous.body.includes('192.0.2.77'), `${path} hides the address from a remote caller`);
    const operator = await ns.fetch(`${exposed.httpUrl}${path}`, {
      headers: { authorization: 'Bearer api-secret' },
    });
    assert.ok(operator.body.includes('"remoteAddress":"192.0.2.77"'), `${path} shows it with auth.apiToken`);
  }
  // The dashboard feed: a page of another site reading through the operator's browser gets the public view.
  const host = `127.0.0.1:${local.httpPort}`;
  const foreign = await send(
    local.httpPort,
    'GET',
    '/api/v1/events',
    { host, origin: 'https://evil.example' },
    '',
    true,
  );
  assert.match(foreign.body, /"publisher":\{"protocol":"rtmp"\}/);
  assert.ok(!foreign.body.includes('192.0.2.77'));
  const own = await send(local.httpPort, 'GET', '/api/v1/events', { host }, '', true);
  assert.ok(own.body.includes('192.0.2.77'), "the operator's dashboard shows it");
});
