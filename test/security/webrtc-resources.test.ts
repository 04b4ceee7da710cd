/**
 * docs/security.md "WHIP/WHEP resource URLs": the resource URL is a capability (RFC 9725 §4.2). A remote
 * client without it cannot end or patch anyone's session, the session list does not reveal it, and listing
 * sessions is a control-API call.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type RunningServer, startServer } from '../../src/server.ts';
import { createNetns, type Netns } from '../helpers/netns.ts';
import { createTestPeer, type TestPeer } from '../helpers/webrtcClient.ts';

const STREAM = 'live/capability';
let ns: Netns;
let server: RunningServer;
let publisher: TestPeer;
let location = '';

before(async () => {
  ns = await createNetns('rtc', 11);
  server = await startServer({
    http: { host: ns.hostAddress, port: 0 },
    rtmp: { enabled: false },
    hls: { enabled: false },
    webrtc: { udpPort: 0 },
    auth: { publishKey: 'publish-secret', apiToken: 'api-secret' },
    log: { level: 'warn' },
  });
  publisher = await createTestPeer({ video: 'H264', direction: 'SendOnly' });
  const response = await fetch(`${server.httpUrl}/whip/${STREAM}`, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp', authorization: 'Bearer publish-secret' },
    body: publisher.offer,
  });
  assert.equal(response.status, 201, await response.text());
  location = response.headers.get('location') ?? '';
});

after(async () => {
  publisher?.close();
  await server?.close();
  await ns?.close();
});

test('the resource URL carries 256 random bits and is neither listed nor usable by its listed id', async () => {
  const resource = location.split('/').pop() ?? '';
  assert.match(resource, /^[A-Za-z0-9_-]{43}$/, `an unguessable capability: ${location}`);

  const remoteList = await ns.fetch(`${server.httpUrl}/api/v1/webrtc/sessions`);
  assert.equal(remoteList.status, 403, 'a remote caller without auth.apiToken cannot list sessions');
  assert.match(remoteList.body, /auth\.apiToken/);

  const listed = await fetch(`${server.httpUrl}/api/v1/webrtc/sessions`, {
    headers: { authorization: 'Bearer api-secret' },
  });
  assert.equal(listed.status, 200);
  const text = await listed.text();
  assert.ok(!text.includes(resource), `the listing does not reveal the resource URL: ${text}`);
  const { sessions } = JSON.parse(text) as { sessions: { id: string; path: string }[] };
  const id = sessions.find((s) => s.path === STREAM)?.id ?? '';
  assert.ok(id, 'the session is listed by its id');

  for (const method of ['DELETE', 'PATCH']) {
    const attempt = await ns.fetch(`${server.httpUrl}/whip/resource/${id}`, {
      method,
      headers: { 'content-type': 'application/trickle-ice-sdpfrag' },
      body: method === 'PATCH' ? 'a=end-of-candidates\r\n' : undefined,
    });
    assert.equal(attempt.status, 404, `${method} by the listed id is refused`);
    assert.ok(!attempt.body.includes(id), 'the error does not echo the URL');
  }
  assert.ok(server.registry.get(STREAM)?.live, 'the publisher is still live');

  const owner = await ns.fetch(`${server.httpUrl}${location}`, { method: 'DELETE' });
  assert.equal(owner.status, 200, 'whoever holds the capability may end the session');
  assert.ok(!server.registry.get(STREAM)?.live, 'and the stream went offline');
});
