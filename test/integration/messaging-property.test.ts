/**
 * Property: under a random (seeded) interleaving of publishes, client-side drops, server-side drops and
 * late joins across 50 clients on mixed transports (the SDK over WebSocket and long-poll in Node, raw SSE
 * readers resuming with Last-Event-ID as EventSource does), every client ends with exactly the channel's
 * sequence from its first id: nothing lost, nothing twice, nothing out of order.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ChannelEvent, type ChannelMessage, SubsecondChannel } from '../../client/messaging/index.ts';
import type { RunningServer } from '../../src/server.ts';
import { httpPublish, range, SseReader } from '../helpers/channels.ts';
import { RoundRobinProxy, spawnClusterNode, startClusterNode } from '../helpers/cluster.ts';
import { closeServers, startMessagingServer } from '../helpers/messaging.ts';
import { waitFor } from '../helpers/processes.ts';
import { startRedis } from '../helpers/redis.ts';

let server: RunningServer;

before(async () => {
  server = await startMessagingServer({
    messaging: { historyMaxMessages: 5000, pollTimeoutMs: 1000, maxConnectionsPerIp: 1000 },
  });
});

after(() => closeServers(server));

/** mulberry32: a small seeded generator, so a failing interleaving can be replayed from its seed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Follower {
  readonly label: string;
  ids(): number[];
  state(): string;
  /** Subscribed, so the next message published reaches it. */
  ready(): boolean;
  /** Drops the connection as a network failure would; it resumes by itself. */
  drop(): void;
  close(): void;
}

function sdkFollower(
  channel: string,
  transport: 'ws' | 'poll',
  label: string,
  base = server.httpUrl,
): Follower & { sdk: SubsecondChannel } {
  const ids: number[] = [];
  const sdk = new SubsecondChannel(channel, {
    server: base,
    transport,
    backoffBaseMs: 20,
    backoffMaxMs: 200,
  });
  sdk.on(ChannelEvent.Message, (m: ChannelMessage) => ids.push(m.id));
  sdk.on(ChannelEvent.Gap, (gap) => assert.fail(`${label}: unexpected gap ${JSON.stringify(gap)}`));
  return {
    label,
    sdk,
    ready: () => sdk.state === 'open',
    ids: () => ids,
    state: () => `${sdk.state} ${sdk.transport} last ${sdk.lastId}`,
    drop: () => sdk.reconnect(),
    close: () => sdk.close(),
  };
}

/** Reads SSE and, when dropped, reconnects with Last-Event-ID like EventSource (same URL, header added). */
function sseFollower(
  channel: string,
  label: string,
  base = server.httpUrl,
  reconnectOnEnd = false,
): Follower {
  const url = `${base}/sse/channels/${channel}`;
  const ids: number[] = [];
  let reader = new SseReader(url);
  let seen = 0;
  let lastEventId = '';
  const collect = () => {
    for (; seen < reader.events.length; seen++) {
      const e = reader.events[seen];
      if (e.id !== undefined) lastEventId = e.id;
      if (e.event === 'message') ids.push((JSON.parse(e.data) as ChannelMessage).id);
    }
  };
  const reconnect = () => {
    collect();
    reader.close();
    seen = 0;
    reader = new SseReader(url, lastEventId ? { 'last-event-id': lastEventId } : {});
  };
  let endedAt = 0;
  const timer = setInterval(() => {
    collect();
    if (!reconnectOnEnd || !reader.ended) return;
    // EventSource waits `retry:` ms before reconnecting; 50 keeps the test short.
    endedAt ||= performance.now();
    if (performance.now() - endedAt > 50) {
      endedAt = 0;
      reconnect();
    }
  }, 5);
  return {
    label,
    ready: () => reader.events.some((e) => e.event === 'subscribed'),
    state: () => `events ${reader.events.length}, Last-Event-ID ${lastEventId}`,
    ids: () => {
      collect();
      return ids;
    },
    drop: reconnect,
    close: () => {
      clearInterval(timer);
      reader.close();
    },
  };
}

