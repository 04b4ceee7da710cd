/**
 * What one published message costs Redis with `cluster.redis`: commands (INFO commandstats, including those a
 * Lua script runs) and bytes in and out of Redis (INFO stats), per message, with N nodes following the channel.
 * Sizes Redis for the scale model; no MONITOR (it would cost more than what it measures).
 *
 *   node bench/messaging/redis-cost.ts [--messages 2000] [--nodes 2] [--size 200]
 */
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { connectRedisBus } from '../../src/messaging/redis/RedisBus.ts';
import { startRedis } from '../../test/helpers/redis.ts';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '2000' },
    nodes: { type: 'string', default: '2' },
    size: { type: 'string', default: '200' },
  },
});
const messages = Number(values.messages);
const nodes = Number(values.nodes);
const size = Number(values.size);
const log = pino({ level: 'warn' });
const limits = { maxMessages: 1000, maxAgeMs: 3_600_000, maxBytes: 1024 * 1024 };

const redis = await startRedis();
const admin = new Redis(redis.url);
const buses = await Promise.all(
  Array.from({ length: nodes }, (_, i) => connectRedisBus({ url: redis.url, node: `n${i}`, limits, log })),
);
let delivered = 0;
for (const bus of buses) {
  bus.subscribe('bench:cost', () => delivered++);
  await bus.replay('bench:cost', undefined);
}

function stats(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\r\n')) {
    const m =
      /^cmdstat_([a-z|]+):calls=(\d+)/.exec(line) ?? /^(total_net_(?:input|output)_bytes):(\d+)/.exec(line);
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}
const read = async () => stats((await admin.info('commandstats')) + (await admin.info('stats')));

const data = 'x'.repeat(size);
const before = await read();
for (let i = 0; i < messages; i++) await buses[0].publish('bench:cost', 'anon-bench', { type: 'chat', data });
while (delivered < messages * nodes) await new Promise((r) => setTimeout(r, 20));
const afterStats = await read();

const rows: string[] = [];
let commands = 0;
for (const [name, value] of afterStats) {
  if (name.startsWith('total_net')) continue;
  const n = (value - (before.get(name) ?? 0)) / messages;
  if (name === 'info') continue;
  if (n > 0) rows.push(`  ${name.padEnd(14)} ${n.toFixed(2)}`);
  commands += n;
}
const bytesIn =
  ((afterStats.get('total_net_input_bytes') ?? 0) - (before.get('total_net_input_bytes') ?? 0)) / messages;
const bytesOut =
  ((afterStats.get('total_net_output_bytes') ?? 0) - (before.get('total_net_output_bytes') ?? 0)) / messages;
console.log(
  `${messages} messages of ${size} B data, ${nodes} node(s) following the channel; per message:\n` +
    `${rows.join('\n')}\n  commands total ${commands.toFixed(2)} (1 EVALSHA from the client, the rest inside it)\n` +
    `  bytes into Redis ${bytesIn.toFixed(0)}, out of Redis ${bytesOut.toFixed(0)}`,
);
admin.disconnect();
await Promise.all(buses.map((b) => b.close()));
await redis.stop();
