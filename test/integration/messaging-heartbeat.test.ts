/**
 * Heartbeats on both sides across a path that goes dead without closing (a TCP relay that stops forwarding,
 * as a NAT or a sleeping laptop does): the client SDK notices the silence and reconnects, resuming with
 * nothing lost; the server notices the missed pongs and frees the dead connection.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { ChannelEvent, type ChannelMessage, SubsecondChannel } from '../../client/messaging/index.ts';
import { type RunningServer, startServer } from '../../src/server.ts';
import { httpPublish, range } from '../helpers/channels.ts';
import { waitFor } from '../helpers/processes.ts';

let server: RunningServer;
let relay: Server;
let relayPort = 0;
const pairs: { client: Socket; upstream: Socket }[] = [];
const everySocket = new Set<Socket>();

/** Stops forwarding on every open relayed connection without closing either side. */
function blackhole(): void {
  for (const { client, upstream } of pairs.splice(0)) {
    client.unpipe(upstream);
    upstream.unpipe(client);
    client.pause();
    upstream.pause();
  }
}

before(async () => {
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { enabled: false },
    log: { level: 'warn' },
    messaging: { pingIntervalMs: 200 },
  });
  const upstreamPort = server.httpPort;
  relay = createServer((client) => {
    const upstream = new (client.constructor as typeof Socket)();
    upstream.connect(upstreamPort, '127.0.0.1');
    client.pipe(upstream).pipe(client);
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop);
    upstream.on('error', drop);
    pairs.push({ client, upstream });
    everySocket.add(client).add(upstream);
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  relayPort = (relay.address() as { port: number }).port;
});

after(async () => {
  for (const socket of everySocket) socket.destroy();
  relay?.close();
  await server?.close();
});

test('a dead path is detected by the client (ping silence) and the server (missed pongs); resume loses nothing', async () => {
  const channel = 'heartbeat/sdk:chat';
  const ids: number[] = [];
  const sdk = new SubsecondChannel(channel, {
    server: `http://127.0.0.1:${relayPort}`,
    transport: 'ws',
    heartbeatMs: 150,
    backoffBaseMs: 20,
  });
  const reasons: string[] = [];
  sdk.on(ChannelEvent.Message, (m: ChannelMessage) => ids.push(m.id));
  sdk.on(ChannelEvent.State, (s) => {
    if (s.reason) reasons.push(s.reason);
  });
  try {
    await waitFor('connected', () => sdk.state === 'open');
    for (let i = 0; i < 5; i++) await httpPublish(server.httpUrl, channel, { type: 'chat', data: i });
    await waitFor('5 messages', () => ids.length === 5);
    assert.equal(server.messaging.ws.connections, 1);

    blackhole();
    const deadAt = Date.now();
    // Published while the path is dead: the client must get these after it reconnects.
    for (let i = 5; i < 10; i++) await httpPublish(server.httpUrl, channel, { type: 'chat', data: i });
    await waitFor(
      'the client to notice and reconnect',
      () => sdk.reconnects >= 1 && sdk.state === 'open',
      5000,
    );
    const noticedAfter = Date.now() - deadAt;
    assert.ok(noticedAfter >= 250 && noticedAfter < 2000, `client noticed after ${noticedAfter} ms`);
    assert.match(reasons.join('; '), /no answer from the server for two heartbeats/);
    await waitFor('everything after the resume', () => ids.length >= 10);
    assert.deepEqual(ids, range(1, 10));
    // The server drops the dead socket itself, after two missed pongs, leaving only the new one.
    await waitFor(
      'the server to drop the dead connection',
      () => server.messaging.ws.connections === 1,
      3000,
    );
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(ids, range(1, 10), 'nothing arrived twice');
    assert.equal(sdk.duplicatesDropped, 0);
  } finally {
    sdk.close();
  }
});
