import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import { findBox, parseTfhd, readBoxes } from '../../src/media/fmp4/reader.ts';
import { type RunningServer, startServer } from '../../src/server.ts';
import { ffprobe, killAll, publishTestSource, stop, waitFor } from '../helpers/processes.ts';

let server: RunningServer;
let publisher: ChildProcess | undefined;
const dir = mkdtempSync(join(tmpdir(), 'subsecond-mse-'));

before(async () => {
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { host: '127.0.0.1', port: 0 },
    log: { level: 'warn' },
  });
  publisher = publishTestSource(`${server.rtmpUrl}/live/cam1`, { size: '1280x720', rate: 30, gop: 30 });
  await waitFor('live/cam1 to be ready', () => server.registry.get('live/cam1')?.ready);
});

after(async () => {
  await stop(publisher);
  killAll();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Received {
  texts: Record<string, unknown>[];
  init: Buffer | null;
  fragments: Buffer[];
}

function watch(url: string, ms: number): Promise<Received> {
  return new Promise((resolve, reject) => {
    const got: Received = { texts: [], init: null, fragments: [] };
    const ws = new WebSocket(url);
    let expectInit = false;
    ws.on('message', (data: Buffer, isBinary) => {
      if (!isBinary) {
        const msg = JSON.parse(data.toString()) as Record<string, unknown>;
        got.texts.push(msg);
        if (msg.type === 'init') expectInit = true;
        return;
      }
      if (expectInit) {
        got.init = data;
        expectInit = false;
      } else {
        got.fragments.push(data);
      }
    });
    ws.on('error', reject);
    ws.on('open', () => setTimeout(() => ws.close(1000), ms));
    ws.on('close', () => resolve(got));
  });
}

test('a WebSocket viewer receives init + per-frame fragments that ffprobe decodes', async () => {
  const got = await watch(`${server.httpUrl.replace('http', 'ws')}/mse/live/cam1`, 5000);
  const init = got.texts.find((t) => t.type === 'init') as { codecs: string; tracks: { kind: string }[] };
  assert.ok(init, 'an init message arrives first');
  assert.match(init.codecs, /^avc1\.[0-9a-f]{6},mp4a\.40\.2$/);
  assert.ok(got.init, 'the init segment follows the init message');
  assert.deepEqual(
    readBoxes(got.init).map((b) => b.type),
    ['ftyp', 'moov'],
  );

  // Every binary message is exactly one moof+mdat holding one sample.
  let video = 0;
  for (const f of got.fragments) {
    const boxes = readBoxes(f);
    assert.deepEqual(
      boxes.map((b) => b.type),
      ['moof', 'mdat'],
    );
    const tfhd = findBox(boxes, 'moof/traf/tfhd');
    assert.ok(tfhd, 'each fragment has a tfhd');
    if (parseTfhd(tfhd).trackId === 1) video++;
  }
  // 5 s of 30 fps live, plus up to one GOP (1 s) from the cache at join.
  assert.ok(video >= 140 && video <= 190, `video fragments in 5 s: ${video}`);

  const file = join(dir, 'mse.mp4');
  writeFileSync(file, Buffer.concat([got.init, ...got.fragments]));
  const streams = await ffprobe(file);
  const v = streams.find((s) => s.codec_type === 'video');
  const a = streams.find((s) => s.codec_type === 'audio');
  assert.equal(v?.codec_name, 'h264');
  assert.equal(v?.width, 1280);
  assert.equal(v?.height, 720);
  assert.equal(a?.codec_name, 'aac');
  assert.equal(a?.sample_rate, '48000');
  const decoded = Number(v?.nb_read_frames);
  assert.ok(Math.abs(decoded - video) <= video * 0.1, `ffprobe decoded ${decoded} of ${video} video frames`);
});

test('the server counts the viewer and measures delivery delay', async () => {
  const before = server.mse.counters.fragmentsSent;
  const ws = new WebSocket(`${server.httpUrl.replace('http', 'ws')}/mse/live/cam1`);
  await waitFor('viewer to be counted', () => server.registry.get('live/cam1')?.viewers.get('mse') === 1);
  const api = (await (await fetch(`${server.httpUrl}/api/v1/streams/live/cam1`)).json()) as {
    viewers: { total: number };
  };
  assert.equal(api.viewers.total, 1);
  await waitFor('fragments to flow', () => server.mse.counters.fragmentsSent > before + 30);
  ws.close();
  await waitFor('viewer to be uncounted', () => !server.registry.get('live/cam1')?.viewers.has('mse'));
  assert.ok(server.mse.deliveryDelay.count > 0);
  // The GOP cache replayed at join (up to a second old here) is not delivery delay; live frames leave at once.
  assert.ok(
    server.mse.deliveryDelay.quantile(0.99) < 100,
    `p99 ${server.mse.deliveryDelay.quantile(0.99)} ms`,
  );
});

test('upgrade to an unknown stream is refused with 404, a bad path with 400, before any WebSocket', async () => {
  const status = (url: string) =>
    new Promise<number>((resolve) => {
      const ws = new WebSocket(url);
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => {
        ws.close();
        resolve(101);
      });
      ws.on('error', () => {});
    });
  const base = server.httpUrl.replace('http', 'ws');
  assert.equal(await status(`${base}/mse/live/nobody`), 404);
  assert.equal(await status(`${base}/mse/live%2f..%2f..%2fetc`), 400);
  assert.equal(await status(`${base}/mse/live/a%20b`), 400);
  assert.equal(await status(`${base}/nothing-here`), 404);
});
