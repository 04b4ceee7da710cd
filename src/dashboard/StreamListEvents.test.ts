import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, get, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { StreamRegistry } from '../core/StreamRegistry.ts';
import { StreamListEvents } from './StreamListEvents.ts';

const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

async function serving(events: StreamListEvents) {
  const server = createServer((request, response) => events.serve(request, response));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const connect = async () => {
    const request = get(url);
    const [response] = (await once(request, 'response')) as [IncomingMessage];
    const [first] = (await once(response, 'data')) as [Buffer];
    return { request, response, first: first.toString() };
  };
  return { server, connect };
}

test('a dashboard receives the stream list at once, and a publish within the coalescing delay', async (t) => {
  const registry = new StreamRegistry();
  const events = new StreamListEvents(registry, { maxBacklogBytes: 1024 * 1024 });
  const { server, connect } = await serving(events);
  t.after(() => {
    events.close();
    server.close();
  });
  const client = await connect();
  assert.match(client.first, /^retry: 2000\nevent: streams\ndata: \{"streams":\[\]\}\n\n/);
  registry.publish('live/cam1', { protocol: 'rtmp', remoteAddress: '127.0.0.1', id: 'p1', close() {} });
  const [next] = (await once(client.response, 'data')) as [Buffer];
  assert.match(next.toString(), /"path":"live\/cam1"/);
  client.request.destroy();
});

test('the refresh timer stops when the last dashboard leaves (it ran for ever before)', async (t) => {
  const registry = new StreamRegistry();
  const events = new StreamListEvents(registry, { maxBacklogBytes: 1024 * 1024 });
  const { server, connect } = await serving(events);
  t.after(() => {
    events.close();
    server.close();
  });
  const before = timers();
  const client = await connect();
  assert.equal(events.clients, 1);
  assert.equal(timers(), before + 1, 'a connected dashboard has its refresh timer');
  client.request.destroy();
  while (events.clients > 0) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(timers(), before);
});

test('close() ends every dashboard, stops listening to the registry and can be called twice', async (t) => {
  const registry = new StreamRegistry();
  const listening = registry.listenerCount('published');
  const events = new StreamListEvents(registry, { maxBacklogBytes: 1024 * 1024 });
  const { server, connect } = await serving(events);
  t.after(() => server.close());
  assert.equal(registry.listenerCount('published'), listening + 1);
  const client = await connect();
  const ended = once(client.response, 'end');
  events.close();
  events.close();
  await ended;
  assert.equal(events.clients, 0);
  assert.equal(registry.listenerCount('published'), listening);
});
