/**
 * Messaging over real WebSockets against the real server: order, several channels on one socket, resume
 * exactly once across a forced disconnect, gap, heartbeat timeout, refusals the connection survives, and a
 * reader that stops reading not holding up the others.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import { type RunningServer, startServer } from '../../src/server.ts';
import { httpPublish, openWs, range, WsChannelClient } from '../helpers/channels.ts';
import { closeServers, startMessagingServer } from '../helpers/messaging.ts';
import { publishTestSource, stop, waitFor } from '../helpers/processes.ts';

let server: RunningServer;
/** Limits tight enough to reach in a test. */
let strict: RunningServer;
let ws: string;
let strictWs: string;

before(async () => {
  [server, strict] = await Promise.all([
    startMessagingServer({
      messaging: {
        historyMaxMessages: 50,
        pingIntervalMs: 200,
        presenceIntervalMs: 100,
        maxBacklogBytes: 64 * 1024,
      },
    }),
    startMessagingServer({
      log: 'silent',
      messaging: {
        maxMessageBytes: 1024,
        publishRatePerSecond: 2,
        publishBurst: 5,
        maxChannelsPerConnection: 3,
        maxConnectionsPerIp: 4,
      },
    }),
  ]);
  ws = server.httpUrl.replace('http', 'ws');
  strictWs = strict.httpUrl.replace('http', 'ws');
});

after(() => closeServers(server, strict));

test('every subscriber gets every message in id order, with `from` set by the server', async () => {
  const a = await openWs(`${ws}/ws/channels/live/cam1:chat`);
  const b = await openWs(`${ws}/ws/channels/live/cam1:chat`);
  await a.waitForFrame('a subscribed', (f) => f.event === 'subscribed');
  await b.waitForFrame('b subscribed', (f) => f.event === 'subscribed');
  for (let i = 1; i <= 100; i++) b.publish('live/cam1:chat', 'chat', { text: `hello ${i}`, from: 'admin' });
  const ids = await a.waitForIds('live/cam1:chat', 100);
  assert.deepEqual(ids, range(1, 100));
  assert.deepEqual(await b.waitForIds('live/cam1:chat', 100), range(1, 100));
  const acks = await waitFor('100 acks', () => (b.events('ack').length === 100 ? b.events('ack') : null));
  assert.deepEqual(
    acks!.map((f) => f.id),
    range(1, 100),
  );
  const messages = a.messages('live/cam1:chat');
  assert.deepEqual(
    messages.map((m) => (m.data as { text: string }).text),
    range(1, 100).map((i) => `hello ${i}`),
  );
  const senders = new Set(messages.map((m) => m.from));
  assert.equal(senders.size, 1);
  assert.match([...senders][0], /^anon-[A-Za-z0-9_-]{8}$/, 'from is the server-assigned identity');
  assert.ok(messages.every((m, i) => i === 0 || m.time >= messages[i - 1].time));
  a.close();
  b.close();
});

test('one socket subscribes to several channels and unsubscribes from one', async () => {
  const c = await openWs(`${ws}/ws/channels/`);
  c.send({ op: 'subscribe', channel: 'multi:x' });
  c.send({ op: 'subscribe', channel: 'multi:y' });
  await c.waitForFrame('y subscribed', (f) => f.event === 'subscribed' && f.channel === 'multi:y');
  await httpPublish(server.httpUrl, 'multi:x', { type: 'chat', data: 'x1' });
  await httpPublish(server.httpUrl, 'multi:y', { type: 'chat', data: 'y1' });
  await c.waitForIds('multi:y', 1);
  c.send({ op: 'unsubscribe', channel: 'multi:y' });
  await c.waitForFrame('unsubscribed', (f) => f.event === 'unsubscribed');
  await httpPublish(server.httpUrl, 'multi:y', { type: 'chat', data: 'y2' });
  await httpPublish(server.httpUrl, 'multi:x', { type: 'chat', data: 'x2' });
  assert.deepEqual(await c.waitForIds('multi:x', 2), [1, 2]);
  assert.deepEqual(c.ids('multi:y'), [1], 'nothing after unsubscribe');
  c.close();
});

