/**
 * WHEP viewers served from worker processes (`webrtc.workers: 2`), with node-datachannel peers as viewers
 * over real ICE/DTLS/SRTP on loopback and ffmpeg publishing over RTMP: viewers land on different workers (own
 * UDP ports) and receive the stream starting at a keyframe; the sessions API and metrics list them; trickle
 * and DELETE are routed to the worker; an offer with a data channel stays in the main process; a killed worker
 * drops only its own viewers, is restarted, and serves again; the publisher leaving ends the workers' viewers.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, test } from 'node:test';
import { type RunningServer, startServer } from '../../src/server.ts';
import { publishTestSource, stop, waitFor } from '../helpers/processes.ts';
import { connected, createTestPeer, type TestPeer } from '../helpers/webrtcClient.ts';

const STREAM = 'live/rtc-workers';

let server: RunningServer;
let ffmpeg: ChildProcess;
const peers: TestPeer[] = [];

interface Viewer {
  peer: TestPeer;
  location: string;
  etag: string;
  /** UDP port of the answer's host candidate: the worker's engine. */
  port: number;
  packets: number;
  /** NAL type (or FU-A/STAP-A first NAL type) of the first packet received. */
  firstNal: number;
}

interface DescribedSession {
  id: string;
  kind: string;
  state: string;
  worker?: number;
  tracks?: { packetsSent: number }[];
}

function url(path: string): string {
  return `${server.httpUrl}${path}`;
}

async function sessions(): Promise<DescribedSession[]> {
  return ((await (await fetch(url('/api/v1/webrtc/sessions'))).json()) as { sessions: DescribedSession[] })
    .sessions;
}

async function whepViewers(): Promise<number> {
  const described = (await (await fetch(url(`/api/v1/streams/${STREAM}`))).json()) as {
    viewers: { byProtocol: { whep?: number } };
  };
  return described.viewers.byProtocol.whep ?? 0;
}

/** The H.264 NAL type a packet's payload starts (RFC 6184 §5.6-5.8: single NAL, STAP-A, FU-A). */
function firstNalType(packet: Buffer): number {
  const payload = packet.subarray(12 + 4 * (packet[0] & 0x0f));
  const type = payload[0] & 0x1f;
  if (type === 24) return payload[3] & 0x1f;
  if (type === 28) return payload[1] & 0x1f;
  return type;
}

async function watch(options: { dataChannel?: string } = {}): Promise<Viewer> {
  const peer = await createTestPeer({ video: 'H264', direction: 'RecvOnly', ...options });
  peers.push(peer);
  const viewer: Viewer = { peer, location: '', etag: '', port: 0, packets: 0, firstNal: -1 };
  peer.tracks[0].onMessage((m) => {
    if (m.length < 12 || (m[1] >= 192 && m[1] <= 223)) return;
    if (viewer.packets === 0) viewer.firstNal = firstNalType(m);
    viewer.packets++;
  });
  const response = await fetch(url(`/whep/${STREAM}`), {
    method: 'POST',
    headers: { 'content-type': 'application/sdp' },
    body: peer.offer,
  });
  const answer = await response.text();
  assert.equal(response.status, 201, answer);
  viewer.location = response.headers.get('location') ?? '';
  idOf(viewer);
  viewer.etag = response.headers.get('etag') ?? '';
  const host = /^a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host/im.exec(answer);
  assert.ok(host, `the answer has a loopback host candidate:\n${answer}`);
  viewer.port = Number(host[1]);
  peer.pc.setRemoteDescription(answer, 'answer');
  await connected(peer.pc, 10_000);
  return viewer;
}

/** The session id listings show for a viewer (its resource URL is a capability they never show). */
const ids = new Map<string, string>();
function idOf(viewer: Viewer): string {
  let id = ids.get(viewer.location);
  if (id === undefined) {
    id = server.webrtc?.sessionAt(viewer.location)?.id ?? '';
    ids.set(viewer.location, id);
  }
  return id;
}

async function receives(viewer: Viewer, what: string): Promise<void> {
  const before = viewer.packets;
  await waitFor(`${what} to keep receiving RTP`, () => viewer.packets > before + 20, 10_000);
}

before(async () => {
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { host: '127.0.0.1', port: 0 },
    webrtc: { udpPort: 0, workers: 2, republishWaitMs: 1000 },
    hls: { enabled: false },
    log: { level: 'warn' },
  });
  ffmpeg = publishTestSource(`${server.rtmpUrl}/${STREAM}`, {
    size: '320x240',
    rate: 30,
    gop: 15,
    audio: false,
    seconds: 120,
  });
  await waitFor(`${STREAM} to be ready`, () => server.registry.get(STREAM)?.ready);
});

after(async () => {
  for (const peer of peers) peer.close();
  await stop(ffmpeg);
  await server?.close();
});

