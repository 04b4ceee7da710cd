import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { type RunningServer, startServer } from '../../src/server.ts';
import { killAll, publishTestSource, waitFor } from '../helpers/processes.ts';

const run = promisify(execFile);
let server: RunningServer;

before(async () => {
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { host: '127.0.0.1', port: 0 },
    log: { level: 'silent' },
  });
});

after(async () => {
  killAll();
  await server?.close();
});

const json = async (path: string, init?: RequestInit) => {
  const res = await fetch(`${server.httpUrl}${path}`, init);
  const text = await res.text();
  return {
    status: res.status,
    type: res.headers.get('content-type') ?? '',
    body: text ? JSON.parse(text) : null,
  };
};

test('health, empty stream list, and JSON errors that name the problem', async () => {
  const health = await json('/healthz');
  assert.equal(health.status, 200);
  assert.equal(health.body.status, 'ok');
  assert.deepEqual((await json('/api/v1/streams')).body, { streams: [] });
  const missing = await json('/api/v1/streams/live/none');
  assert.equal(missing.status, 404);
  assert.match(missing.body.error, /"live\/none" is not live/);
  const bad = await json('/api/v1/streams/live/a%20b');
  assert.equal(bad.status, 400);
  assert.match(bad.body.error, /invalid stream path/);
  const traversal = await json('/api/v1/streams/..%2f..%2fetc%2fpasswd');
  assert.equal(traversal.status, 400);
  const route = await json('/no/such/route');
  assert.equal(route.status, 404);
  assert.match(route.body.error, /no route for GET \/no\/such\/route/);
  const file = await fetch(`${server.httpUrl}/static/..%2f..%2fpackage.json`);
  assert.equal(file.status, 404);
});

test('the server description names the RTMP port actually bound, for the dashboard publish hint', async () => {
  const info = await json('/api/v1/server');
  assert.equal(info.status, 200);
  assert.ok(server.rtmpPort > 0);
  assert.equal(info.body.rtmp.port, server.rtmpPort);
});

test('a published stream is listed with its tracks, can be kicked, and metrics see it', async () => {
  const publisher = publishTestSource(`${server.rtmpUrl}/live/api`, { size: '640x360', seconds: 30 });
  await waitFor('live/api to be ready', () => server.registry.get('live/api')?.ready);
  await waitFor('a bitrate to be measured', () => server.registry.get('live/api')!.bitrate > 0, 5000);
  const { body } = await json('/api/v1/streams');
  assert.equal(body.streams.length, 1);
  const s = body.streams[0];
  assert.equal(s.path, 'live/api');
  assert.equal(s.publisher.protocol, 'rtmp');
  assert.deepEqual(
    s.tracks.map((t: { kind: string; codec: string }) => `${t.kind}:${t.codec}`),
    ['video:h264', 'audio:aac'],
  );
  assert.equal(s.tracks[0].width, 640);
  assert.equal(s.tracks[0].height, 360);
  assert.ok(s.bitrate > 50_000, `bitrate ${s.bitrate}`);

  const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
  assert.match(metrics, /subsecond_streams_live 1/);
  assert.match(metrics, /subsecond_stream_bitrate_bits_per_second\{path="live\/api"\} \d+/);

  const kick = await fetch(`${server.httpUrl}/api/v1/streams/live/api`, { method: 'DELETE' });
  assert.equal(kick.status, 204);
  await waitFor(
    'ffmpeg to notice the kick',
    () => publisher.exitCode !== null || publisher.signalCode !== null,
  );
  assert.equal((await json('/api/v1/streams/live/api')).status, 404);
  assert.equal((await json('/api/v1/streams/live/api', { method: 'DELETE' })).status, 404);
});

test('the dashboard event stream sends the stream list as Server-Sent Events', async () => {
  const controller = new AbortController();
  const res = await fetch(`${server.httpUrl}/api/v1/events`, { signal: controller.signal });
  assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  const reader = res.body!.getReader();
  const { value } = await reader.read();
  const text = new TextDecoder().decode(value);
  assert.match(text, /event: streams\ndata: \{"streams":\[/);
  controller.abort();
});

test('the CLI refuses a bad setting naming the key, and --help lists every setting', async () => {
  const node = process.execPath;
  await assert.rejects(
    run(node, ['src/cli/main.ts', 'serve', '--http.port', 'abc']),
    (err: { stderr: string; code: number }) => {
      assert.equal(err.code, 2);
      assert.match(err.stderr, /http\.port: expected a number, got "abc"/);
      return true;
    },
  );
  await assert.rejects(
    run(node, ['src/cli/main.ts', 'serve', '--http.nope', '1']),
    /unknown flag --http\.nope/,
  );
  const env = { ...process.env, SUBSECOND_RTMP_PORT: '99999' };
  await assert.rejects(run(node, ['src/cli/main.ts', 'serve'], { env }), /rtmp\.port/);
  const help = await run(node, ['src/cli/main.ts', 'serve', '--help']);
  assert.match(help.stdout, /--http\.port\s+8080\s+SUBSECOND_HTTP_PORT/);
  assert.match(help.stdout, /--auth\.publishKey/);
});

test('the OpenAPI document describes the stream routes', async () => {
  const { status, body } = await json('/api/v1/openapi.json');
  assert.equal(status, 200);
  assert.equal(body.openapi, '3.1.0');
  for (const route of ['/api/v1/streams', '/api/v1/streams/{path}', '/mse/{path}'])
    assert.ok(body.paths[route], route);
  assert.ok(body.paths['/api/v1/streams/{path}'].delete);
});