for (const seed of [1, 2]) {
  test(`50 clients on mixed transports, random drops and joins (seed ${seed}): each has the exact sequence`, async () => {
    const random = seeded(seed);
    const channel = `property/${seed}:chat`;
    const followers: Follower[] = [];
    try {
      const publishers: SubsecondChannel[] = [];
      const join = () => {
        const n = followers.length;
        const kind = n % 5;
        if (kind === 4) followers.push(sseFollower(channel, `sse#${n}`));
        else {
          const f = sdkFollower(channel, kind === 3 ? 'poll' : 'ws', `${kind === 3 ? 'poll' : 'ws'}#${n}`);
          followers.push(f);
          publishers.push(f.sdk);
        }
      };
      for (let i = 0; i < 20; i++) join();
      await waitFor(
        'the first clients to connect',
        () => publishers.every((p) => p.state === 'open'),
        10_000,
      );

      let published = 0;
      let serverDrops = 0;
      const inFlight: Promise<unknown>[] = [];
      for (let step = 0; step < 400; step++) {
        const r = random();
        if (r < 0.55) {
          const open = publishers.filter((p) => p.state === 'open');
          if (open.length === 0) continue;
          const from = open[Math.floor(random() * open.length)];
          published++;
          inFlight.push(
            from.publish('chat', { step }).catch(async () => {
              // Lost with its connection before the ack: it may or may not have been stored. Retry over HTTP
              // makes the count ambiguous, so count what the server holds at the end instead.
            }),
          );
        } else if (r < 0.75) {
          followers[Math.floor(random() * followers.length)].drop();
        } else if (r < 0.8) {
          serverDrops += server.messaging.ws.dropAll() > 0 ? 1 : 0;
        } else if (r < 0.87 && followers.length < 50) {
          join();
        } else {
          await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 15)));
        }
        if (step % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      while (followers.length < 50) join();
      await Promise.all(inFlight);
      await waitFor('every client to be subscribed', () => followers.every((f) => f.ready()), 10_000);
      const lastId = (await server.messaging.messaging.bus.replay(channel, undefined)).lastId;
      assert.ok(lastId >= published * 0.5, `${lastId} stored of ${published} tried`);
      // A final message that every client, even the last to join, must receive.
      const final = await publishers[0].publish('chat', 'final').catch(() => null);
      const end = final?.id ?? lastId + 1;
      if (!final) {
        const r = await fetch(`${server.httpUrl}/api/v1/channels/${channel}/messages`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{"type":"chat","data":"final"}',
        });
        assert.equal(r.status, 201);
      }
      try {
        await waitFor(
          'every client to reach the final message',
          () => followers.every((f) => f.ids().at(-1) === end),
          15_000,
        );
      } catch (error) {
        const behind = followers.filter((f) => f.ids().at(-1) !== end);
        for (const f of behind) f.close();
        throw new Error(
          `${(error as Error).message}: ${behind.map((f) => `${f.label} at ${f.ids().at(-1)} (${f.state()})`).join(', ')}`,
        );
      }
      for (const f of followers) {
        const ids = f.ids();
        assert.deepEqual(ids, range(ids[0], end), `${f.label} got ${ids.length} ids from ${ids[0]}`);
      }
      console.log(
        `seed ${seed}: ${end} messages, ${followers.length} clients, ${serverDrops} server-side drops, ` +
          `${publishers.reduce((n, p) => n + p.reconnects, 0)} SDK reconnects, ` +
          `${publishers.reduce((n, p) => n + p.duplicatesDropped, 0)} duplicates dropped by clients`,
      );
      assert.equal(
        publishers.reduce((n, p) => n + p.duplicatesDropped, 0),
        0,
      );
    } finally {
      for (const f of followers) f.close();
    }
  });
}

