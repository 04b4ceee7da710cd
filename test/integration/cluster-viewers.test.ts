/**
 * A stream's media viewers summed over the cluster's nodes (issue 16, presence across nodes): ffmpeg publishes
 * over RTMP on node A, WebSocket+MSE viewers watch on A and on B (through the relay); the control API on
 * either node and messaging presence on the stream's chat channel count every node's viewers, and a SIGKILLed
 * node's viewers leave the totals within 5 s. Real redis-server, nodes as `subsecond serve` processes.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, test } from 'node:test';
import { openWs, type WsChannelClient } from '../helpers/channels.ts';
import { type ClusterNodeProcess, MseViewer, startClusterNode } from '../helpers/clusterNodes.ts';
import { killAll, publishTestSource, stop, waitFor } from '../helpers/processes.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';

const PATH = 'live/viewers';
let redis: TestRedis;
let a: ClusterNodeProcess;
let b: ClusterNodeProcess;
let publisher: ChildProcess | undefined;

interface StreamView {
  viewers: {
    total: number;
    acrossNodes?: { total: number; byProtocol: Record<string, number>; nodes: number };
  };
}

before(async () => {
  redis = await startRedis();
  [a, b] = await Promise.all([
    startClusterNode('viewers-a', redis.url),
    startClusterNode('viewers-b', redis.url),
  ]);
  publisher = publishTestSource(`${a.rtmpUrl}/${PATH}`, { size: '320x180', seconds: 90 });
  await waitFor(
    `${PATH} live on node A`,
    async () => (await fetch(`${a.httpUrl}/api/v1/streams/${PATH}`)).status === 200,
    20_000,
  );
});

after(async () => {
  await stop(publisher);
  killAll();
  await Promise.all([a?.kill(), b?.kill()]);
  await redis?.stop();
});

const presenceViewers = (ws: WsChannelClient) =>
  (ws.events('presence').at(-1)?.presence as { viewers?: number } | undefined)?.viewers;

test("viewers on every node count in the API and in presence; a killed node's leave within 5 s", async () => {
  const ws = (node: ClusterNodeProcess) => `${node.httpUrl.replace('http', 'ws')}/mse/${PATH}`;
  const viewers = [new MseViewer(ws(a)), new MseViewer(ws(a)), new MseViewer(ws(b))];
  const chat = await openWs(`${a.httpUrl.replace('http', 'ws')}/ws/channels/${PATH}:chat`);
  try {
    await Promise.all(viewers.map((v, i) => v.advances(`viewer ${i}`, 10, 30_000)));
    const view = (node: ClusterNodeProcess) => node.json<StreamView>(`/api/v1/streams/${PATH}`);
    await waitFor('both nodes to count 3 viewers across the cluster', async () => {
      const [onA, onB] = [await view(a), await view(b)];
      return onA.viewers.acrossNodes?.total === 3 && onB.viewers.acrossNodes?.total === 3;
    });
    const onA = await view(a);
    assert.equal(onA.viewers.total, 2, "node A's own viewers stay its own");
    assert.deepEqual(onA.viewers.acrossNodes, { total: 3, byProtocol: { mse: 3 }, nodes: 2 });
    await waitFor('presence on A to count the viewers on both nodes', () => presenceViewers(chat) === 3);

    const killedAt = Date.now();
    await b.kill();
    await waitFor(
      "the killed node's viewer to leave the presence totals",
      () => presenceViewers(chat) === 2,
      8000,
    );
    const took = Date.now() - killedAt;
    assert.ok(took < 5000, `the dead node's viewers went after ${took} ms`);
    assert.deepEqual((await view(a)).viewers.acrossNodes, { total: 2, byProtocol: { mse: 2 }, nodes: 1 });
  } finally {
    chat.close();
    for (const v of viewers) v.close();
  }
});