test('resume after a forced disconnect: every message exactly once, in order', async () => {
  const channel = 'resume:chat';
  let published = 0;
  let stopped = false;
  // The publisher goes on through the disconnect, over HTTP.
  const publishing = (async () => {
    while (!stopped && published < 600) {
      const r = await httpPublish(server.httpUrl, channel, { type: 'chat', data: { n: published + 1 } });
      assert.equal(r.status, 201);
      published++;
    }
  })();
  const received: number[] = [];
  let client = await openWs(`${ws}/ws/channels/${channel}?since=0`);
  await waitFor('some messages before the drop', () => client.messages(channel).length >= 20);
  for (let round = 0; round < 3; round++) {
    // The server drops the socket mid-stream.
    assert.equal(server.messaging.ws.dropAll(), 1);
    const { code } = await client.closed;
    assert.equal(code, 1001);
    received.push(...client.ids(channel));
    const last = received[received.length - 1];
    await new Promise((r) => setTimeout(r, 30));
    client = await openWs(`${ws}/ws/channels/${channel}?since=${last}`);
    const subscribed = await client.waitForFrame('resubscribed', (f) => f.event === 'subscribed');
    assert.equal(subscribed.position, last);
    await waitFor('messages after the resume', () => client.messages(channel).length >= 20);
  }
  stopped = true;
  await publishing;
  await waitFor('the rest', () => received.length + client.messages(channel).length >= published);
  received.push(...client.ids(channel));
  assert.equal(client.events('gap').length, 0, 'history covered the drops: no gap');
  assert.deepEqual(received, range(1, published), 'each id once, in order, none missing');
  client.close();
});

test('a client further behind than the history gets a gap counting what it missed', async () => {
  const channel = 'gap:chat';
  for (let i = 0; i < 80; i++) await httpPublish(server.httpUrl, channel, { type: 'chat', data: i });
  const client = await openWs(`${ws}/ws/channels/${channel}?since=10`);
  const gap = await client.waitForFrame('gap', (f) => f.event === 'gap');
  // History keeps 50: ids 31..80 remain, 11..30 are gone.
  assert.deepEqual(gap, {
    event: 'gap',
    channel,
    since: 10,
    missed: 20,
    resumeFrom: 30,
    reason: 'evicted',
  });
  assert.deepEqual(await client.waitForIds(channel, 50), range(31, 80));
  const order = client.frames.map((f) => f.event);
  assert.deepEqual(
    order.slice(0, 4),
    ['hello', 'subscribed', 'gap', 'message'],
    'the gap comes before the messages',
  );
  client.close();
});

test('presence: connections per channel, across transports, published when it changes', async () => {
  const channel = 'presence:chat';
  const a = await openWs(`${ws}/ws/channels/${channel}`);
  const sse = await fetch(`${server.httpUrl}/sse/channels/${channel}`);
  const b = await openWs(`${ws}/ws/channels/${channel}`);
  const seen = await a.waitForFrame(
    'presence with 3 connections',
    (f) => f.event === 'presence' && (f.presence as { connections: number }).connections === 3,
  );
  assert.deepEqual((seen.presence as { transports: unknown }).transports, { ws: 2, sse: 1 });
  await sse.body?.cancel();
  b.close();
  await a.waitForFrame(
    'presence back to 1',
    (f) => f.event === 'presence' && (f.presence as { connections: number }).connections === 1,
  );
  // Rate-limited: a burst of joins and leaves is summarized, not echoed one by one.
  const before = a.events('presence').length;
  const burst = await Promise.all(range(1, 10).map(() => openWs(`${ws}/ws/channels/${channel}`)));
  for (const c of burst) c.close();
  await new Promise((r) => setTimeout(r, 400));
  const during = a.events('presence').length - before;
  assert.ok(during >= 1 && during <= 6, `20 changes in ~0.1 s gave ${during} presence events`);
  a.close();
});

test('a client that stops answering pings is dropped after two missed pongs', async () => {
  const mute = new WsChannelClient(`${ws}/ws/channels/heartbeat:x`, { autoPong: false });
  await mute.opened;
  const started = Date.now();
  const { code } = await mute.closed;
  const elapsed = Date.now() - started;
  assert.equal(code, 1006, 'terminated without a close frame');
  assert.ok(elapsed >= 350 && elapsed < 2000, `dropped after ${elapsed} ms with 200 ms pings`);
  const alive = await openWs(`${ws}/ws/channels/heartbeat:x`);
  await new Promise((r) => setTimeout(r, 900));
  assert.equal(alive.ws.readyState, alive.ws.OPEN, 'a client that answers pings stays');
  alive.close();
});

