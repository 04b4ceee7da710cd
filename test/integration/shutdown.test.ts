/**
 * Closing the server ends every connection: a client that holds a request open (headers half sent, or a
 * player reconnecting while the server shuts down) must not keep close() pending.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { startServer } from '../../src/server.ts';

function open(port: number, data: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(data);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

test('close() ends connections with a request in progress and idle keep-alive ones', async () => {
  const server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { host: '127.0.0.1', port: 0 },
    webrtc: { enabled: false },
    log: { level: 'warn' },
  });
  const port = server.httpPort;
  const halfSent = await open(port, 'GET /healthz HTTP/1.1\r\nHost: localhost\r\n');
  const keptAlive = await open(port, 'GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
  await new Promise((resolve) => keptAlive.once('data', resolve));
  const ended = [halfSent, keptAlive].map(
    (s) => new Promise<void>((resolve) => s.once('close', () => resolve())),
  );
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    server.close().then(() => 'closed'),
    new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve('still pending after 5 s'), 5000);
    }),
  ]);
  clearTimeout(timer);
  halfSent.destroy();
  keptAlive.destroy();
  assert.equal(outcome, 'closed');
  await Promise.all(ended);
  assert.ok(performance.now() - started < 5000);
});
