/**
 * docs/metrics.md and deploy/grafana-dashboard.json against what /metrics really exposes: a server with every
 * metric source on (LL-HLS, a WHEP worker, a stream published by ffmpeg, a WebSocket viewer, recording, a cluster on a
 * real redis-server), scraped once.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import { type RunningServer, startServer } from '../../src/server.ts';
import { killAll, publishTestSource, waitFor } from '../helpers/processes.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';

const root = join(import.meta.dirname, '../..');
const docs = readFileSync(join(root, 'docs/metrics.md'), 'utf8');
/** prom-client's default metrics are documented as families. */
const DEFAULT_FAMILIES = ['subsecond_process_', 'subsecond_nodejs_'];
let server: RunningServer;
let redis: TestRedis;
/** Metric name → the label names its samples carry. */
const exposed = new Map<string, Set<string>>();

before(async () => {
  redis = await startRedis();
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { host: '127.0.0.1', port: 0 },
    webrtc: { udpPort: 0, workers: 1 },
    log: { level: 'warn' },
    cluster: { redis: redis.url, secret: 'metrics-docs-secret' },
  });
  publishTestSource(`${server.rtmpUrl}/live/metrics`, { size: '320x180', seconds: 30 });
  await waitFor('the stream', () => server.registry.get('live/metrics')?.live);
  const viewer = new WebSocket(`${server.httpUrl.replace('http', 'ws')}/mse/live/metrics`);
  await new Promise((resolve, reject) => viewer.once('message', resolve).once('error', reject));
  await waitFor('a bitrate', () => (server.registry.get('live/metrics')?.bitrate ?? 0) > 0);
  const text = await (await fetch(`${server.httpUrl}/metrics`)).text();
  viewer.close();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) exposed.set(type[1], new Set());
    const sample = /^([a-z_0-9]+)\{([^}]*)\}/.exec(line);
    if (!sample) continue;
    // A histogram's samples are its name with _bucket, _sum or _count.
    const name = exposed.has(sample[1]) ? sample[1] : sample[1].replace(/_(bucket|sum|count)$/, '');
    const labels = exposed.get(name);
    for (const [, label] of sample[2].matchAll(/([a-z_]+)="/g)) if (label !== 'le') labels?.add(label);
  }
});

after(async () => {
  killAll();
  await server?.close();
  await redis?.stop();
});

function documentedRow(name: string): string | undefined {
  return docs.split('\n').find((row) => row.startsWith(`| \`${name}\` |`));
}

test('every metric /metrics exposes is documented in docs/metrics.md, with its labels', () => {
  assert.ok(exposed.has('subsecond_webrtc_worker_up') && exposed.has('subsecond_hls_responses_total'));
  for (const [name, labels] of exposed) {
    const family = DEFAULT_FAMILIES.find((prefix) => name.startsWith(prefix));
    const row = family ? documentedRow(`${family}*`) : documentedRow(name);
    assert.ok(row, `${name} is not in docs/metrics.md`);
    for (const label of labels)
      assert.ok(row.includes(`\`${label}\``), `label ${label} of ${name} is not documented`);
  }
  assert.deepEqual([...(exposed.get('subsecond_stream_bitrate_bits_per_second') ?? [])], ['path']);
});

test('docs/metrics.md names no metric that does not exist', () => {
  for (const [, name] of docs.matchAll(/^\| `(subsecond_[a-z_]+)` \|/gm)) {
    assert.ok(exposed.has(name), `docs/metrics.md documents ${name}, which /metrics does not expose`);
  }
});

test('the Grafana dashboard asks only for metrics that exist', () => {
  const dashboard = JSON.parse(readFileSync(join(root, 'deploy/grafana-dashboard.json'), 'utf8')) as {
    panels: { title: string; targets: { expr: string }[] }[];
  };
  assert.ok(dashboard.panels.length >= 10);
  for (const panel of dashboard.panels) {
    for (const { expr } of panel.targets) {
      for (const [name] of expr.matchAll(/subsecond_[a-z0-9_]+/g)) {
        assert.ok(
          exposed.has(name),
          `panel "${panel.title}" queries ${name}, which /metrics does not expose`,
        );
      }
    }
  }
});
