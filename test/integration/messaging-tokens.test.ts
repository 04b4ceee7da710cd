/**
 * Signed access tokens (auth.jwtSecret) against the real server with real clients: a token's `sub` is the
 * `from` of what its holder publishes on WebSocket, SSE and HTTP; grants decide what it may publish; expired,
 * forged and `alg: none` tokens are refused with 401 / close 4401 naming why; an RTMP publisher (ffmpeg)
 * gets in with a token granting publish on its stream path and is refused with one that does not.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ChannelEvent, type ChannelMessage, SubsecondChannel } from '../../client/messaging/index.ts';
import { signToken } from '../../src/auth/Tokens.ts';
import { type RunningServer, startServer } from '../../src/server.ts';
import { openWs, SseReader, WsChannelClient } from '../helpers/channels.ts';
import { publishTestSource, stop, waitFor } from '../helpers/processes.ts';

const SECRET = 'test-secret-of-at-least-some-length';
let server: RunningServer;
/** Tokens off (the default). */
let plain: RunningServer;
let ws: string;

const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;
const token = (claims: Parameters<typeof signToken>[1], secret = SECRET) => signToken(secret, claims);

before(async () => {
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { host: '127.0.0.1', port: 0 },
    hls: { enabled: false },
    webrtc: { enabled: false },
    log: { level: 'silent' },
    // Remote and loopback publishers alike need a token; anonymous clients may read but not write.
    auth: { jwtSecret: SECRET, loopbackPublish: false },
    messaging: { anonymousRead: '**', anonymousWrite: '' },
  });
  plain = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { enabled: false },
    hls: { enabled: false },
    webrtc: { enabled: false },
    log: { level: 'silent' },
  });
  ws = server.httpUrl.replace('http', 'ws');
});

after(async () => {
  await server?.close();
  await plain?.close();
});

test("a token's sub is the from of its messages, over WebSocket, SSE and HTTP, whatever the client claims", async () => {
  const alice = token({
    sub: 'alice',
    exp: inAnHour(),
    grants: [{ pattern: 'live/*:chat', actions: ['subscribe', 'publish'] }],
  });
  const reader = new SseReader(`${server.httpUrl}/sse/channels/live/cam1:chat?since=0`, {
    authorization: `Bearer ${alice}`,
  });
  assert.equal((await reader.response).statusCode, 200);
  await waitFor('SSE subscribed', () => reader.events.some((e) => e.event === 'subscribed'));
  assert.equal(JSON.parse(reader.events.find((e) => e.event === 'hello')!.data).identity, 'alice');

  const client = await openWs(`${ws}/ws/channels/live/cam1:chat?token=${alice}`);
  const hello = await client.waitForFrame('hello', (f) => f.event === 'hello');
  assert.equal(hello.identity, 'alice');
  assert.equal(hello.token, undefined, 'no anonymous identity token for a token holder');
  await client.waitForFrame('subscribed', (f) => f.event === 'subscribed');
  client.send({
    op: 'publish',
    channel: 'live/cam1:chat',
    type: 'chat',
    data: { text: 'hi' },
    from: 'admin',
  });
  await client.waitForFrame('ack', (f) => f.event === 'ack');

  const res = await fetch(`${server.httpUrl}/api/v1/channels/live/cam1:chat/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${alice}` },
    body: JSON.stringify({ type: 'chat', data: { text: 'over http' } }),
  });
  assert.equal(res.status, 201);
  assert.equal(((await res.json()) as { from: string }).from, 'alice');

  await waitFor('both messages over SSE', () => reader.messages().length >= 2);
  assert.deepEqual(
    reader.messages().map((m) => [m.from, (m.data as { text: string }).text]),
    [
      ['alice', 'hi'],
      ['alice', 'over http'],
    ],
  );
  // Anonymous readers see the same sender.
  const anonymous = await openWs(`${ws}/ws/channels/live/cam1:chat?since=0`);
  await anonymous.waitForIds('live/cam1:chat', 2);
  assert.deepEqual(
    anonymous.messages().map((m) => m.from),
    ['alice', 'alice'],
  );
  client.close();
  anonymous.close();
  reader.close();
});