test('two viewers land on different workers, each on its own UDP port, and receive from a keyframe', async () => {
  const workers = server.webrtc?.workers;
  assert.ok(workers, 'the server runs WHEP workers');
  const ports = workers.udpPorts;
  assert.equal(ports.length, 2);
  assert.notEqual(ports[0], ports[1]);
  assert.ok(!ports.includes(server.webrtc?.engine.udpPort ?? -1), 'workers do not share the main UDP port');

  const a = await watch();
  const b = await watch();
  assert.deepEqual([a.port, b.port].sort(), [...ports].sort(), 'one viewer on each worker port');
  await receives(a, 'viewer A');
  await receives(b, 'viewer B');
  // Keyframe gating in the worker: the first packet is SPS/PPS (STAP-A) or the IDR slice itself.
  assert.ok([5, 7].includes(a.firstNal), `viewer A starts at a keyframe (NAL ${a.firstNal})`);
  assert.ok([5, 7].includes(b.firstNal), `viewer B starts at a keyframe (NAL ${b.firstNal})`);

  const listed = await sessions();
  const byId = new Map(listed.map((s) => [s.id, s]));
  assert.deepEqual(
    [byId.get(idOf(a))?.worker, byId.get(idOf(b))?.worker].sort(),
    [0, 1],
    `the API lists both sessions with their worker: ${JSON.stringify(listed)}`,
  );
  assert.equal(byId.get(idOf(a))?.state, 'connected');
  assert.ok((byId.get(idOf(a))?.tracks?.[0]?.packetsSent ?? 0) > 0, 'the worker counts what it sent');
  assert.equal(await whepViewers(), 2, 'the stream counts worker viewers');
  assert.equal(server.webrtc?.viewers.length, 0, 'no WHEP session runs in the main process');

  const metrics = await (await fetch(url('/metrics'))).text();
  assert.match(metrics, /subsecond_webrtc_worker_sessions\{worker="0"\} 1/);
  assert.match(metrics, /subsecond_webrtc_worker_sessions\{worker="1"\} 1/);
  assert.match(metrics, /subsecond_webrtc_worker_packets_sent_total\{worker="0"\} [1-9]/);

  // Trickle is applied in the worker; the ETag is checked in main.
  const candidate = 'a=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host\r\na=mid:0\r\n';
  const patch = (etag: string) =>
    fetch(url(a.location), {
      method: 'PATCH',
      headers: { 'content-type': 'application/trickle-ice-sdpfrag', 'if-match': etag },
      body: candidate,
    });
  assert.equal((await patch(a.etag)).status, 204);
  const refused = await patch('"not-this-one"');
  assert.equal(refused.status, 412);
  assert.match(((await refused.json()) as { error: string }).error, /does not match the session's ETag/);
  await receives(a, 'viewer A after trickle');

  // DELETE frees the session in its worker: gone from the list the workers give, the other one plays on.
  assert.equal((await fetch(url(a.location), { method: 'DELETE' })).status, 200);
  // Repeated within the minute after the end: idempotent, as for clients that close their peer first.
  assert.equal((await fetch(url(a.location), { method: 'DELETE' })).status, 200);
  const afterDelete = await sessions();
  assert.ok(!afterDelete.some((s) => s.id === idOf(a)), 'the deleted session is gone from its worker');
  assert.ok(afterDelete.some((s) => s.id === idOf(b)));
  assert.equal(await whepViewers(), 1);
  await receives(b, 'viewer B after A left');
  assert.equal((await fetch(url(b.location), { method: 'DELETE' })).status, 200);
  assert.equal(await whepViewers(), 0);
});

test('an offer with a data channel is served by the main process, where messaging is', async () => {
  const viewer = await watch({ dataChannel: 'subsecond.messaging' });
  await receives(viewer, 'the data-channel viewer');
  const listed = (await sessions()).find((s) => s.id === idOf(viewer));
  assert.ok(listed, 'listed');
  assert.equal(listed.worker, undefined, 'not on a worker');
  assert.equal(viewer.port, server.webrtc?.engine.udpPort);
  assert.equal((await fetch(url(viewer.location), { method: 'DELETE' })).status, 200);
});

test('a killed worker drops only its viewers, restarts on its port, and serves again', async () => {
  const workers = server.webrtc?.workers;
  assert.ok(workers);
  const a = await watch();
  const b = await watch();
  await receives(a, 'viewer A');
  await receives(b, 'viewer B');
  const listed = await sessions();
  const victimIndex = listed.find((s) => s.id === idOf(a))?.worker;
  assert.ok(victimIndex !== undefined);
  const stats = await workers.stats();
  const victim = stats.find((s) => s.index === victimIndex);
  assert.ok(victim, `stats of worker ${victimIndex}: ${JSON.stringify(stats)}`);
  const portBefore = workers.udpPorts[victimIndex];
  process.kill(victim.pid, 'SIGKILL');

  await waitFor('the killed worker to be restarted', () => {
    const c = workers.counters()[victimIndex];
    return c.restarts === 1 && c.ready;
  });
  const survivors = await sessions();
  assert.ok(!survivors.some((s) => s.id === idOf(a)), "the dead worker's viewer is dropped");
  assert.ok(
    survivors.some((s) => s.id === idOf(b)),
    'the other worker keeps its viewer',
  );
  assert.equal(await whepViewers(), 1);
  await receives(b, 'viewer B on the surviving worker');
  assert.equal(workers.udpPorts[victimIndex], portBefore, 'the restarted worker keeps its UDP port');
  assert.notEqual((await workers.stats()).find((s) => s.index === victimIndex)?.pid, victim.pid);

  // The least-loaded worker is the restarted one: the next viewer lands there and plays.
  const c = await watch();
  assert.equal(c.port, portBefore);
  await receives(c, 'a viewer of the restarted worker');
  assert.equal((await fetch(url('/healthz'))).status, 200);
});

test('the publisher leaving ends the viewers on every worker', async () => {
  const before = (await sessions()).filter((s) => s.worker !== undefined);
  assert.ok(before.length >= 2, `viewers on workers: ${JSON.stringify(before)}`);
  await stop(ffmpeg);
  // RTMP viewers wait webrtc.republishWaitMs (1 s here) for the publisher to return, then the feed ends.
  await waitFor('the worker sessions to end', async () => (await sessions()).length === 0, 10_000);
  assert.equal(server.registry.get(STREAM)?.viewerCount ?? 0, 0);
  const metrics = await (await fetch(url('/metrics'))).text();
  assert.match(metrics, /subsecond_webrtc_worker_sessions\{worker="0"\} 0/);
  assert.match(metrics, /subsecond_webrtc_worker_sessions\{worker="1"\} 0/);
});