test('a reader that stops reading is cut off; the others get everything on time', async () => {
  const channel = 'slow:chat';
  const healthy = await openWs(`${ws}/ws/channels/${channel}`);
  const slow = await openWs(`${ws}/ws/channels/${channel}`);
  await slow.waitForFrame('slow subscribed', (f) => f.event === 'subscribed');
  await healthy.waitForFrame('healthy subscribed', (f) => f.event === 'subscribed');
  (slow.ws as unknown as { _socket: import('node:net').Socket })._socket.pause();
  const payload = 'x'.repeat(15_000);
  const startedAt = Date.now();
  for (let i = 0; i < 400; i++) {
    const r = await httpPublish(server.httpUrl, channel, { type: 'blob', data: payload });
    assert.equal(r.status, 201);
  }
  const ids = await healthy.waitForIds(channel, 400, 20_000);
  assert.deepEqual(ids, range(1, 400));
  console.log(`healthy reader got 400 × 15 kB in ${Date.now() - startedAt} ms beside a stalled one`);
  await waitFor('the stalled reader to be cut off', () => server.messaging.ws.connections === 1, 10_000);
  healthy.close();
  slow.ws.terminate();
});

test('a burst published in one turn reaches a reader that keeps up, whatever maxBacklogBytes', async () => {
  const channel = 'burst:chat';
  const reader = await openWs(`${ws}/ws/channels/${channel}`);
  const publisher = await openWs(`${ws}/ws/channels/`);
  await reader.waitForFrame('subscribed', (f) => f.event === 'subscribed');
  // 100 × 15 kB sent at once arrive in few reads, so many publishes fan out in one event-loop turn: 1.5 MB
  // against a 64 KiB limit if that turn's writes were held back together.
  const payload = 'x'.repeat(15_000);
  for (let i = 0; i < 100; i++) publisher.publish(channel, 'blob', payload);
  const ids = await reader.waitForIds(channel, 100, 20_000);
  assert.deepEqual(ids, range(1, 100));
  assert.equal(reader.ws.readyState, reader.ws.OPEN, 'not cut off');
  reader.close();
  publisher.close();
});

test('a resume whose replay is far over maxBacklogBytes is paced by the socket, not cut off', async () => {
  // 400 × 15 kB (6 MB) of history against a 64 KiB backlog limit: written at once, it would pass the limit.
  const big = await startMessagingServer({
    log: 'silent',
    messaging: { historyMaxMessages: 400, historyMaxBytes: 8 * 1024 * 1024, maxBacklogBytes: 64 * 1024 },
  });
  try {
    const channel = 'replay:big';
    const payload = 'x'.repeat(15_000);
    for (let i = 0; i < 400; i++) {
      const r = await httpPublish(big.httpUrl, channel, { type: 'blob', data: payload });
      assert.equal(r.status, 201);
    }
    const reader = await openWs(`${big.httpUrl.replace('http', 'ws')}/ws/channels/${channel}?since=0`);
    // A reader that stalls a while in the middle of its replay, then reads on.
    const socket = (reader.ws as unknown as { _socket: import('node:net').Socket })._socket;
    socket.pause();
    await new Promise((r) => setTimeout(r, 500));
    socket.resume();
    const ids = await reader.waitForIds(channel, 400, 20_000);
    assert.deepEqual(ids, range(1, 400), 'the whole history, once, in order');
    assert.equal(reader.ws.readyState, reader.ws.OPEN, 'not cut off');
    reader.publish(channel, 'chat', { after: 'replay' });
    await reader.waitForIds(channel, 401);
    reader.close();
  } finally {
    await big.close();
  }
});

