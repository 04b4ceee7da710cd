/**
 * docs/security.md "Server push": a reader of the dashboard events that stops reading is cut off at
 * http.eventsMaxBacklogBytes instead of growing the server, and one address holds at most
 * http.maxEventStreamsPerIp of them.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import type { Publisher } from '../../src/core/Stream.ts';
import { type RunningServer, startServer } from '../../src/server.ts';
import { waitFor } from '../helpers/processes.ts';

let server: RunningServer;

function fakePublisher(id: string): Publisher {
  return { protocol: 'test', remoteAddress: '127.0.0.1', id, close() {} };
}

async function serverEvents(): Promise<{ connections: number; cutOff: number }> {
  const body = (await (await fetch(`${server.httpUrl}/api/v1/server`)).json()) as {
    events: { connections: number; cutOff: number };
  };
  return body.events;
}

before(async () => {
  server = await startServer({
    http: { host: '127.0.0.1', port: 0, maxEventStreamsPerIp: 3, eventsMaxBacklogBytes: 64 * 1024 },
    rtmp: { enabled: false },
    hls: { enabled: false },
    webrtc: { enabled: false },
    log: { level: 'warn' },
  });
});

after(async () => {
  await server?.close();
});

test('one address holds at most http.maxEventStreamsPerIp dashboard event streams', async () => {
  const open = await Promise.all(
    [0, 1, 2].map(async () => {
      const controller = new AbortController();
      const response = await fetch(`${server.httpUrl}/api/v1/events`, { signal: controller.signal });
      assert.equal(response.status, 200);
      return controller;
    }),
  );
  const refused = await fetch(`${server.httpUrl}/api/v1/events`);
  assert.equal(refused.status, 429);
  assert.match(
    ((await refused.json()) as { error: string }).error,
    /too many dashboard event streams from 127\.0\.0\.1: 3 open, the limit is 3 \(http\.maxEventStreamsPerIp\)/,
  );
  for (const controller of open) controller.abort();
  await waitFor('the streams to be released', async () => (await serverEvents()).connections === 0);
  const again = await fetch(`${server.httpUrl}/api/v1/events`);
  assert.equal(again.status, 200, 'a released slot is free again');
  await again.body?.cancel();
});

test('a stalled dashboard reader is cut off at http.eventsMaxBacklogBytes, not buffered without bound', async () => {
  // A big stream list makes each event large, so the kernel's socket buffers fill in a few seconds.
  const big = server.registry.publish('live/big', fakePublisher('big'));
  big.warnings.add('x'.repeat(512 * 1024));
  const socket = connect(server.httpPort, '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  socket.write(`GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  socket.pause();
  let closed = false;
  socket.on('close', () => {
    closed = true;
  });
  socket.on('error', () => {});
  const other = server.registry;
  const churn = setInterval(() => {
    const s = other.publish('live/churn', fakePublisher('churn'));
    other.unpublish(s, s.publisher!);
  }, 100);
  try {
    await waitFor('the stalled reader to be cut off', async () => (await serverEvents()).cutOff >= 1, 30_000);
  } finally {
    clearInterval(churn);
  }
  assert.equal((await serverEvents()).connections, 0, 'the reader is no longer served');
  socket.resume();
  await waitFor('the client to see its stream end', () => closed, 10_000);
  other.unpublish(big, big.publisher!);
});
