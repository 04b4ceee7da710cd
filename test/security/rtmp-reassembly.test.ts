/**
 * docs/security.md "RTMP": before its publish or play is accepted a connection may send only small messages
 * (a remote client in a network namespace, without a key), unfinished messages hold memory in proportion to
 * the bytes that arrived, not to the length a header claims, and all connections together are bounded by
 * rtmp.maxReassemblyBytes.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Csid, MessageType } from '../../src/protocols/rtmp/messages.ts';
import { RtmpTestClient } from '../../src/protocols/rtmp/testing/RtmpTestClient.ts';
import { type RunningServer, startServer } from '../../src/server.ts';
import { createNetns, type Netns } from '../helpers/netns.ts';
import { waitFor } from '../helpers/processes.ts';

const NODE = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));
let ns: Netns;
let remote: RunningServer;
let local: RunningServer;

before(async () => {
  ns = await createNetns('rtmp', 15);
  remote = await startServer({
    http: { host: ns.hostAddress, port: 0 },
    rtmp: { host: ns.hostAddress, port: 0 },
    hls: { enabled: false },
    webrtc: { enabled: false },
    auth: { publishKey: 'publish-secret' },
    log: { level: 'silent' },
  });
  local = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { host: '127.0.0.1', port: 0, maxReassemblyBytes: 1024 * 1024 },
    hls: { enabled: false },
    webrtc: { enabled: false },
    log: { level: 'silent' },
  });
});

after(async () => {
  await remote?.close();
  await local?.close();
  await ns?.close();
});

/** Handshakes, then starts a 7 MiB video message on chunk stream 6 and sends 4 KiB of it; reports the close. */
const PRE_AUTH = `
import { connect } from 'node:net';
const [host, port] = process.argv[1].split(' ');
const socket = connect(Number(port), host);
let received = 0, sentBig = false;
const started = Date.now();
socket.on('connect', () => socket.write(Buffer.concat([Buffer.from([3]), Buffer.alloc(1536)])));
socket.on('data', (d) => {
  received += d.length;
  if (!sentBig && received >= 1 + 2 * 1536) {
    sentBig = true;
    socket.write(Buffer.alloc(1536));
    const header = Buffer.from([0x06, 0, 0, 0, 0x70, 0, 0, 0x09, 1, 0, 0, 0]);
    socket.write(Buffer.concat([header, Buffer.alloc(4096)]));
  }
});
socket.on('error', () => {});
socket.on('close', () => { process.stdout.write(JSON.stringify({ closedAfterMs: Date.now() - started })); process.exit(0); });
setTimeout(() => { process.stdout.write(JSON.stringify({ closedAfterMs: -1 })); process.exit(0); }, 8000);
`;

test('an unauthenticated remote connection may not start a large message', async () => {
  const result = await ns.run(NODE, [
    '--input-type=module',
    '-e',
    PRE_AUTH,
    `${ns.hostAddress} ${remote.rtmpPort}`,
  ]);
  const { closedAfterMs } = JSON.parse(result.stdout) as { closedAfterMs: number };
  assert.ok(closedAfterMs >= 0 && closedAfterMs < 3000, `closed by the server after ${closedAfterMs} ms`);
  assert.equal(remote.rtmp?.reassemblyBytes, 0, 'and holds nothing for it');
});

test('unfinished messages hold what arrived, and all connections are bounded by rtmp.maxReassemblyBytes', async () => {
  const bystander = await RtmpTestClient.open(local.rtmpPort);
  await bystander.publish('live', 'bystander');
  const publisher = await RtmpTestClient.open(local.rtmpPort);
  await publisher.publish('live', 'big');
  const video = (length: number) =>
    // Type 0 header announcing `length` bytes on the video chunk stream, chunk size 128 (the client's default).
    Buffer.from([
      Csid.Video,
      0,
      0,
      0,
      length >> 16,
      (length >> 8) & 0xff,
      length & 0xff,
      MessageType.Video,
      1,
      0,
      0,
      0,
    ]);
  // A 7 MiB frame announced, 1,000 bytes sent: the server holds kilobytes, not 7 MiB.
  publisher.raw(Buffer.concat([video(7 * 1024 * 1024), Buffer.alloc(128)]));
  for (let i = 0; i < 7; i++)
    publisher.raw(Buffer.concat([Buffer.from([0xc0 | Csid.Video]), Buffer.alloc(128)]));
  await waitFor('the bytes to arrive', () => (local.rtmp?.reassemblyBytes ?? 0) > 0);
  assert.ok((local.rtmp?.reassemblyBytes ?? 0) <= 64 * 1024, `${local.rtmp?.reassemblyBytes} bytes held`);
  // Sending more of it passes the server-wide 1 MiB: this connection is closed, the other is not.
  const chunk = Buffer.concat([Buffer.from([0xc0 | Csid.Video]), Buffer.alloc(128)]);
  publisher.raw(Buffer.concat(Array.from({ length: 12_000 }, () => chunk)));
  await Promise.race([
    publisher.closed,
    new Promise((_, reject) => setTimeout(() => reject(new Error('publisher not closed')), 5000)),
  ]);
  await waitFor('the memory to be given back', () => local.rtmp?.reassemblyBytes === 0);
  assert.ok(local.registry.get('live/bystander')?.live, 'the other publisher goes on');
  assert.ok(!local.registry.get('live/big')?.live);
  bystander.close();
});
