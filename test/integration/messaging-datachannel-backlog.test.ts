/**
 * A data-channel reader that stops taking messages while a burst is published: the server's backlog for it
 * stays bounded, the reader is told why it was cut off (a `too_slow` error event, then the channel closes),
 * and a new channel that resumes with since gets every message of the burst once, in order.
 *
 * The viewer is a node-datachannel peer in a child process (test/helpers/messagingDataChannelPeer.ts), frozen
 * with SIGSTOP: node-datachannel's threads acknowledge SCTP data whether or not JavaScript reads it, so only a
 * stopped process stops the association from draining. The media comes from ffmpeg over RTMP.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type RunningServer, startServer } from '../../src/server.ts';
import { httpPublish, range } from '../helpers/channels.ts';
import type { PeerCommand, PeerFrames } from '../helpers/messagingDataChannelPeer.ts';
import { publishTestSource, stop, waitFor } from '../helpers/processes.ts';

const STREAM = 'live/dc-backlog';
const CHAT = `${STREAM}:chat`;
const MAX_BACKLOG = 64 * 1024;
/** What usrsctp takes before libdatachannel queues anything (its SO_SNDBUF), and the same again in flight. */
const SCTP_BUFFERS = 2 * 1024 * 1024;
const BURST = 1500;
const PAD = 'x'.repeat(8000);

let server: RunningServer;
let ffmpeg: ChildProcess;
let peer: ChildProcess | undefined;

function ask<T>(command: PeerCommand, ms = 20_000): Promise<T> {
  const child = peer;
  if (!child) throw new Error('no peer process');
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`peer: no answer to ${command.type} in ${ms} ms`)), ms);
    child.once('message', (reply: { type: string; message?: string }) => {
      clearTimeout(timer);
      if (reply.type === 'error') reject(new Error(`peer: ${reply.message}`));
      else resolve(reply as T);
    });
    child.send(command);
  });
}

async function frames(): Promise<PeerFrames> {
  return ask<PeerFrames>({ type: 'read' });
}

function ids(received: PeerFrames): number[] {
  return received.frames.filter((f) => f.event === 'message').map((f) => f.id as number);
}

before(async () => {
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { host: '127.0.0.1', port: 0 },
    hls: { enabled: false },
    webrtc: { udpPort: 0 },
    log: { level: 'warn' },
    messaging: {
      maxBacklogBytes: MAX_BACKLOG,
      historyMaxMessages: BURST + 100,
      // The whole burst stays in the history, so the resume replays it without a gap.
      historyMaxBytes: 16 * 1024 * 1024,
      publishRatePerSecond: 100_000,
      publishBurst: 100_000,
    },
  });
  ffmpeg = publishTestSource(`${server.rtmpUrl}/${STREAM}`, {
    size: '320x240',
    rate: 15,
    gop: 15,
    audio: false,
    seconds: 120,
  });
  await waitFor('the RTMP stream', () => server.registry.get(STREAM)?.ready);
  peer = fork(join(import.meta.dirname, '../helpers/messagingDataChannelPeer.ts'), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
});

after(async () => {
  // The peer closes before the server, in its own process, which exits with process.exit.
  if (peer && peer.exitCode === null) {
    if (peer.signalCode === null) peer.kill('SIGCONT');
    const exited = new Promise((resolve) => peer?.once('exit', resolve));
    peer.send({ type: 'close' });
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    if (peer.exitCode === null) peer.kill('SIGKILL');
  }
  await stop(ffmpeg);
  await server?.close();
});

test('a stalled data-channel reader is cut off at a bounded backlog with too_slow, and resumes with since exactly once', async () => {
  const base = server.httpUrl;
  await ask({ type: 'open', base, stream: STREAM });
  await ask({ type: 'send', frame: { op: 'subscribe', channel: CHAT } });
  await waitFor('subscribed', async () => (await frames()).frames.some((f) => f.event === 'subscribed'));
  const first = await httpPublish(base, CHAT, { type: 'chat', data: { n: 0 } });
  assert.equal(first.status, 201, JSON.stringify(first.body));
  await waitFor('the first message', async () => ids(await frames()).length === 1);

  peer?.kill('SIGSTOP');
  let published: number[];
  try {
    published = [];
    for (let n = 1; n <= BURST; n++) {
      const { status, body } = await httpPublish(base, CHAT, { type: 'chat', data: { n, pad: PAD } });
      assert.equal(status, 201, JSON.stringify(body));
      published.push(body.id as number);
    }
  } finally {
    peer?.kill('SIGCONT');
  }
  const frameBytes = PAD.length;
  assert.ok(BURST * frameBytes > 4 * (MAX_BACKLOG + SCTP_BUFFERS), 'the burst is far above the bound');

  await waitFor('the channel to close', async () => (await frames()).closed, 20_000);
  const cut = await frames();
  const got = ids(cut);
  const last = got.at(-1) ?? 0;
  assert.deepEqual(got, range(got[0], last), 'what arrived before the cut is gapless and in order');
  assert.ok(got.length < BURST / 2, `the server stopped sending: ${got.length} of ${BURST + 1} arrived`);
  const burstBytes = cut.frames
    .filter((f) => f.event === 'message' && (f.id as number) > (first.body.id as number))
    .reduce((n, f) => n + (f.bytes as number), 0);
  assert.ok(
    burstBytes <= MAX_BACKLOG + SCTP_BUFFERS + frameBytes,
    `backlog bounded: ${burstBytes} bytes of the burst reached the stalled reader`,
  );
  const tooSlow = cut.frames.at(-1);
  assert.equal(tooSlow?.event, 'error', `the last frame explains the close: ${JSON.stringify(tooSlow)}`);
  assert.equal(tooSlow?.code, 'too_slow');
  assert.match(
    tooSlow?.message as string,
    /reading too slowly: \d+ bytes unsent on this data channel, over messaging\.maxBacklogBytes \(65536\); open a new channel and subscribe with since/,
  );

  // A new channel on the same peer connection (the media session goes on) resumes after the last id it saw.
  await ask({ type: 'reopen' });
  await ask({ type: 'send', frame: { op: 'subscribe', channel: CHAT, since: last } });
  const newest = published.at(-1) ?? 0;
  await waitFor('the rest of the burst', async () => (ids(await frames()).at(-1) ?? 0) >= newest, 20_000);
  await new Promise((r) => setTimeout(r, 200));
  const resumed = await frames();
  assert.deepEqual(ids(resumed), range(last + 1, newest), 'everything after since, once, in order');
  assert.equal(resumed.frames.filter((f) => f.event === 'gap').length, 0, 'all of it was in the history');
  assert.equal(resumed.closed, false);
});
