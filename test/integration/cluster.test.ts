import assert from 'node:assert/strict';
import { type ChildProcess, execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { WebSocket } from 'ws';
import {
  type ClusterNodeProcess,
  type ClusterView,
  MseViewer,
  startClusterNode,
} from '../helpers/clusterNodes.ts';
import { ffprobe, killAll, publishTestSource, stop, waitFor } from '../helpers/processes.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';

const execFileAsync = promisify(execFile);
const PATH = 'live/cam1';
const CAMERA = { size: '640x360', rate: 30, gop: 30, seconds: 120 };
let redis: TestRedis;
let a: ClusterNodeProcess;
let b: ClusterNodeProcess;
let c: ClusterNodeProcess;
let publisher: ChildProcess | undefined;
const dir = mkdtempSync(join(tmpdir(), 'subsecond-cluster-'));

const cluster = (node: ClusterNodeProcess) => node.json<ClusterView>('/api/v1/cluster');
const ws = (node: ClusterNodeProcess) => node.httpUrl.replace('http', 'ws');

before(async () => {
  redis = await startRedis({ persistent: true });
  [a, b, c] = await Promise.all([
    startClusterNode('node-a', redis.url),
    startClusterNode('node-b', redis.url),
    startClusterNode('node-c', redis.url),
  ]);
  publisher = publishTestSource(`${a.rtmpUrl}/${PATH}`, CAMERA);
  await waitFor(`${PATH} claimed by node-a and seen by node-b`, async () =>
    (await cluster(b)).nodes.find((n) => n.id === 'node-a')?.streams.origin.includes(PATH),
  );
});

after(async () => {
  await stop(publisher);
  killAll();
  await Promise.all([a?.kill(), b?.kill(), c?.kill()]);
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('RTMP on A plays from B and C over WS+MSE, LL-HLS, LL-DASH and RTMP, one upstream per edge', async () => {
  const viewers = Array.from(
    { length: 20 },
    (_, i) => new MseViewer(`${ws(b)}/mse/${PATH}`, i === 0 ? 90 : 0),
  );
  try {
    await Promise.all(viewers.map((v, i) => v.advances(`viewer ${i} on B`, 60, 20_000)));
    const first = viewers[0];
    assert.ok(first.init, 'the edge sent an init segment');
    const file = join(dir, 'edge-mse.mp4');
    writeFileSync(file, Buffer.concat([first.init, ...first.kept]));
    const streams = await ffprobe(file);
    assert.equal(streams.find((s) => s.codec_type === 'video')?.codec_name, 'h264');
    assert.equal(streams.find((s) => s.codec_type === 'video')?.width, 640);
    assert.equal(streams.find((s) => s.codec_type === 'audio')?.codec_name, 'aac');

    const read = async (url: string, name: string) => {
      const out = join(dir, name);
      await execFileAsync(
        'ffmpeg',
        ['-hide_banner', '-loglevel', 'error', '-i', url, '-t', '3', '-c', 'copy', '-y', out],
        { timeout: 60_000 },
      );
      const probed = await ffprobe(out);
      assert.equal(probed.find((s) => s.codec_type === 'video')?.codec_name, 'h264', `${name}: video`);
      assert.equal(probed.find((s) => s.codec_type === 'audio')?.codec_name, 'aac', `${name}: audio`);
      assert.ok(
        Number(probed.find((s) => s.codec_type === 'video')?.nb_read_frames) >= 60,
        `${name}: frames`,
      );
    };
    // The first request makes C pull the stream; ffmpeg (unlike hls.js) gives up on a playlist without
    // segments, so it reads once the edge has packaged two.
    await waitFor(
      'two segments packaged on C',
      async () => {
        const res = await fetch(`${c.httpUrl}/hls/${PATH}/media.m3u8`);
        return res.ok && ((await res.text()).match(/#EXTINF/g)?.length ?? 0) >= 2;
      },
      15_000,
    );
    await Promise.all([
      read(`${c.httpUrl}/hls/${PATH}/index.m3u8`, 'edge-hls.mp4'),
      read(`${b.httpUrl}/dash/${PATH}/manifest.mpd`, 'edge-dash.mp4'),
      read(`${c.rtmpUrl}/${PATH}`, 'edge-rtmp.flv'),
    ]);

    // 20 viewers on B and three readers on C: the origin serves exactly one relay to each edge.
    const origin = await cluster(a);
    const edges = origin.relaysOut.filter((r) => r.path === PATH).map((r) => r.edge);
    assert.deepEqual(edges.sort(), ['node-b', 'node-c']);
    const edgeB = await cluster(b);
    assert.deepEqual(
      edgeB.relaysIn.map((r) => [r.path, r.origin, r.live]),
      [[PATH, 'node-a', true]],
    );
    const api = await b.json<{ viewers: { byProtocol: Record<string, number> } }>(`/api/v1/streams/${PATH}`);
    assert.equal(api.viewers.byProtocol.mse, 20);
  } finally {
    for (const v of viewers) v.close();
  }
});

test('the relay refuses a missing (401) or wrong (403) cluster.secret, and the origin logs it', async () => {
  const status = (headers: Record<string, string>) =>
    new Promise<number>((resolve) => {
      const socket = new WebSocket(`${ws(a)}/internal/relay/${PATH}`, { headers });
      socket.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      socket.on('open', () => {
        socket.close();
        resolve(101);
      });
      socket.on('error', () => {});
    });
  assert.equal(await status({}), 401);
  const { relayHeaders } = await import('../../src/cluster/relayAuth.ts');
  assert.equal(await status(relayHeaders('not-the-secret', 'intruder', PATH)), 403);
  await waitFor('the refusal in the origin log', () =>
    /relay refused.*another cluster\.secret/.test(a.output()),
  );
  // Signed with the right secret it is served: the refusals were about the secret only.
  const { CLUSTER_SECRET } = await import('../helpers/clusterNodes.ts');
  assert.equal(await status(relayHeaders(CLUSTER_SECRET, 'tester', PATH)), 101);
});

test('a second publisher of the path on another node is refused as on one node', async () => {
  const second = publishTestSource(`${c.rtmpUrl}/${PATH}`, { ...CAMERA, seconds: 10 });
  const code = await new Promise<number | null>((resolve) => second.on('exit', (n) => resolve(n)));
  const stderr = (second as ChildProcess & { stderrText: () => string }).stderrText();
  assert.notEqual(code, 0);
  assert.match(stderr, /publish refused for "live\/cam1": stream already has a publisher/);
  // Node B holds no relay of another path: the refusal comes from the directory, not a local copy.
  const other = publishTestSource(`${b.rtmpUrl}/live/other`, { ...CAMERA, seconds: 20 });
  try {
    await waitFor('live/other claimed by B', async () =>
      (await cluster(c)).nodes.find((n) => n.id === 'node-b')?.streams.origin.includes('live/other'),
    );
    const third = publishTestSource(`${c.rtmpUrl}/live/other`, { ...CAMERA, seconds: 10 });
    await new Promise((resolve) => third.on('exit', resolve));
    assert.match(
      (third as ChildProcess & { stderrText: () => string }).stderrText(),
      /publish refused for "live\/other": stream already has a publisher/,
    );
  } finally {
    await stop(other);
  }
});

test('Redis restarted: streams keep playing, the nodes say degraded, then re-register within 5 s', async () => {
  const viewer = new MseViewer(`${ws(c)}/mse/${PATH}`);
  try {
    await viewer.advances('viewer on C before the outage');
    await redis.kill();
    await waitFor(
      'C degraded',
      async () => (await c.json<{ status: string }>('/healthz')).status === 'cluster degraded',
    );
    const metrics = await (await fetch(`${c.httpUrl}/metrics`)).text();
    assert.match(metrics, /^subsecond_cluster_degraded 1$/m);
    await viewer.advances('viewer on C during the outage', 60);
    await redis.start();
    const back = performance.now();
    await waitFor(
      'every node registered and the claim back',
      async () => {
        const view = await cluster(b);
        const h = await a.json<{ status: string }>('/healthz');
        return (
          h.status === 'ok' &&
          view.nodes.length === 3 &&
          view.nodes.find((n) => n.id === 'node-a')?.streams.origin.includes(PATH)
        );
      },
      5000,
    );
    assert.ok(performance.now() - back < 5000);
    await viewer.advances('viewer on C after the outage');
  } finally {
    viewer.close();
  }
});

test('origin killed: its claim is gone within 5 s, viewers wait, a republish on C resumes them', async () => {
  const viewer = new MseViewer(`${ws(b)}/mse/${PATH}`);
  await viewer.advances('viewer on B');
  const killedAt = performance.now();
  await a.kill();
  await stop(publisher);
  await waitFor(
    'the directory to drop node-a',
    async () => {
      const view = await cluster(b);
      return !view.nodes.some((n) => n.id === 'node-a' || n.streams.origin.includes(PATH));
    },
    5000,
  );
  assert.ok(performance.now() - killedAt < 5000);
  assert.equal(viewer.closed, false, 'the viewer stays connected, waiting for the publisher');
  const initsBefore = viewer.inits;
  publisher = publishTestSource(`${c.rtmpUrl}/${PATH}`, CAMERA);
  await waitFor('a new init on the open viewer', () => viewer.inits > initsBefore, 15_000);
  await viewer.advances('the viewer on B after the republish on C');
  const view = await cluster(b);
  assert.deepEqual(
    view.relaysIn.map((r) => [r.origin, r.live]),
    [['node-c', true]],
  );
  viewer.close();
});

test('edge killed: its viewers reconnect through another node and play within 5 s', async () => {
  const viewer = new MseViewer(`${ws(b)}/mse/${PATH}`);
  await viewer.advances('viewer on B');
  const killedAt = performance.now();
  await b.kill();
  await waitFor('the viewer to notice', () => viewer.closed, 5000);
  // As the player does: ask any node where to play, then connect there.
  const where = await c.json<{ node: string; urls: { mse: string } }>(
    `/api/v1/streams/${PATH}/locate?transport=mse`,
  );
  const again = new MseViewer(where.urls.mse);
  try {
    await again.advances('frames after the edge died', 15, 5000);
    assert.ok(performance.now() - killedAt < 5000, `${Math.round(performance.now() - killedAt)} ms`);
  } finally {
    again.close();
  }
});
