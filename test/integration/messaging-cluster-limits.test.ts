/**
 * Messaging across nodes when Redis is stuck or history is large, on a real redis-server: a paused Redis
 * (SIGSTOP) makes a publish fail within cluster.redisCommandTimeoutMs with a 503 naming it, the refused message
 * is never stored once Redis runs again, and delivery goes on; messaging.maxHistoryBytesTotal bounds the bytes
 * of all channels' histories together across nodes, the least recently used channel losing its oldest first;
 * one connection's publishes are pipelined to a distant Redis, in order, not one round trip each.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import type { RunningServer } from '../../src/server.ts';
import { httpPublish, openWs, range, type WsChannelClient } from '../helpers/channels.ts';
import { startClusterNode } from '../helpers/cluster.ts';
import { closeServers } from '../helpers/messaging.ts';
import { waitFor } from '../helpers/processes.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';

const COMMAND_TIMEOUT_MS = 500;
const TOTAL_BYTES = 8192;

let redis: TestRedis;
let a: RunningServer;
let b: RunningServer;
let admin: Redis;

before(async () => {
  redis = await startRedis();
  const node = () =>
    startClusterNode(
      redis.url,
      { maxHistoryBytesTotal: TOTAL_BYTES },
      { redisCommandTimeoutMs: COMMAND_TIMEOUT_MS },
    );
  [a, b] = await Promise.all([node(), node()]);
  admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  admin.on('error', () => {});
});

after(async () => {
  admin.disconnect();
  await closeServers(a, b);
  await redis.stop();
});

async function subscribeWs(node: RunningServer, channel: string): Promise<WsChannelClient> {
  const ws = await openWs(`${node.httpUrl.replace('http', 'ws')}/ws/channels/${channel}`);
  await ws.waitForFrame('subscribed', (f) => f.event === 'subscribed');
  return ws;
}

interface Poll {
  last: number;
  gap?: { reason: string; missed: number; resumeFrom: number };
  messages: { id: number }[];
}

async function poll(node: RunningServer, channel: string, since: number): Promise<Poll> {
  return (await (await fetch(`${node.httpUrl}/poll/channels/${channel}?since=${since}`)).json()) as Poll;
}

test('a paused Redis: publishes fail within the command timeout, naming it, and are never stored later', async () => {
  const channel = 'limits/paused:chat';
  const first = await httpPublish(a.httpUrl, channel, { type: 'chat', data: 'first' });
  assert.equal(first.status, 201, JSON.stringify(first.body));
  const firstId = first.body.id as number;
  const onB = await subscribeWs(b, channel);
  const publisher = await subscribeWs(a, channel);
  let resumed = false;
  try {
    redis.pause();
    const startedAt = Date.now();
    const refused = await httpPublish(a.httpUrl, channel, { type: 'chat', data: 'during (HTTP)' });
    const took = Date.now() - startedAt;
    assert.equal(refused.status, 503, JSON.stringify(refused.body));
    assert.match(
      String(refused.body.error),
      /did not answer within 500 ms \(cluster\.redisCommandTimeoutMs\), the message was not stored/,
    );
    assert.equal(refused.headers.get('retry-after'), '1');
    assert.ok(took >= COMMAND_TIMEOUT_MS - 50, `refused after ${took} ms, not before the timeout`);
    assert.ok(took < COMMAND_TIMEOUT_MS + 2500, `refused after ${took} ms: the timeout bounds the wait`);
    const ref = publisher.publish(channel, 'chat', 'during (WebSocket)');
    const error = await publisher.waitForFrame('an error event', (f) => f.event === 'error' && f.ref === ref);
    assert.equal(error.code, 'unavailable');
    assert.match(String(error.message), /did not answer within 500 ms/);
    // Redis stays stuck well past the deadline of both publishes, then runs what waited on its sockets.
    await new Promise((r) => setTimeout(r, 1500));
    redis.resume();
    resumed = true;
    const back = await waitFor('a publish to succeed again', async () => {
      const r = await httpPublish(a.httpUrl, channel, { type: 'chat', data: 'after' });
      return r.status === 201 ? r : null;
    });
    // The refused messages took no id: the next one follows the first, and both nodes see only these two.
    assert.equal(back?.body.id, firstId + 1);
    assert.deepEqual(await onB.waitForIds(channel, 1), [firstId + 1]);
    assert.deepEqual(await publisher.waitForIds(channel, 1), [firstId + 1]);
    assert.equal(onB.events('gap').length, 0);
    const history = await poll(b, channel, firstId - 1);
    assert.deepEqual(
      history.messages.map((m) => m.id),
      [firstId, firstId + 1],
    );
  } finally {
    if (!resumed) redis.resume();
    onB.close();
    publisher.close();
  }
});

/** What the channel's log holds in Redis: its messages' JSON bytes (counted from the entries) and its meta. */
async function heldBytes(channel: string): Promise<{ counted: number; meta: number }> {
  const entries = (await admin.xrange(`{ch:${channel}}:log`, '-', '+')) as [string, string[]][];
  const counted = entries.reduce((n, [, fields]) => n + Buffer.byteLength(fields[1]), 0);
  return { counted, meta: Number((await admin.hget(`{ch:${channel}}:meta`, 'bytes')) ?? 0) };
}

