/**
 * docs/security.md "Media viewers": WebSocket+MSE viewers per client IP (mse.maxViewersPerIp, from a network
 * namespace), WHIP/WHEP sessions per IP (webrtc.maxSessionsPerIp) and sessions still connecting
 * (webrtc.maxPendingSessions).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Publisher } from '../../src/core/Stream.ts';
import { type RunningServer, startServer } from '../../src/server.ts';
import { createNetns, type Netns } from '../helpers/netns.ts';
import { createTestPeer, type TestPeer } from '../helpers/webrtcClient.ts';

const NODE = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));
let ns: Netns;
let exposed: RunningServer;
let local: RunningServer;
const peers: TestPeer[] = [];

before(async () => {
  ns = await createNetns('view', 16);
  exposed = await startServer({
    http: { host: ns.hostAddress, port: 0 },
    rtmp: { enabled: false },
    hls: { enabled: false },
    webrtc: { enabled: false },
    mse: { maxViewersPerIp: 2 },
    log: { level: 'silent' },
  });
  const publisher: Publisher = { protocol: 'test', remoteAddress: '127.0.0.1', id: 'p', close() {} };
  exposed.registry.publish('live/cam', publisher);
  local = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { enabled: false },
    hls: { enabled: false },
    webrtc: { udpPort: 0, maxPendingSessions: 1, maxSessionsPerIp: 1 },
    log: { level: 'silent' },
  });
});

after(async () => {
  for (const peer of peers) peer.close();
  await exposed?.close();
  await local?.close();
  await ns?.close();
});

/** Opens three media WebSockets at once from the namespace and reports how each ended up. */
const THREE_VIEWERS = `
const url = process.argv[1];
const results = await Promise.all([0, 1, 2].map(() => new Promise((resolve) => {
  const ws = new WebSocket(url);
  ws.onopen = () => resolve('open');
  ws.onerror = () => resolve('refused');
  setTimeout(() => resolve('timeout'), 5000);
})));
process.stdout.write(JSON.stringify(results));
process.exit(0);
`;

test('one address holds at most mse.maxViewersPerIp WebSocket+MSE viewers', async () => {
  const url = `ws://${ns.hostAddress}:${exposed.httpPort}/mse/live/cam`;
  const result = await ns.run(NODE, ['--input-type=module', '-e', THREE_VIEWERS, url]);
  const outcomes = (JSON.parse(result.stdout) as string[]).sort();
  assert.deepEqual(outcomes, ['open', 'open', 'refused'], result.stderr);
});

test('offers past webrtc.maxPendingSessions get 503, past webrtc.maxSessionsPerIp 429', async () => {
  const offer = async (path: string) => {
    const peer = await createTestPeer({ video: 'H264', direction: 'SendOnly' });
    peers.push(peer);
    return fetch(`${local.httpUrl}/whip/${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp' },
      body: peer.offer,
    });
  };
  const first = await offer('live/one');
  assert.equal(first.status, 201, 'answered, and connecting (its peer never completes ICE here)');
  const pending = await offer('live/two');
  assert.equal(pending.status, 503);
  assert.match(
    ((await pending.json()) as { error: string }).error,
    /1 WebRTC sessions are still connecting, the limit is 1 \(webrtc\.maxPendingSessions\)/,
  );
  local.config.webrtc.maxPendingSessions = 10;
  const perIp = await offer('live/two');
  assert.equal(perIp.status, 429);
  assert.match(
    ((await perIp.json()) as { error: string }).error,
    /too many WHIP\/WHEP sessions from 127\.0\.0\.1: 1 open, the limit is 1 \(webrtc\.maxSessionsPerIp\)/,
  );
  assert.equal(
    (await fetch(`${local.httpUrl}${first.headers.get('location')}`, { method: 'DELETE' })).status,
    200,
  );
  const again = await offer('live/two');
  assert.equal(again.status, 201, 'a closed session frees its place');
});
