/**
 * docs/security.md "Messaging": anonymous clients from another machine share one publish rate per address,
 * however many connections they open (history memory is bounded by src/messaging/ChannelHistory.test.ts).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type RunningServer, startServer } from '../../src/server.ts';
import { createNetns, type Netns } from '../helpers/netns.ts';

const NODE = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));
let ns: Netns;
let server: RunningServer;

before(async () => {
  ns = await createNetns('msg', 13);
  server = await startServer({
    http: { host: ns.hostAddress, port: 0 },
    rtmp: { enabled: false },
    hls: { enabled: false },
    webrtc: { enabled: false },
    messaging: { publishRatePerSecond: 10, publishBurst: 20 },
    log: { level: 'warn' },
  });
});

after(async () => {
  await server?.close();
  await ns?.close();
});

/** 5 WebSockets from the namespace, each publishing 20 messages at once; counts acks and refusals. */
const FLOOD = `
const url = process.argv[1];
let acks = 0, refused = 0, reason = '';
await Promise.all([0, 1, 2, 3, 4].map((c) => new Promise((resolve) => {
  const ws = new WebSocket(url);
  ws.onopen = () => {
    for (let i = 0; i < 20; i++) ws.send(JSON.stringify({ op: 'publish', channel: 'room:chat', type: 'chat', data: 'x'.repeat(1000), ref: c + '-' + i }));
    setTimeout(() => { ws.close(); resolve(); }, 1500);
  };
  ws.onmessage = (e) => {
    const frame = JSON.parse(e.data);
    if (frame.event === 'ack') acks++;
    if (frame.event === 'error' && frame.code === 'rate_limited') { refused++; reason = frame.message; }
  };
  ws.onerror = () => resolve();
})));
process.stdout.write(JSON.stringify({ acks, refused, reason }));
`;

test('anonymous remote clients cannot multiply their publish rate by opening connections', async () => {
  const url = `ws://${ns.hostAddress}:${server.httpPort}/ws/channels/room:chat`;
  const result = await ns.run(NODE, ['--input-type=module', '-e', FLOOD, url]);
  assert.equal(result.code, 0, result.stderr);
  const { acks, refused, reason } = JSON.parse(result.stdout) as {
    acks: number;
    refused: number;
    reason: string;
  };
  // Burst 20 plus 10/s over the ~2 s of the run, for the address: not 5 connections x 20.
  assert.ok(acks >= 20 && acks <= 45, `${acks} of 100 publishes accepted`);
  assert.equal(acks + refused, 100, 'every publish is answered');
  assert.match(reason, /anonymous clients share one rate per address/);
});
