import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { InMemoryBus } from './InMemoryBus.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const KIB16 = 'x'.repeat(16 * 1024 - 2);

test('a channel keeps at most historyMaxBytes of messages, dropping the oldest', async () => {
  const bus = new InMemoryBus({ maxMessages: 1000, maxAgeMs: 60_000, maxBytes: 100_000, maxChannels: 10 });
  for (let i = 0; i < 50; i++) await bus.publish('c', 'anon-a', { type: 'chat', data: KIB16 });
  const replay = await bus.replay('c', 0);
  const bytes = replay.messages.reduce((n, m) => n + m.bytes, 0);
  assert.ok(bytes <= 100_000, `history holds ${bytes} bytes`);
  assert.ok(replay.messages.length >= 5, 'the newest messages are kept');
  assert.equal(replay.messages.at(-1)?.id, 50);
  assert.equal(replay.gap?.reason, 'evicted', 'a client resuming from 0 is told what it missed');
  assert.equal(bus.historyBytes, bytes);
});

test('all channels together hold at most maxHistoryBytesTotal; the least recently used lose first', async () => {
  const bus = new InMemoryBus({
    maxMessages: 1000,
    maxAgeMs: 60_000,
    maxBytes: 1024 * 1024,
    maxBytesTotal: 500_000,
    maxChannels: 1000,
  });
  for (let c = 0; c < 100; c++) {
    for (let i = 0; i < 3; i++) await bus.publish(`c${c}`, 'anon-a', { type: 'chat', data: KIB16 });
  }
  assert.ok(bus.historyBytes <= 500_000, `all histories hold ${bus.historyBytes} bytes`);
  assert.equal((await bus.replay('c0', 0)).messages.length, 0, 'the oldest channel lost its history');
  assert.equal((await bus.replay('c99', 0)).messages.length, 3, 'the newest kept its own');
});

test('a stored 16 KB message costs the process little more than its size', async () => {
  const bus = new InMemoryBus({ maxMessages: 10_000, maxAgeMs: 60_000, maxChannels: 10 });
  // Data as a client sends it: parsed from a request body, so nothing is shared with a constant.
  const body = JSON.stringify({ type: 'chat', data: { text: KIB16 } });
  // Every encoding a fan-out builds, as the transports ask for them.
  const subscriber = (m: { frameBytes: Buffer; sseEvent: Buffer; json: string }) => {
    void m.frameBytes;
    void m.sseEvent;
  };
  bus.subscribe('c', subscriber);
  gc();
  const before = process.memoryUsage();
  const n = 1000;
  for (let i = 0; i < n; i++) {
    const draft = JSON.parse(body) as { type: string; data: unknown };
    await bus.publish('c', 'anon-a', draft);
  }
  gc();
  gc();
  const after = process.memoryUsage();
  // external includes the ArrayBuffers (Buffers) the encodings would be.
  const perMessage = (after.heapUsed - before.heapUsed + (after.external - before.external)) / n;
  const size = Buffer.byteLength(body);
  assert.equal((await bus.replay('c', 0)).messages.length, n, 'all are retained');
  assert.ok(perMessage < size * 1.5, `${Math.round(perMessage)} bytes per ${size}-byte message`);
});
