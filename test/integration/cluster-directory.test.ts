import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { createRedisClient } from '../../src/cluster/redis.ts';
import { StreamDirectory } from '../../src/cluster/StreamDirectory.ts';
import { type RunningServer, startServer } from '../../src/server.ts';
import { waitFor } from '../helpers/processes.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';

const log = pino({ level: 'silent' });
let redis: TestRedis;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis?.stop();
});

test('a stale origin can neither refresh nor release a newer claim (fencing)', async () => {
  const client = createRedisClient(redis.url, { log, connectionName: 'subsecond:test:fencing' });
  try {
    await waitFor('ready', () => client.status === 'ready');
    const a = new StreamDirectory(client, 'node-a', () => 'http://a');
    const b = new StreamDirectory(client, 'node-b', () => 'http://b');
    const first = await a.claim('live/fence', 1);
    assert.ok(first.ok);
    const refused = await b.claim('live/fence', 2);
    assert.equal(refused.ok, false, 'a live claim of another node is not taken');
    assert.equal(!refused.ok && refused.holder.node, 'node-a');
    // node-a pauses past the TTL: its claim expires and node-b claims the path.
    await client.del('subsecond:cluster:stream:{live/fence}');
    const second = await b.claim('live/fence', 3);
    assert.ok(second.ok && first.ok);
    assert.ok(second.claim.generation > first.claim.generation);
    // node-a wakes up: its refresh and release must leave node-b's claim alone.
    assert.equal(await a.refresh(first.claim), false);
    assert.equal(await a.release(first.claim), false);
    assert.equal((await a.lookup('live/fence'))?.node, 'node-b');
    // And after node-b's claim expired too, the stale one is still not taken back (a newer generation exists).
    await client.del('subsecond:cluster:stream:{live/fence}');
    assert.equal(await a.refresh(first.claim), false);
    assert.equal(await a.lookup('live/fence'), null);
    // The current holder re-takes its own claim after Redis lost it (restart without persistence).
    assert.equal(await b.refresh(second.claim), true);
    assert.equal((await a.lookup('live/fence'))?.generation, second.claim.generation);
    assert.equal(await b.release(second.claim), true);
    assert.equal(await a.lookup('live/fence'), null);
  } finally {
    client.disconnect();
  }
});

test('locate, 307 redirects and 503 at capacity', async () => {
  const common = {
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { enabled: false },
    log: { level: 'warn' },
  } as const;
  let full: RunningServer | undefined;
  let open: RunningServer | undefined;
  try {
    full = await startServer({
      ...common,
      webrtc: { enabled: true },
      cluster: { redis: redis.url, secret: 's', nodeId: 'full', redirect: true, maxViewers: 1 },
    });
    // A node that counts one viewer is at capacity with maxViewers 1.
    full.registry.publish('live/x', { protocol: 'test', remoteAddress: '', id: 't', close() {} });
    full.registry.get('live/x')?.addViewer('mse');
    open = await startServer({
      ...common,
      cluster: { redis: redis.url, secret: 's', nodeId: 'open', redirect: true },
    });
    await full.cluster?.tick();
    await open.cluster?.tick();
    await waitFor('both nodes seen', async () => {
      await full?.cluster?.tick();
      return full?.cluster?.nodes.length === 2;
    });
    const where = (await (
      await fetch(`${full.httpUrl}/api/v1/streams/live/y/locate?transport=hls`)
    ).json()) as {
      node: string;
      url: string;
    };
    assert.equal(where.node, 'open');
    assert.equal(where.url, `${open.httpUrl}/hls/live/y/index.m3u8`);
    const bad = await fetch(`${full.httpUrl}/api/v1/streams/live/y/locate?transport=smoke`);
    assert.equal(bad.status, 400);
    const whep = await fetch(`${full.httpUrl}/whep/live/y`, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp' },
      body: 'v=0\r\n',
      redirect: 'manual',
    });
    assert.equal(whep.status, 307);
    assert.equal(whep.headers.get('location'), `${open.httpUrl}/whep/live/y`);
    // Without a node to send it to, a full node answers 503 with Retry-After.
    await open.close();
    open = undefined;
    await waitFor('the open node gone from routing', async () => {
      await full?.cluster?.tick();
      return full?.cluster?.nodes.length === 1;
    });
    const refused = await fetch(`${full.httpUrl}/whep/live/y`, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp' },
      body: 'v=0\r\n',
      redirect: 'manual',
    });
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get('retry-after'), '2');
    assert.match(((await refused.json()) as { error: string }).error, /node full is at capacity/);
  } finally {
    await open?.close();
    await full?.close();
  }
});

test('Redis unreachable at start: the node says so, serves its own streams and reports degraded', async () => {
  const server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { enabled: false },
    webrtc: { enabled: false },
    log: { level: 'silent' },
    cluster: { redis: 'redis://127.0.0.1:1', secret: 's', nodeId: 'lonely' },
  });
  try {
    const health = (await (await fetch(`${server.httpUrl}/healthz`)).json()) as { status: string };
    assert.equal(health.status, 'cluster degraded');
    assert.match(String(server.cluster?.degradedReason), /Redis unreachable/);
    const stream = server.registry.publish('live/local', {
      protocol: 'test',
      remoteAddress: '',
      id: 't',
      close() {},
    });
    await server.registry.confirmPublish(stream, stream.publisher!);
    assert.equal((await server.registry.acquire('live/local'))?.path, 'live/local');
  } finally {
    await server.close();
  }
});
