import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type ChromiumSession, launchChromium } from '../helpers/browser.ts';
import { type ClusterNodeProcess, startClusterNode } from '../helpers/clusterNodes.ts';
import { killAll, waitFor } from '../helpers/processes.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';
import { playWhep } from '../helpers/whepPage.ts';
import { publishCanvas } from '../helpers/whipPage.ts';

let redis: TestRedis;
let b: ClusterNodeProcess;
let c: ClusterNodeProcess;
let browser: ChromiumSession;

before(async () => {
  redis = await startRedis();
  [b, c] = await Promise.all([startClusterNode('node-b', redis.url), startClusterNode('node-c', redis.url)]);
  browser = await launchChromium();
});

after(async () => {
  killAll();
  await browser?.close();
  await Promise.all([b?.kill(), c?.kill()]);
  await redis?.stop();
});

test('WHIP on B, WHEP on C: the edge plays it, and its viewer PLI reaches the publisher', async () => {
  const path = 'live/whip-edge';
  const publisher = await browser.newPage();
  await publisher.goto(`${b.httpUrl}/healthz`);
  const published = await publishCanvas(publisher, `${b.httpUrl}/whip/${path}`);
  assert.equal(published.status, 201, published.body);
  await waitFor('B to claim the path', async () => {
    const view = await c.json<{ nodes: { id: string; streams: { origin: string[] } }[] }>('/api/v1/cluster');
    return view.nodes.find((n) => n.id === 'node-b')?.streams.origin.includes(path);
  });
  const pliCount = () =>
    publisher.evaluate(async () => {
      const pc = (window as unknown as { whipPublisher: RTCPeerConnection }).whipPublisher;
      let n = 0;
      for (const r of (await pc.getStats()).values())
        if (r.type === 'outbound-rtp' && r.kind === 'video') n += r.pliCount ?? 0;
      return n;
    });
  const before = await pliCount();
  const viewer = await browser.newPage();
  await viewer.goto(`${c.httpUrl}/healthz`);
  const played = await playWhep(viewer, `${c.httpUrl}/whep/${path}`, { frames: 30, timeoutMs: 20_000 }).catch(
    (err) => {
      throw new Error(`${err.message}\n${c.output().slice(-3000)}`);
    },
  );
  assert.ok(played.firstFrameMs > 0);
  // The edge viewer joined mid-GOP and asked for a keyframe: the request went C → B → the browser publisher.
  await waitFor(
    'the edge keyframe request at the origin',
    async () =>
      ((await b.json<{ keyframeRequestsFromEdges: number }>('/api/v1/cluster')).keyframeRequestsFromEdges ??
        0) > 0,
    10_000,
  );
  await waitFor('a PLI at the publisher', async () => (await pliCount()) > before, 10_000);
  const view = await c.json<{ relaysIn: { path: string; origin: string; live: boolean }[] }>(
    '/api/v1/cluster',
  );
  assert.deepEqual(
    view.relaysIn.map((r) => [r.path, r.origin, r.live]),
    [[path, 'node-b', true]],
  );
});
