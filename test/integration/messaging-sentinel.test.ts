/**
 * Messaging across nodes through Redis Sentinel (`cluster.redis: redis+sentinel://…`): real redis-servers (a
 * master and its replica) and a sentinel. The master is SIGKILLed; the sentinel promotes the replica, the nodes
 * follow it by themselves, and the channel goes on in the same epoch — the next id follows the last one,
 * live subscribers see no gap, and a client resuming on another node gets the history from before the failover.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import type { RunningServer } from '../../src/server.ts';
import { httpPublish, openWs, range } from '../helpers/channels.ts';
import { startClusterNode } from '../helpers/cluster.ts';
import { closeServers } from '../helpers/messaging.ts';
import { waitFor } from '../helpers/processes.ts';
import { startRedis, startSentinel, type TestRedis } from '../helpers/redis.ts';

let master: TestRedis;
let replica: TestRedis;
let sentinel: Awaited<ReturnType<typeof startSentinel>>;
let a: RunningServer;
let b: RunningServer;

before(async () => {
  master = await startRedis();
  replica = await startRedis({ replicaOf: master });
  const onReplica = new Redis(replica.url);
  await waitFor('the replica to sync', async () =>
    (await onReplica.info('replication')).includes('master_link_status:up'),
  );
  onReplica.disconnect();
  sentinel = await startSentinel(master);
  const onSentinel = new Redis(sentinel.port, '127.0.0.1');
  await waitFor(
    'the sentinel to know the replica',
    async () => ((await onSentinel.call('SENTINEL', 'REPLICAS', 'subsecond')) as unknown[]).length === 1,
    15_000,
  );
  onSentinel.disconnect();
  [a, b] = await Promise.all([
    startClusterNode(sentinel.sentinelUrl),
    startClusterNode(sentinel.sentinelUrl),
  ]);
});

after(async () => {
  await closeServers(a, b);
  await sentinel?.stop();
  await Promise.all([master?.stop(), replica?.stop()]);
});

test('the master is killed: after the failover ids go on in the same epoch, with the history kept', async () => {
  const channel = 'sentinel/failover:chat';
  const watcher = await openWs(`${b.httpUrl.replace('http', 'ws')}/ws/channels/${channel}`);
  try {
    await watcher.waitForFrame('subscribed', (f) => f.event === 'subscribed');
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await httpPublish(a.httpUrl, channel, { type: 'chat', data: i });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      ids.push(r.body.id as number);
    }
    assert.deepEqual(await watcher.waitForIds(channel, 5), ids);
    // Every acknowledged write is on the replica before the master dies (replication is asynchronous).
    const onMaster = new Redis(master.url);
    assert.equal(await onMaster.call('WAIT', '1', '2000'), 1);
    onMaster.disconnect();

    await master.kill();
    const after = await waitFor(
      'a publish to succeed on the promoted replica',
      async () => {
        const r = await httpPublish(a.httpUrl, channel, { type: 'chat', data: 'after' });
        return r.status === 201 ? r : null;
      },
      30_000,
    );
    assert.equal(after?.body.id, ids[4] + 1, 'the same epoch: the next id follows the last');
    assert.deepEqual(await watcher.waitForIds(channel, 6, 15_000), [...ids, ids[4] + 1]);
    assert.equal(watcher.events('gap').length, 0, 'no gap: nothing was lost');
    const poll = (await (await fetch(`${b.httpUrl}/poll/channels/${channel}?since=${ids[0]}`)).json()) as {
      messages: { id: number }[];
    };
    assert.deepEqual(
      poll.messages.map((m) => m.id),
      range(ids[1], ids[4] + 1),
    );
  } finally {
    watcher.close();
  }
});