test('bad input gets its error event and the connection carries on', async () => {
  const c = await openWs(`${strictWs}/ws/channels/bad:chat`);
  await c.waitForFrame('subscribed', (f) => f.event === 'subscribed');
  const expectError = async (code: string, send: () => void) => {
    const before = c.events('error').length;
    send();
    const error = await waitFor(`error ${code}`, () => c.events('error')[before]);
    assert.equal(error.code, code, JSON.stringify(error));
    return error;
  };
  assert.match(String((await expectError('bad_frame', () => c.ws.send('{nope'))).message), /not JSON/);
  await expectError('bad_frame', () => c.ws.send(Buffer.from([1, 2, 3])));
  assert.match(String((await expectError('unknown_op', () => c.send({ op: 'shout' }))).message), /"shout"/);
  const bad = await expectError('invalid_channel', () => c.send({ op: 'subscribe', channel: 'no spaces' }));
  assert.match(String(bad.message), /invalid channel name "no spaces"/);
  const big = await expectError('too_large', () => c.publish('bad:chat', 'chat', 'y'.repeat(2000)));
  assert.match(String(big.message), /limit is 1024/);
  await expectError('invalid_message', () => c.publish('bad:chat', '<b>', 'x'));
  // Flood: the burst of 5 passes (one token went to the too-large try), the rest are refused with a wait.
  for (let i = 0; i < 10; i++) c.publish('bad:chat', 'chat', i);
  await waitFor('10 answers', () => c.events('ack').length + c.events('error').length >= 5 + 10);
  const refused = c.events('error').filter((e) => e.code === 'rate_limited');
  assert.ok(refused.length >= 5, `${refused.length} refused`);
  assert.ok(refused.every((e) => Number(e.retryAfterMs) > 0 && /retry in \d+ ms/.test(String(e.message))));
  assert.ok(c.events('ack').length <= 5);
  // Too many channels: 3 allowed.
  c.send({ op: 'subscribe', channel: 'bad:2' });
  c.send({ op: 'subscribe', channel: 'bad:3' });
  await expectError('too_many_channels', () => c.send({ op: 'subscribe', channel: 'bad:4' }));
  // Still alive and answering.
  c.send({ op: 'ping', ref: 'still-there' });
  assert.equal((await c.waitForFrame('pong', (f) => f.event === 'pong')).ref, 'still-there');
  assert.deepEqual(c.ids('bad:chat').length, c.events('ack').length, 'each accepted publish delivered');
  c.close();
});

test('a frame over the size limit closes with 1009; a bad name in the URL is refused with 400', async () => {
  const c = await openWs(`${strictWs}/ws/channels/big:chat`);
  c.ws.send(JSON.stringify({ op: 'publish', channel: 'big:chat', type: 'chat', data: 'z'.repeat(8000) }));
  assert.equal((await c.closed).code, 1009);
  const refused = new WsChannelClient(`${strictWs}/ws/channels/bad%20name`);
  await assert.rejects(refused.opened, /HTTP 400/);
  const res = await fetch(`${strict.httpUrl}/sse/channels/bad%20name`);
  assert.equal(res.status, 400);
  assert.match(((await res.json()) as { error: string }).error, /invalid channel name "bad name"/);
});

test('past the per-IP connection limit the socket is closed with 4429 and a reason', async () => {
  const open = await Promise.all(range(1, 4).map(() => openWs(`${strictWs}/ws/channels/limit:x`)));
  const extra = new WsChannelClient(`${strictWs}/ws/channels/limit:x`);
  const { code, reason } = await extra.closed;
  assert.equal(code, 4429);
  assert.match(reason, /too many messaging connections from 127\.0\.0\.1/);
  open[0].close();
  await open[0].closed;
  const again = await openWs(`${strictWs}/ws/channels/limit:x`);
  await again.waitForFrame('a freed slot admits a new client', (f) => f.event === 'subscribed');
  for (const c of [...open, again]) c.close();
});