test('three nodes behind a round-robin balancer, clients moving between them, one node SIGKILLed and Redis restarted: each has the exact sequence', async () => {
  const random = seeded(3);
  const channel = 'property/cluster:chat';
  const redis = await startRedis({ persistent: true });
  const settings = { historyMaxMessages: 5000, pollTimeoutMs: 1000, maxConnectionsPerIp: 1000 };
  const nodes = await Promise.all([
    startClusterNode(redis.url, settings),
    startClusterNode(redis.url, settings),
  ]);
  const doomed = await spawnClusterNode(redis.url, settings);
  const balancer = new RoundRobinProxy([...nodes.map((n) => n.httpPort), doomed.port]);
  await balancer.listen();
  const followers: Follower[] = [];
  const publishers: SubsecondChannel[] = [];
  try {
    const join = () => {
      const n = followers.length;
      const kind = n % 5;
      if (kind === 4) followers.push(sseFollower(channel, `sse#${n}`, balancer.url, true));
      else {
        const transport = kind === 3 ? 'poll' : 'ws';
        const f = sdkFollower(channel, transport, `${transport}#${n}`, balancer.url);
        followers.push(f);
        publishers.push(f.sdk);
      }
    };
    for (let i = 0; i < 20; i++) join();
    await waitFor('the first clients to connect', () => followers.every((f) => f.ready()), 15_000);
    const inFlight: Promise<unknown>[] = [];
    let serverDrops = 0;
    for (let step = 0; step < 400; step++) {
      if (step === 130) await doomed.kill();
      if (step === 260) {
        await redis.kill();
        await new Promise((resolve) => setTimeout(resolve, 300));
        await redis.start();
      }
      const r = random();
      if (r < 0.55) {
        const open = publishers.filter((p) => p.state === 'open');
        if (open.length === 0) continue;
        const from = open[Math.floor(random() * open.length)];
        // Refused while Redis is down, or lost with a connection: counted from what Redis holds at the end.
        inFlight.push(from.publish('chat', { step }).catch(() => {}));
      } else if (r < 0.75) {
        followers[Math.floor(random() * followers.length)].drop();
      } else if (r < 0.8) {
        for (const node of nodes) serverDrops += node.messaging.ws.dropAll() > 0 ? 1 : 0;
      } else if (r < 0.87 && followers.length < 50) {
        join();
      } else {
        await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 15)));
      }
      if (step % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    while (followers.length < 50) join();
    await Promise.all(inFlight);
    await waitFor('every client to be subscribed', () => followers.every((f) => f.ready()), 15_000);
    const final = await waitFor('the final message to be accepted', async () => {
      const r = await httpPublish(balancer.url, channel, { type: 'chat', data: 'final' });
      return r.status === 201 ? (r.body.id as number) : 0;
    });
    try {
      await waitFor(
        'every client to reach the final message',
        () => followers.every((f) => f.ids().at(-1) === final),
        20_000,
      );
    } catch (error) {
      const behind = followers.filter((f) => f.ids().at(-1) !== final);
      throw new Error(
        `${(error as Error).message}: ${behind.map((f) => `${f.label} at ${f.ids().at(-1)} (${f.state()})`).join(', ')}`,
      );
    }
    let lost = 0;
    let duplicated = 0;
    for (const f of followers) {
      const ids = f.ids();
      const expected = range(ids[0], final);
      const got = new Set(ids);
      duplicated += ids.length - got.size;
      lost += expected.filter((id) => !got.has(id)).length;
      assert.deepEqual(ids, expected, `${f.label} got ${ids.length} ids from ${ids[0]}`);
    }
    const stored = final - (await nodes[0].messaging.messaging.bus.replay(channel, 0)).messages[0].id + 1;
    console.log(
      `cluster: ${stored} messages, ${followers.length} clients over 3 nodes (1 killed), Redis restarted, ` +
        `${serverDrops} server-side drops, ${publishers.reduce((n, p) => n + p.reconnects, 0)} SDK reconnects, ` +
        `lost ${lost}, duplicated ${duplicated}`,
    );
    assert.equal(lost, 0);
    assert.equal(duplicated, 0);
    assert.equal(
      publishers.reduce((n, p) => n + p.duplicatesDropped, 0),
      0,
    );
  } finally {
    for (const f of followers) f.close();
    await balancer.close();
    await doomed.kill();
    await closeServers(...nodes);
    await redis.stop();
  }
});