test('maxHistoryBytesTotal bounds all channels together across nodes; the least recently used loses first', async () => {
  const older = 'limits/total:older';
  const newer = 'limits/total:newer';
  const data = 'x'.repeat(400);
  const olderIds: number[] = [];
  for (let i = 0; i < 10; i++) {
    olderIds.push(
      (await httpPublish(a.httpUrl, older, { type: 'chat', data: { i, data } })).body.id as number,
    );
  }
  const newerIds: number[] = [];
  for (let i = 0; i < 10; i++) {
    newerIds.push(
      (await httpPublish(b.httpUrl, newer, { type: 'chat', data: { i, data } })).body.id as number,
    );
  }
  // Each channel alone is under historyMaxBytes (1 MiB); together they pass the total of 8 KiB.
  const together = async () => (await heldBytes(older)).counted + (await heldBytes(newer)).counted;
  await waitFor(
    'the total to come within maxHistoryBytesTotal',
    async () => (await together()) <= TOTAL_BYTES,
  );
  const [o, n] = [await heldBytes(older), await heldBytes(newer)];
  assert.equal(o.meta, o.counted, "the older channel's byte count matches its log");
  assert.equal(n.meta, n.counted, "the newer channel's byte count matches its log");
  assert.ok(o.counted + n.counted > TOTAL_BYTES / 2, 'trimmed to the bound, not emptied');
  // The newer channel kept everything; the older one lost its oldest messages, told as an evicted gap.
  const newerPoll = await poll(a, newer, newerIds[0] - 1);
  assert.equal(newerPoll.gap, undefined);
  assert.deepEqual(
    newerPoll.messages.map((m) => m.id),
    newerIds,
  );
  const olderPoll = await poll(a, older, olderIds[0] - 1);
  assert.equal(olderPoll.gap?.reason, 'evicted');
  const kept = olderPoll.messages.map((m) => m.id);
  assert.ok(kept.length > 0 && kept.length < 10, `the older channel kept ${kept.length} of 10`);
  assert.deepEqual(kept, range(olderIds[10 - kept.length], olderIds[9]), 'its newest are the ones kept');
  assert.equal(olderPoll.gap?.missed, 10 - kept.length);
  const total = Number(await admin.get('{messaging}:htotal'));
  assert.equal(total, o.counted + n.counted, 'the cluster-wide total matches what the logs hold');
});

test('a channel whose log expired while its meta lived on starts counting its bytes afresh', async () => {
  const channel = 'limits/expired:chat';
  await httpPublish(a.httpUrl, channel, { type: 'chat', data: 'x'.repeat(2000) });
  // What Redis does when the log's TTL (historyMaxAgeMs + 60 s) passes before the meta's (24 h).
  await admin.del(`{ch:${channel}}:log`);
  await httpPublish(b.httpUrl, channel, { type: 'chat', data: 'small' });
  const held = await heldBytes(channel);
  assert.equal(held.meta, held.counted, 'the count is what the log holds, not the expired messages too');
});

/** A TCP relay to Redis that holds every chunk `delayMs` in each direction (in order): a Redis far away. */
async function startDelayedRelay(port: number, delayMs: number): Promise<{ url: string; server: Server }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = new Socket();
    upstream.connect(port, '127.0.0.1');
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ]) {
      sockets.add(from);
      from.on('data', (chunk) => setTimeout(() => to.write(chunk), delayMs));
      from.on('error', () => {});
      from.on('close', () => setTimeout(() => to.destroy(), delayMs));
    }
  });
  server.on('close', () => {
    for (const s of sockets) s.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `redis://127.0.0.1:${(server.address() as { port: number }).port}`, server };
}

test('a connection publishing to a distant Redis is not held to one round trip per message, and keeps its order', async () => {
  const relay = await startDelayedRelay(redis.port, 25);
  const far = await startClusterNode(relay.url);
  const channel = 'limits/far:chat';
  const ws = await subscribeWs(far, channel);
  try {
    const count = 40;
    const startedAt = Date.now();
    const refs: string[] = [];
    for (let i = 0; i < count; i++) refs.push(ws.publish(channel, 'chat', { i }));
    await waitFor(`${count} acks`, () => ws.events('ack').length >= count, 20_000);
    const took = Date.now() - startedAt;
    // One after the other: at least 40 round trips of 50 ms (2 s); pipelined, about one.
    assert.ok(took < 1500, `${count} publishes took ${took} ms over a 50 ms round trip`);
    const acks = ws.events('ack');
    assert.deepEqual(
      acks.map((a) => a.ref),
      refs,
      'acknowledged in the order sent',
    );
    const ids = acks.map((a) => a.id as number);
    assert.deepEqual(ids, range(ids[0], ids[0] + count - 1), 'stored in the order sent, dense');
    const delivered = await ws.waitForIds(channel, count);
    assert.deepEqual(delivered, ids);
    assert.deepEqual(
      ws.messages(channel).map((m) => (m.data as { i: number }).i),
      range(0, count - 1),
    );
  } finally {
    ws.close();
    await far.close();
    relay.server.close();
  }
});
