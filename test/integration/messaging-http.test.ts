/**
 * Messaging over plain HTTP against the real server: Server-Sent Events with EventSource's resume
 * (Last-Event-ID), long-polling that answers at once or holds, and HTTP publish with its refusals.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { RunningServer } from '../../src/server.ts';
import { httpPublish, openWs, range, SseReader } from '../helpers/channels.ts';
import { closeServers, startMessagingServer } from '../helpers/messaging.ts';
import { waitFor } from '../helpers/processes.ts';

let server: RunningServer;
let strict: RunningServer;
let base: string;

before(async () => {
  [server, strict] = await Promise.all([
    startMessagingServer({
      http: { corsOrigin: 'https://viewer.example' },
      messaging: { historyMaxMessages: 30, sseHeartbeatMs: 200, sseRetryMs: 1500, pollTimeoutMs: 600 },
    }),
    startMessagingServer({
      log: 'silent',
      messaging: {
        maxMessageBytes: 1024,
        publishRatePerSecond: 2,
        publishBurst: 3,
        maxConnectionsPerIp: 2,
        anonymousRead: 'open/**',
        anonymousWrite: 'open/*',
      },
    }),
  ]);
  base = server.httpUrl;
});

after(() => closeServers(server, strict));

async function publishMany(channel: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const r = await httpPublish(base, channel, { type: 'chat', data: { n: i } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
}

test('SSE: headers, retry, an id and event name on every event, heartbeat comments', async () => {
  const channel = 'sse/basic:chat';
  await publishMany(channel, 3);
  const sse = new SseReader(`${base}/sse/channels/${channel}?since=1`);
  const res = await sse.response;
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8');
  assert.equal(res.headers['cache-control'], 'no-cache');
  assert.equal(res.headers['x-accel-buffering'], 'no');
  assert.equal(res.headers['access-control-allow-origin'], 'https://viewer.example');
  await waitFor('replay of 2 and 3', () => sse.messages().length === 2);
  await publishMany(channel, 1);
  await waitFor('the live one', () => sse.messages().length === 3);
  assert.equal(sse.retry, 1500);
  assert.deepEqual(
    sse.messages().map((m) => m.id),
    [2, 3, 4],
  );
  // Presence events carry the id the client is at, so they never move its Last-Event-ID.
  sse.events.forEach((e, i) => {
    if (e.event === 'presence') assert.equal(e.id, sse.events[i - 1].id, JSON.stringify(sse.events));
  });
  assert.ok(sse.events.some((e) => e.event === 'presence'));
  assert.deepEqual(
    sse.events.filter((e) => e.event !== 'presence').map((e) => [e.event, e.id]),
    [
      ['hello', '1'],
      ['subscribed', '1'],
      ['message', '2'],
      ['message', '3'],
      ['message', '4'],
    ],
  );
  await waitFor('a heartbeat comment', () => sse.comments.includes('heartbeat'), 2000);
  sse.close();
});

test('SSE resume: Last-Event-ID (what EventSource sends) wins over ?since=, each message once', async () => {
  const channel = 'sse/resume:chat';
  const first = new SseReader(`${base}/sse/channels/${channel}?since=0`);
  await publishMany(channel, 5);
  await waitFor('5 messages', () => first.messages().length === 5);
  const lastEventId = first.lastEventId;
  assert.equal(lastEventId, '5');
  first.close();
  await publishMany(channel, 4);
  // EventSource reconnects to the same URL (still ?since=0) and adds the header.
  const second = new SseReader(`${base}/sse/channels/${channel}?since=0`, { 'last-event-id': lastEventId });
  await publishMany(channel, 1);
  await waitFor('the rest', () => second.messages().length === 5);
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(
    [...first.messages(), ...second.messages()].map((m) => m.id),
    range(1, 10),
  );
  second.close();
});

test('SSE gap: further behind than the history, the gap event comes first with the count', async () => {
  const channel = 'sse/gap:chat';
  await publishMany(channel, 40);
  const sse = new SseReader(`${base}/sse/channels/${channel}`, { 'last-event-id': '4' });
  await waitFor('30 retained', () => sse.messages().length === 30);
  const gap = sse.events.find((e) => e.event === 'gap');
  assert.ok(gap);
  assert.equal(gap.id, '10', 'the gap moves Last-Event-ID to where the history starts');
  assert.deepEqual(JSON.parse(gap.data), {
    event: 'gap',
    channel,
    since: 4,
    missed: 6,
    resumeFrom: 10,
    reason: 'evicted',
  });
  assert.deepEqual(
    sse.messages().map((m) => m.id),
    range(11, 40),
  );
  sse.close();
});

test('SSE: a bad Last-Event-ID is a 400 naming it', async () => {
  const res = await fetch(`${base}/sse/channels/x:y`, { headers: { 'last-event-id': 'abc' } });
  assert.equal(res.status, 400);
  assert.match(((await res.json()) as { error: string }).error, /Last-Event-ID must be a message id.*"abc"/);
});

test('long-poll answers at once with anything newer', async () => {
  const channel = 'poll/now:chat';
  await publishMany(channel, 3);
  const started = Date.now();
  const res = await fetch(`${base}/poll/channels/${channel}?since=1`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  const body = (await res.json()) as { last: number; messages: { id: number }[] };
  assert.ok(Date.now() - started < 300);
  assert.equal(body.last, 3);
  assert.deepEqual(
    body.messages.map((m) => m.id),
    [2, 3],
  );
});

test('long-poll holds until a message arrives and answers with it', async () => {
  const channel = 'poll/hold:chat';
  await publishMany(channel, 2);
  const started = Date.now();
  const polling = fetch(`${base}/poll/channels/${channel}?since=2`).then(
    async (r) => [Date.now(), await r.json()] as const,
  );
  await waitFor('the poll to be held', () => server.messaging.poll.held === 1);
  await new Promise((r) => setTimeout(r, 150));
  const publishedAt = Date.now();
  await publishMany(channel, 1);
  const [answeredAt, body] = await polling;
  assert.ok(publishedAt - started >= 150, 'it was held');
  assert.ok(answeredAt - publishedAt < 200, `answered ${answeredAt - publishedAt} ms after the publish`);
  assert.equal(body.last, 3);
  assert.deepEqual(
    body.messages.map((m: { id: number }) => m.id),
    [3],
  );
});

test('long-poll with nothing new answers with an empty list after the hold time', async () => {
  const channel = 'poll/idle:chat';
  await publishMany(channel, 1);
  const started = Date.now();
  const res = await fetch(`${base}/poll/channels/${channel}?since=1`);
  const elapsed = Date.now() - started;
  assert.deepEqual(await res.json(), { channel, last: 1, messages: [] });
  assert.ok(elapsed >= 550 && elapsed < 1500, `held ${elapsed} ms with pollTimeoutMs 600`);
  // A client that goes away mid-hold is forgotten.
  const controller = new AbortController();
  const aborted = fetch(`${base}/poll/channels/${channel}?since=1`, { signal: controller.signal }).catch(
    () => 'aborted',
  );
  await waitFor('held', () => server.messaging.poll.held === 1);
  controller.abort();
  assert.equal(await aborted, 'aborted');
  await waitFor('released', () => server.messaging.poll.held === 0, 2000);
});

test('long-poll chain: a client polling with each answer`s last id gets everything once', async () => {
  const channel = 'poll/chain:chat';
  let since = 0;
  const got: number[] = [];
  const publishing = publishMany(channel, 25);
  for (let i = 0; i < 50 && got.length < 25; i++) {
    const body = (await (await fetch(`${base}/poll/channels/${channel}?since=${since}`)).json()) as {
      last: number;
      messages: { id: number }[];
    };
    got.push(...body.messages.map((m) => m.id));
    since = body.last;
  }
  await publishing;
  assert.deepEqual(got, range(1, 25));
});

test('HTTP publish: 201 with the stored message; the server sets from, not the client', async () => {
  const listener = await openWs(`${base.replace('http', 'ws')}/ws/channels/http/pub:chat`);
  await listener.waitForFrame('subscribed', (f) => f.event === 'subscribed');
  const r = await httpPublish(base, 'http/pub:chat', {
    type: 'chat',
    data: { text: '<img src=x>' },
    from: 'root',
  });
  assert.equal(r.status, 201);
  assert.equal(r.body.id, 1);
  assert.equal(r.body.channel, 'http/pub:chat');
  assert.match(String(r.body.from), /^anon-/);
  assert.deepEqual(r.body.data, { text: '<img src=x>' });
  const [got] = await listener.waitForIds('http/pub:chat', 1).then(() => listener.messages('http/pub:chat'));
  assert.deepEqual(got, r.body);
  listener.close();
});

test('HTTP publish refusals: bad name 400, bad body 400, too large 413, forbidden 403, flood 429', async () => {
  const s = strict.httpUrl;
  const badName = await httpPublish(s, 'open/no%20space', { type: 'chat', data: 1 });
  assert.equal(badName.status, 400);
  assert.match(String(badName.body.error), /invalid channel name "open\/no space"/);
  const notJson = await httpPublish(s, 'open/a', '[1,2]');
  assert.equal(notJson.status, 400);
  assert.match(String(notJson.body.error), /JSON object/);
  const noType = await httpPublish(s, 'open/a', { data: 1 });
  assert.equal(noType.status, 400);
  assert.match(String(noType.body.error), /message type undefined/);
  const forbidden = await httpPublish(s, 'closed/a', { type: 'chat', data: 1 });
  assert.equal(forbidden.status, 403);
  assert.match(String(forbidden.body.error), /anonymous clients may not publish on channel "closed\/a"/);
  const big = await httpPublish(s, 'open/a', { type: 'chat', data: 'x'.repeat(2000) });
  assert.equal(big.status, 413);
  assert.match(String(big.body.error), /2002 bytes; the limit is 1024/);
  const huge = await httpPublish(s, 'open/a', { type: 'chat', data: 'x'.repeat(10_000) });
  assert.equal(huge.status, 413, 'past the body limit fastify refuses before parsing');
  // 3 tokens: forbidden, big and the first OK ones took some; a flood gets 429 with Retry-After.
  const statuses: number[] = [];
  let retryAfter: string | null = null;
  for (let i = 0; i < 6; i++) {
    const r = await httpPublish(s, 'open/a', { type: 'chat', data: i });
    statuses.push(r.status);
    if (r.status === 429) retryAfter = r.headers.get('retry-after');
  }
  assert.ok(statuses.includes(429), `statuses ${statuses}`);
  assert.equal(retryAfter, '1');
  const unknown = await fetch(`${s}/api/v1/channels/open/a/other`, { method: 'POST', body: '{}' });
  assert.equal(unknown.status, 404);
});

test('per-IP connection limit on SSE and held polls is a 429; the server keeps serving others', async () => {
  const s = strict.httpUrl;
  const a = new SseReader(`${s}/sse/channels/open/x`);
  const b = new SseReader(`${s}/sse/channels/open/x`);
  await a.response;
  await b.response;
  const third = await fetch(`${s}/sse/channels/open/x`);
  assert.equal(third.status, 429);
  assert.match(((await third.json()) as { error: string }).error, /too many messaging connections/);
  const poll = await fetch(`${s}/poll/channels/open/x`);
  assert.equal(poll.status, 429);
  a.close();
  await waitFor('a slot frees', () => strict.messaging.sse.connections === 1);
  const again = new SseReader(`${s}/sse/channels/open/x`);
  assert.equal((await again.response).statusCode, 200);
  again.close();
  b.close();
});

test('reading a channel the policy closes to anonymous clients: 403 on SSE and poll, an error event on WS', async () => {
  const s = strict.httpUrl;
  for (const path of ['sse', 'poll']) {
    const res = await fetch(`${s}/${path}/channels/closed/x`);
    assert.equal(res.status, 403, path);
    assert.match(
      ((await res.json()) as { error: string }).error,
      /anonymous clients may not read channel "closed\/x" \(messaging\.anonymousRead\)/,
    );
  }
  const ws = await openWs(`${s.replace('http', 'ws')}/ws/channels/closed/x`);
  const refusal = await ws.waitForFrame('refusal', (f) => f.event === 'error');
  assert.equal(refusal.code, 'forbidden');
  assert.equal(refusal.channel, 'closed/x');
  ws.send({ op: 'subscribe', channel: 'open/fine' });
  await ws.waitForFrame('a permitted channel on the same socket', (f) => f.event === 'subscribed');
  ws.close();
});

test('presence counts a long-polling client once while it keeps polling, not once per request', async () => {
  const channel = 'poll/presence:chat';
  const observer = await openWs(`${base.replace('http', 'ws')}/ws/channels/${channel}`);
  await observer.waitForFrame('subscribed', (f) => f.event === 'subscribed');
  const first = await fetch(`${base}/poll/channels/${channel}?timeout=0`);
  const token = first.headers.get('x-subsecond-identity') ?? '';
  assert.match(token, /^anon-/, 'the poll answer carries the identity token');
  await first.json();
  for (let i = 0; i < 3; i++) {
    const r: Response = await fetch(
      `${base}/poll/channels/${channel}?timeout=100&identity=${encodeURIComponent(token)}`,
    );
    assert.equal(r.headers.get('x-subsecond-identity'), token, 'the same identity on every poll');
    await r.json();
  }
  const presence = await observer.waitForFrame(
    'presence with the poller',
    (f) =>
      f.event === 'presence' && (f.presence as { transports: Record<string, number> }).transports.poll === 1,
  );
  assert.deepEqual((presence.presence as { transports: unknown }).transports, { ws: 1, poll: 1 });
  // Between polls (none is held now) the client is still present: no flap to 0 after each answer.
  await new Promise((r) => setTimeout(r, 1300));
  const polls = observer
    .events('presence')
    .map((f) => (f.presence as { transports: Record<string, number> }).transports.poll ?? 0);
  assert.ok(
    polls.every((n) => n <= 1),
    `four polls by one client never counted as more than one: ${polls}`,
  );
  assert.equal(polls.at(-1), 1, `the poller is still present between polls: ${polls}`);
  observer.close();
});