test('presence on a stream`s channel counts the stream`s media viewers across protocols', async () => {
  const media = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { host: '127.0.0.1', port: 0 },
    log: { level: 'warn' },
    messaging: { presenceIntervalMs: 100 },
  });
  const publisher = publishTestSource(`${media.rtmpUrl}/live/show`, {
    size: '320x240',
    rate: 15,
    audio: false,
  });
  try {
    await waitFor('live/show to be ready', () => media.registry.get('live/show')?.ready, 15_000);
    const base = media.httpUrl.replace('http', 'ws');
    const chat = await openWs(`${base}/ws/channels/live/show:chat`);
    await chat.waitForFrame(
      'presence without viewers',
      (f) => f.event === 'presence' && (f.presence as { viewers?: number }).viewers === 0,
    );
    const viewer = new WebSocket(`${base}/mse/live/show`);
    await new Promise((resolve, reject) => viewer.once('open', resolve).once('error', reject));
    const seen = await chat.waitForFrame(
      'presence with the MSE viewer',
      (f) => f.event === 'presence' && (f.presence as { viewers?: number }).viewers === 1,
    );
    assert.equal((seen.presence as { connections: number }).connections, 1);
    viewer.close();
    const after = chat.frames.indexOf(seen);
    await waitFor('presence without the viewer again', () =>
      chat.frames
        .slice(after + 1)
        .some((f) => f.event === 'presence' && (f.presence as { viewers?: number }).viewers === 0),
    );
    chat.close();
  } finally {
    await stop(publisher);
    await media.close();
  }
});

test('an anonymous identity survives reconnects with the token the server signed, and cannot be forged', async () => {
  const first = await openWs(`${ws}/ws/channels/identity:chat`);
  const hello = await first.waitForFrame('hello', (f) => f.event === 'hello');
  assert.match(String(hello.identity), /^anon-[A-Za-z0-9_-]{8}$/);
  const token = String(hello.token);
  assert.ok(token.startsWith(`${hello.identity}.`));
  first.publish('identity:chat', 'chat', 'before');
  await first.waitForIds('identity:chat', 1);
  first.close();

  const again = await openWs(`${ws}/ws/channels/identity:chat?since=0&identity=${encodeURIComponent(token)}`);
  assert.equal((await again.waitForFrame('hello', (f) => f.event === 'hello')).identity, hello.identity);
  again.publish('identity:chat', 'chat', 'after');
  await again.waitForIds('identity:chat', 2);
  assert.deepEqual(
    again.messages('identity:chat').map((m) => m.from),
    [hello.identity, hello.identity],
    'the same sender before and after the reconnect',
  );
  // Over HTTP too.
  const viaHttp = await httpPublish(
    server.httpUrl,
    'identity:chat',
    { type: 'chat', data: 'http' },
    `?identity=${encodeURIComponent(token)}`,
  );
  assert.equal(viaHttp.body.from, hello.identity);
  again.close();

  // A claimed id with a wrong signature, or another server's token, gets a fresh identity.
  for (const forged of [
    `${hello.identity}.AAAAAAAAAAAAAAAAAAAAAA`,
    `anon-someone1.${token.split('.')[1]}`,
    'admin',
  ]) {
    const c = await openWs(`${ws}/ws/channels/identity:chat?identity=${encodeURIComponent(forged)}`);
    const h = await c.waitForFrame('hello', (f) => f.event === 'hello');
    assert.notEqual(h.identity, hello.identity);
    assert.match(String(h.identity), /^anon-/);
    c.close();
  }
  const other = await openWs(`${strictWs}/ws/channels/identity:chat?identity=${encodeURIComponent(token)}`);
  assert.notEqual((await other.waitForFrame('hello', (f) => f.event === 'hello')).identity, hello.identity);
  other.close();
});

test('a flood of control frames is rate-limited like publishes, and the socket survives it', async () => {
  const c = await openWs(`${strictWs}/ws/channels/flood:x`);
  await c.waitForFrame('subscribed', (f) => f.event === 'subscribed');
  for (let i = 0; i < 80; i++) c.send({ op: 'ping', ref: `p${i}` });
  await waitFor('80 answers', () => c.events('pong').length + c.events('error').length >= 80);
  const limited = c.events('error').filter((e) => e.code === 'rate_limited');
  assert.ok(limited.length >= 25 && c.events('pong').length >= 50, `${limited.length} of 80 refused`);
  assert.match(String(limited[0].message), /subscribe, unsubscribe, ping or invalid frames/);
  assert.equal(c.events('pong').length + limited.length, 80, 'each ping answered once');
  assert.ok(
    limited.every((e) => String(e.ref).startsWith('p')),
    'a refusal names the ping it refuses',
  );
  await new Promise((r) => setTimeout(r, 300));
  c.send({ op: 'ping', ref: 'after' });
  assert.ok(await c.waitForFrame('pong after the flood', (f) => f.event === 'pong' && f.ref === 'after'));
  c.close();
});
