import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { createRedisClient } from '../../src/cluster/redis.ts';
import { waitFor } from '../helpers/processes.ts';
import { startRedis, startSentinel, type TestRedis } from '../helpers/redis.ts';

const log = pino({ level: 'silent' });
let redis: TestRedis;
let sentinel: Awaited<ReturnType<typeof startSentinel>>;

before(async () => {
  redis = await startRedis();
  sentinel = await startSentinel(redis);
});
after(async () => {
  await sentinel?.stop();
  await redis?.stop();
});

test('cluster.redis as redis:// reaches the server', async () => {
  const client = createRedisClient(redis.url, { log, connectionName: 'subsecond:test:direct' });
  try {
    await waitFor('ready', () => client.status === 'ready');
    await client.set('k', 'direct');
    assert.equal(await client.get('k'), 'direct');
    assert.match((await client.client('GETNAME')) as string, /subsecond:test:direct/);
  } finally {
    client.disconnect();
  }
});

test('cluster.redis as redis+sentinel:// finds the master through the sentinel', async () => {
  const client = createRedisClient(sentinel.sentinelUrl, { log, connectionName: 'subsecond:test:sentinel' });
  try {
    await waitFor('ready through sentinel', () => client.status === 'ready');
    await client.set('k', 'via-sentinel');
    assert.equal(await client.get('k'), 'via-sentinel');
  } finally {
    client.disconnect();
  }
});

test('while Redis is down a command fails at once, and the client reconnects when it returns', async () => {
  const client = createRedisClient(redis.url, { log, connectionName: 'subsecond:test:outage' });
  try {
    await waitFor('ready', () => client.status === 'ready');
    await redis.kill();
    await waitFor('client notices', () => client.status !== 'ready');
    const started = Date.now();
    await assert.rejects(client.get('k'));
    assert.ok(Date.now() - started < 1000, 'a command during an outage must not wait');
    await redis.start();
    await waitFor('reconnected', () => client.status === 'ready', 10_000);
    assert.equal(await client.ping(), 'PONG');
  } finally {
    client.disconnect();
  }
});
