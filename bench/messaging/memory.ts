/**
 * Where an idle messaging connection's memory goes. Runs the server in this process (so the heap can be
 * inspected), opens N idle subscribers from the forked load generator, and after a full GC reports per
 * connection: V8 heap used, external memory, and the heap's self size by constructor (two heap
 * snapshots, before and after, compared). RSS is not reported: the snapshots themselves inflate it; the
 * benchmark (run.ts) measures RSS on a server process of its own. Needs `--expose-gc`:
 *
 *   node --expose-gc --max-semi-space-size=2 bench/messaging/memory.ts [--subscribers 2000] [--transport ws|sse]
 */
import { fork } from 'node:child_process';
import { parseArgs } from 'node:util';
import { getHeapSnapshot } from 'node:v8';
import { startServer } from '../../src/server.ts';
import { sleep, within } from '../fanout/processes.ts';
import type { SubscriberCommand } from './subscribers.ts';

const { values } = parseArgs({
  options: {
    subscribers: { type: 'string', default: '2000' },
    transport: { type: 'string', default: 'ws' },
    top: { type: 'string', default: '20' },
  },
});
const count = Number(values.subscribers);
const transport = values.transport === 'sse' ? 'sse' : 'ws';
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

/** Self size and count per "type:name" of a heap snapshot (the V8 heap snapshot JSON format). */
async function heapByConstructor(): Promise<Map<string, { size: number; count: number }>> {
  const chunks: string[] = [];
  for await (const chunk of getHeapSnapshot()) chunks.push(String(chunk));
  const snapshot = JSON.parse(chunks.join(''));
  const meta = snapshot.snapshot.meta;
  const fields: string[] = meta.node_fields;
  const types: string[] = meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const nodes: number[] = snapshot.nodes;
  const strings: string[] = snapshot.strings;
  const totals = new Map<string, { size: number; count: number }>();
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + typeAt]];
    // Strings and code are named by their content; group them by type alone.
    const name =
      type === 'object' || type === 'closure' || type === 'native' ? strings[nodes[i + nameAt]] : '';
    const key = `${type}:${name}`;
    const entry = totals.get(key) ?? { size: 0, count: 0 };
    entry.size += nodes[i + sizeAt];
    entry.count++;
    totals.set(key, entry);
  }
  return totals;
}

function settle(): void {
  for (let i = 0; i < 3; i++) gc!();
}

const server = await startServer({
  http: { host: '127.0.0.1', port: 0 },
  rtmp: { enabled: false },
  hls: { enabled: false },
  log: { level: 'warn' },
  messaging: { maxConnectionsPerIp: 1_000_000 },
});
const generator = fork(new URL('./subscribers.ts', import.meta.url), {
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
});
try {
  await sleep(500);
  settle();
  const before = { usage: process.memoryUsage(), heap: await heapByConstructor() };
  settle();
  const url =
    transport === 'sse'
      ? `${server.httpUrl}/sse/channels/bench:memory`
      : `${server.httpUrl.replace('http', 'ws')}/ws/channels/bench:memory`;
  const command: SubscriberCommand = {
    type: 'open',
    kind: transport,
    url,
    channel: 'bench:memory',
    count,
    batch: 200,
  };
  const opened = await within(
    120_000,
    'open',
    new Promise<{ open: number }>((resolve) => {
      generator.once('message', (m) => resolve(m as { open: number }));
      generator.send(command);
    }),
  );
  await sleep(2000);
  settle();
  const usage = process.memoryUsage();
  const heap = await heapByConstructor();
  const per = (a: number, b: number) => ((b - a) / opened.open).toFixed(0);
  console.log(`${opened.open} idle ${transport} subscribers; bytes per connection after a full GC:`);
  console.log(`  heapUsed ${per(before.usage.heapUsed, usage.heapUsed)}`);
  console.log(`  external ${per(before.usage.external, usage.external)}`);
  console.log(`  arrayBuffers ${per(before.usage.arrayBuffers, usage.arrayBuffers)}`);
  const rows = [...heap]
    .map(([key, { size, count: n }]) => {
      const was = before.heap.get(key) ?? { size: 0, count: 0 };
      return { key, bytes: (size - was.size) / opened.open, count: (n - was.count) / opened.open };
    })
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, Number(values.top));
  console.log('  heap self size by constructor, per connection:');
  for (const row of rows) {
    console.log(
      `    ${row.bytes.toFixed(0).padStart(6)} B  ${row.count.toFixed(2).padStart(6)} x  ${row.key}`,
    );
  }
} finally {
  generator.send({ type: 'stop' });
  await sleep(200);
  generator.kill();
  await server.close();
}
