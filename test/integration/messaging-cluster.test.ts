/**
 * Messaging across nodes on a real redis-server: one id sequence per channel whichever node publishes, live
 * delivery to every node, resume on another node, an explicit reset gap when Redis loses a channel (and no id
 * reused), 503 during an outage and delivery resuming after it, presence totals across nodes and after a node
 * is SIGKILLed, and one order of bids everywhere.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import type { RunningServer } from '../../src/server.ts';
import { httpPublish, openWs, range, SseReader, type WsChannelClient } from '../helpers/channels.ts';
import { type ChildNode, spawnClusterNode, startClusterNode } from '../helpers/cluster.ts';
import { closeServers } from '../helpers/messaging.ts';
import { waitFor } from '../helpers/processes.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';

let redis: TestRedis;
let a: RunningServer;
let b: RunningServer;
let admin: Redis;

before(async () => {
  redis = await startRedis();
  [a, b] = await Promise.all([startClusterNode(redis.url), startClusterNode(redis.url)]);
  admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  admin.on('error', () => {});
});

after(async () => {
  admin.disconnect();
  await closeServers(a, b);
  await redis.stop();
});

const wsBase = (s: RunningServer) => s.httpUrl.replace('http', 'ws');

async function subscribeWs(node: RunningServer, channel: string, since?: number): Promise<WsChannelClient> {
  const query = since === undefined ? '' : `?since=${since}`;
  const ws = await openWs(`${wsBase(node)}/ws/channels/${channel}${query}`);
  await ws.waitForFrame('subscribed', (f) => f.event === 'subscribed');
  return ws;
}

test('a message published on one node reaches subscribers on both, with one dense id sequence', async () => {
  const channel = 'cluster/basic:chat';
  const onA = await subscribeWs(a, channel);
  const onB = await subscribeWs(b, channel);
  try {
    const ids: number[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await httpPublish(i % 2 ? a.httpUrl : b.httpUrl, channel, { type: 'chat', data: { i } });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      ids.push(r.body.id as number);
    }
    assert.deepEqual(ids, range(ids[0], ids[0] + 19), 'ids from two nodes are one dense sequence');
    assert.deepEqual(await onA.waitForIds(channel, 20), ids);
    assert.deepEqual(await onB.waitForIds(channel, 20), ids);
    // Resume on the other node from the middle: exactly what followed.
    const resumed = await subscribeWs(b, channel, ids[9]);
    assert.deepEqual(await resumed.waitForIds(channel, 10), ids.slice(10));
    resumed.close();
    const sse = new SseReader(`${a.httpUrl}/sse/channels/${channel}`, { 'last-event-id': String(ids[14]) });
    await waitFor('SSE resume on node A', () => sse.events.filter((e) => e.event === 'message').length >= 5);
    assert.deepEqual(
      sse.events.filter((e) => e.event === 'message').map((e) => Number(e.id)),
      ids.slice(15),
    );
    sse.close();
    const poll = (await (await fetch(`${b.httpUrl}/poll/channels/${channel}?since=${ids[17]}`)).json()) as {
      messages: { id: number }[];
    };
    assert.deepEqual(
      poll.messages.map((m) => m.id),
      ids.slice(18),
    );
  } finally {
    onA.close();
    onB.close();
  }
});

test('Redis FLUSHALL: live subscribers get a reset gap, resuming clients too, and no id is reused', async () => {
  const channel = 'cluster/flush:chat';
  const before = [];
  for (let i = 0; i < 5; i++)
    before.push((await httpPublish(a.httpUrl, channel, { type: 'chat', data: i })).body);
  const oldIds = before.map((m) => m.id as number);
  const live = await subscribeWs(b, channel, oldIds[4]);
  try {
    await admin.flushall();
    const after = await httpPublish(a.httpUrl, channel, { type: 'chat', data: 'after' });
    assert.equal(after.status, 201);
    const newId = after.body.id as number;
    assert.ok(newId > oldIds[4], `the new epoch's id ${newId} is above every old id (${oldIds[4]})`);
    const gap = await live.waitForFrame('a reset gap', (f) => f.event === 'gap');
    assert.equal(gap.reason, 'reset');
    assert.equal(gap.since, oldIds[4]);
    assert.equal(gap.resumeFrom, newId - 1);
    assert.deepEqual(await live.waitForIds(channel, 1), [newId]);
    assert.ok(
      live.frames.indexOf(gap) < live.frames.findIndex((f) => f.event === 'message'),
      'the gap comes before the message',
    );
    // A client that resumes with an id of the lost epoch is told so, and gets the new epoch's messages.
    const resumed = await subscribeWs(a, channel, oldIds[2]);
    const resumedGap = await resumed.waitForFrame('a reset gap on resume', (f) => f.event === 'gap');
    assert.equal(resumedGap.reason, 'reset');
    assert.deepEqual(await resumed.waitForIds(channel, 1), [newId]);
    resumed.close();
  } finally {
    live.close();
  }
});

test('Redis down: publishes answer 503 (HTTP) and an error event (WebSocket); delivery resumes after', async () => {
  const channel = 'cluster/outage:chat';
  const first = await httpPublish(a.httpUrl, channel, { type: 'chat', data: 'first' });
  assert.equal(first.status, 201);
  const onB = await subscribeWs(b, channel, first.body.id as number);
  const publisher = await subscribeWs(a, channel);
  try {
    await redis.kill();
    const refused = await httpPublish(a.httpUrl, channel, { type: 'chat', data: 'lost?' });
    assert.equal(refused.status, 503, JSON.stringify(refused.body));
    assert.match(String(refused.body.error), /Redis is unreachable/);
    assert.equal(refused.headers.get('retry-after'), '1');
    const ref = publisher.publish(channel, 'chat', 'during');
    const error = await publisher.waitForFrame('an error event', (f) => f.event === 'error' && f.ref === ref);
    assert.equal(error.code, 'unavailable');
    await redis.start();
    // A new Redis without persistence: the channel is a new epoch, told as a reset gap.
    const back = await waitFor('a publish to succeed again', async () => {
      const r = await httpPublish(a.httpUrl, channel, { type: 'chat', data: 'back' });
      return r.status === 201 ? r : null;
    });
    const id = back?.body.id as number;
    assert.deepEqual(await onB.waitForIds(channel, 1), [id]);
    assert.equal(onB.events('gap').length, 1);
    assert.deepEqual(await publisher.waitForIds(channel, 1), [id]);
  } finally {
    onB.close();
    publisher.close();
  }
});

test('presence totals count both nodes and a SIGKILLed node disappears within 5 s', async () => {
  const channel = 'cluster/presence:chat';
  let child: ChildNode | undefined;
  const clients: WsChannelClient[] = [];
  try {
    child = await spawnClusterNode(redis.url);
    clients.push(await subscribeWs(a, channel), await subscribeWs(a, channel), await subscribeWs(b, channel));
    const sse = new SseReader(`${child.httpUrl}/sse/channels/${channel}`);
    const watcher = clients[2];
    const connections = () => {
      const p = watcher.events('presence').at(-1)?.presence as { connections: number } | undefined;
      return p?.connections;
    };
    await waitFor('presence of 4 connections on 3 nodes', () => connections() === 4, 8000);
    const killedAt = Date.now();
    await child.kill();
    await waitFor("the killed node's connection to leave the totals", () => connections() === 3, 8000);
    const took = Date.now() - killedAt;
    assert.ok(took < 5000, `the dead node's count went after ${took} ms`);
    sse.close();
  } finally {
    for (const c of clients) c.close();
    await child?.kill();
  }
});

test('auction: bids from bidders on different nodes arrive in one order on every node', async () => {
  const channel = 'cluster/auction:bids';
  const watchers = [await subscribeWs(a, channel), await subscribeWs(b, channel)];
  const bidders = [
    await subscribeWs(a, channel),
    await subscribeWs(b, channel),
    await subscribeWs(a, channel),
  ];
  try {
    const bidsEach = 30;
    for (let i = 0; i < bidsEach; i++) {
      for (const [n, bidder] of bidders.entries()) {
        bidder.publish(channel, 'bid', { bidder: n, amount: 100 + i * 3 + n });
      }
    }
    const total = bidsEach * bidders.length;
    const orders = await Promise.all(
      [...watchers, ...bidders].map(async (w) => {
        await w.waitForIds(channel, total, 15_000);
        return w.messages(channel).map((m) => `${m.id}:${JSON.stringify(m.data)}`);
      }),
    );
    for (const order of orders.slice(1)) assert.deepEqual(order, orders[0]);
    const ids = orders[0].map((o) => Number(o.split(':')[0]));
    assert.deepEqual(ids, range(ids[0], ids[0] + total - 1));
  } finally {
    for (const w of [...watchers, ...bidders]) w.close();
  }
});
