import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import { encodeChunks } from '../../src/protocols/rtmp/chunk.ts';
import { MessageType } from '../../src/protocols/rtmp/messages.ts';
import { RtmpTestClient } from '../../src/protocols/rtmp/testing/RtmpTestClient.ts';
import { type RunningServer, startServer } from '../../src/server.ts';
import { killAll, publishTestSource, stop, waitFor } from '../helpers/processes.ts';

/**
 * Bad clients on both ports while a healthy publisher/viewer pair runs: each bad one is refused or closed,
 * and the healthy viewer never stops receiving frames.
 */
let server: RunningServer;
let publisher: ChildProcess | undefined;
let viewer: WebSocket;
let fragments = 0;

before(async () => {
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { host: '127.0.0.1', port: 0 },
    log: { level: 'silent' },
  });
  publisher = publishTestSource(`${server.rtmpUrl}/live/healthy`, { size: '640x360', seconds: 60 });
  await waitFor('live/healthy to be ready', () => server.registry.get('live/healthy')?.ready);
  viewer = new WebSocket(`${server.httpUrl.replace('http', 'ws')}/mse/live/healthy`);
  viewer.on('message', (_data, isBinary) => {
    if (isBinary) fragments++;
  });
  await waitFor('the healthy viewer to receive frames', () => fragments > 30);
});

after(async () => {
  viewer?.terminate();
  await stop(publisher);
  killAll();
  await server?.close();
});

/**
 * Asserts the healthy viewer keeps receiving frames (~30 video + ~47 audio per second) over `ms`; at least
 * half that rate, so a loaded machine passes and a stalled viewer does not.
 */
async function healthyKeepsFlowing(ms = 300): Promise<void> {
  const start = fragments;
  await new Promise((r) => setTimeout(r, ms));
  const least = Math.round((ms / 1000) * 40);
  assert.ok(fragments - start > least, `healthy viewer got ${fragments - start} fragments in ${ms} ms`);
  assert.equal(viewer.readyState, WebSocket.OPEN);
}

function closedWithin(client: RtmpTestClient, ms: number): Promise<boolean> {
  return Promise.race([
    client.closed.then(() => true),
    new Promise<boolean>((r) => setTimeout(() => r(false), ms)),
  ]);
}

/** Sends `bytes` after a completed handshake (or instead of one), and asserts only that connection closes. */
async function rtmpClosesOn(bytes: Uint8Array, handshake = true): Promise<void> {
  const client = await RtmpTestClient.open(server.rtmpPort, handshake);
  client.raw(bytes);
  assert.ok(await closedWithin(client, 3000), 'connection closed');
  await healthyKeepsFlowing();
}

const setChunkSize = (size: Uint8Array) =>
  encodeChunks({ csid: 2, timestamp: 0, typeId: MessageType.SetChunkSize, streamId: 0 }, [size], 128);

test('RTMP: a garbage handshake is closed', () =>
  rtmpClosesOn(Buffer.from('\x16\x03\x01 this is TLS, not RTMP'), false));

test('RTMP: chunk size 0 is closed', () => rtmpClosesOn(setChunkSize(new Uint8Array(4))));

test('RTMP: chunk size 2^31 is closed', () => rtmpClosesOn(setChunkSize(Uint8Array.from([0x80, 0, 0, 0]))));

test('RTMP: a cut-off AMF command is closed', () =>
  rtmpClosesOn(
    encodeChunks(
      { csid: 3, timestamp: 0, typeId: MessageType.CommandAmf0, streamId: 0 },
      [Uint8Array.from([0x02, 0x00, 0x07, 0x63, 0x6f, 0x6e])], // string "connect" cut after 3 bytes
      128,
    ),
  ));

test('RTMP: an FLV tag whose length runs past the end closes only that publisher', async () => {
  const bad = await RtmpTestClient.open(server.rtmpPort);
  const status = await bad.publish('live', 'broken');
  assert.equal(status.code, 'NetStream.Publish.Start');
  // An aggregate message holding one video tag that claims 0xffffff bytes of body.
  const tag = Uint8Array.from([9, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0x17, 0, 0, 0, 0]);
  bad.send({ csid: 6, timestamp: 0, typeId: MessageType.Aggregate, streamId: 1, payload: tag });
  assert.ok(await closedWithin(bad, 3000), 'the bad publisher is closed');
  await waitFor('live/broken to be gone', () => !server.registry.get('live/broken')?.live, 3000);
  await healthyKeepsFlowing();
});

/** The status a WebSocket upgrade to `path` is answered with (101 when it opens). */
const upgradeStatus = (path: string) =>
  new Promise<number>((resolve) => {
    const ws = new WebSocket(`${server.httpUrl.replace('http', 'ws')}${path}`);
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('open', () => {
      ws.terminate();
      resolve(101);
    });
    ws.on('error', () => {});
  });

test('WebSocket: an upgrade to a stream that is not live is 404', async () => {
  assert.equal(await upgradeStatus('/mse/live/unknown'), 404);
});

test('WebSocket: an upgrade naming an invalid stream path is 400', async () => {
  assert.equal(await upgradeStatus('/mse/live/<script>'), 400);
});

test('WebSocket: an upgrade to an unknown route is 404', async () => {
  assert.equal(await upgradeStatus('/ws/anything'), 404);
});

test('HTTP: bytes that are not HTTP at all close that socket; the server keeps serving', async () => {
  await new Promise<void>((resolve) => {
    const socket = connect(server.httpPort, '127.0.0.1', () => socket.write('\x00\x01\x02garbage\r\n\r\n'));
    socket.on('data', () => {});
    socket.on('close', () => resolve());
    socket.on('error', () => resolve());
  });
  assert.equal((await fetch(`${server.httpUrl}/healthz`)).status, 200);
  await healthyKeepsFlowing();
});

test('WebSocket: a viewer that sends a message over the limit is closed with 1009; the healthy one is not', async () => {
  const loud = new WebSocket(`${server.httpUrl.replace('http', 'ws')}/mse/live/healthy`);
  await new Promise((r) => loud.once('open', r));
  const code = await new Promise<number>((resolve) => {
    loud.on('close', (c) => resolve(c));
    loud.send(Buffer.alloc(64 * 1024));
  });
  assert.equal(code, 1009);
  await healthyKeepsFlowing();
});