test('a grant without publish refuses the publish with an error event, and the socket keeps working', async () => {
  const reader = token({
    sub: 'bob',
    exp: inAnHour(),
    grants: [
      { pattern: 'live/cam1:chat', actions: ['subscribe'] },
      { pattern: 'live/cam1:bids', actions: ['publish'] },
    ],
  });
  const client = await openWs(`${ws}/ws/channels/live/cam1:chat?token=${reader}`);
  await client.waitForFrame('subscribed', (f) => f.event === 'subscribed');
  const ref = client.publish('live/cam1:chat', 'chat', 'not allowed');
  const refusal = await client.waitForFrame('refusal', (f) => f.event === 'error' && f.ref === ref);
  assert.equal(refusal.code, 'forbidden');
  assert.match(String(refusal.message), /bob may not publish on channel "live\/cam1:chat"/);
  // Another channel the token does grant publish on still works on the same socket.
  const allowed = client.publish('live/cam1:bids', 'bid', { amount: 5 });
  const ack = await client.waitForFrame('ack', (f) => f.event === 'ack' && f.ref === allowed);
  assert.equal(ack.channel, 'live/cam1:bids');
  // Over HTTP the same refusal is a 403.
  const res = await fetch(`${server.httpUrl}/api/v1/channels/live/cam1:chat/messages?token=${reader}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'chat', data: 'no' }),
  });
  assert.equal(res.status, 403);
  // Anonymous clients may not publish here at all (messaging.anonymousWrite is empty).
  const anonymous = await openWs(`${ws}/ws/channels/`);
  const anonymousRef = anonymous.publish('live/cam1:chat', 'chat', 'anon');
  const anonymousRefusal = await anonymous.waitForFrame(
    'anonymous refusal',
    (f) => f.event === 'error' && f.ref === anonymousRef,
  );
  assert.match(String(anonymousRefusal.message), /anonymous clients may not publish/);
  client.close();
  anonymous.close();
});

test('expired, forged and alg-none tokens are refused: WebSocket close 4401, SSE and HTTP 401, each saying why', async () => {
  const expired = token({ sub: 'carol', exp: Math.floor(Date.now() / 1000) - 10, grants: [] });
  const forged = token({ sub: 'carol', exp: inAnHour(), grants: [] }, 'another-secret');
  const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
  const payload = Buffer.from(JSON.stringify({ sub: 'carol', grants: [] })).toString('base64url');
  const none = `${header}.${payload}.${Buffer.from('x').toString('base64url')}`;
  const cases: [string, string, RegExp][] = [
    ['expired', expired, /token expired at 20\d\d-/],
    ['forged', forged, /signature does not verify/],
    ['alg none', none, /algorithm "none" is not accepted/],
    ['garbage', 'not-a-token', /not a JWT/],
  ];
  for (const [what, bad, reason] of cases) {
    const client = new WsChannelClient(`${ws}/ws/channels/live/cam1:chat?token=${encodeURIComponent(bad)}`);
    const closed = await client.closed;
    assert.equal(closed.code, 4401, what);
    assert.match(closed.reason, reason, what);
    assert.equal(client.events('message').length, 0, what);

    const sse = await fetch(`${server.httpUrl}/sse/channels/live/cam1:chat?token=${encodeURIComponent(bad)}`);
    assert.equal(sse.status, 401, what);
    assert.match(((await sse.json()) as { error: string }).error, reason, what);
  }
  const http = await fetch(`${server.httpUrl}/api/v1/channels/live/cam1:chat/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${expired}` },
    body: JSON.stringify({ type: 'chat', data: 'late' }),
  });
  assert.equal(http.status, 401);
  assert.match(((await http.json()) as { error: string }).error, /expired/);
  // The server still serves everyone else.
  const fine = await openWs(`${ws}/ws/channels/live/cam1:chat`);
  await fine.waitForFrame('subscribed', (f) => f.event === 'subscribed');
  fine.close();
});

test('with auth.jwtSecret empty a presented token is refused, and a non-JWT bearer is not taken for one', async () => {
  const client = new WsChannelClient(
    `${plain.httpUrl.replace('http', 'ws')}/ws/channels/live/cam1:chat?token=${token({ sub: 'dave', grants: [] })}`,
  );
  const closed = await client.closed;
  assert.equal(closed.code, 4401);
  assert.match(closed.reason, /auth\.jwtSecret is not configured/);
  // A WHIP publisher's stream key arrives as a bearer too; messaging passes over it (anonymous).
  const res = await fetch(`${plain.httpUrl}/api/v1/channels/live/cam1:chat/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer my-stream-key' },
    body: JSON.stringify({ type: 'chat', data: 'hello' }),
  });
  assert.equal(res.status, 201);
  assert.match(((await res.json()) as { from: string }).from, /^anon-/);
});

test('an RTMP publisher gets in with a token granting publish on its path, not with one for another path', async () => {
  const wrong = token({
    sub: 'eve',
    exp: inAnHour(),
    grants: [{ pattern: 'live/other', actions: ['publish'] }],
  });
  const refused = publishTestSource(`${server.rtmpUrl}/live/tokencam?key=${wrong}`, {
    size: '320x240',
    seconds: 20,
    audio: false,
  });
  const code = await new Promise<number | null>((resolve) => refused.once('exit', resolve));
  assert.notEqual(code, 0, 'ffmpeg is refused');
  assert.equal(server.registry.get('live/tokencam')?.publisher, undefined);

  const right = token({
    sub: 'studio',
    exp: inAnHour(),
    grants: [{ pattern: 'live/*', actions: ['publish'] }],
  });
  const publisher = publishTestSource(`${server.rtmpUrl}/live/tokencam?key=${right}`, {
    size: '320x240',
    seconds: 20,
    audio: false,
  });
  try {
    await waitFor('stream published with a token', () => server.registry.get('live/tokencam')?.publisher);
  } finally {
    await stop(publisher);
  }
});

test('the SDK presents its token option on WebSocket and long-polling and publishes as the token`s sub', async () => {
  const frank = token({
    sub: 'frank',
    exp: inAnHour(),
    grants: [{ pattern: 'sdk:*', actions: ['subscribe', 'publish'] }],
  });
  for (const transport of ['ws', 'poll'] as const) {
    const channel = `sdk:${transport}`;
    const received: ChannelMessage[] = [];
    const sdk = new SubsecondChannel(channel, { server: server.httpUrl, transport, token: frank });
    sdk.on(ChannelEvent.Message, (m: ChannelMessage) => received.push(m));
    try {
      await waitFor(`${transport} open`, () => sdk.state === 'open');
      const stored = await sdk.publish('chat', { text: transport });
      assert.equal(stored.id, 1, transport);
      await waitFor(`${transport} message back`, () => received.length === 1);
      assert.equal(received[0].from, 'frank', transport);
    } finally {
      sdk.close();
    }
  }
});
