/**
 * GStreamer's playbin3 with hlsdemux2 joining an LL-HLS stream in its first moment (right after its first part
 * exists): it must play on, not refuse a playlist of parts only or lose the playlist synchronization.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { type RunningServer, startServer } from '../../src/server.ts';
import { killAll, publishTestSource, waitFor } from '../helpers/processes.ts';

const STREAM = 'live/gst';
let server: RunningServer;

before(async () => {
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { host: '127.0.0.1', port: 0 },
    webrtc: { enabled: false },
    log: { level: 'warn' },
  });
});

after(async () => {
  killAll();
  await server?.close();
});

test("GStreamer hlsdemux2 joining in the stream's first second plays without losing sync", async () => {
  publishTestSource(`${server.rtmpUrl}/${STREAM}`, { size: '320x240', gop: 30, seconds: 40 });
  await waitFor('the first part', () => server.hls?.packagers.get(STREAM)?.lastPart != null, 15_000);
  const gst = spawn(
    'gst-launch-1.0',
    [
      'playbin3',
      `uri=${server.httpUrl}/hls/${STREAM}/index.m3u8`,
      'video-sink=fakesink sync=true',
      'audio-sink=fakesink sync=true',
    ],
    { env: { ...process.env, GST_DEBUG: 'hlsdemux2:2,adaptivedemux2:3' } },
  );
  let log = '';
  gst.stdout.on('data', (d) => {
    log += d;
  });
  gst.stderr.on('data', (d) => {
    log += d;
  });
  const segmentsAtJoin = server.hls!.packagers.get(STREAM)!.segments.length;
  await new Promise((r) => setTimeout(r, 8000));
  // Still fetching media in its last 4 s: it plays on (a stalled hlsdemux2 stops asking).
  const fetched = () => server.hls!.counters.segments + server.hls!.counters.parts;
  const before = fetched();
  await new Promise((r) => setTimeout(r, 4000));
  const late = fetched() - before;
  if (gst.exitCode === null && gst.signalCode === null) {
    const exited = new Promise((r) => gst.once('exit', r));
    gst.kill('SIGINT');
    const timer = setTimeout(() => gst.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }
  const clean = log.replace(/\x1b\[[0-9;]*m/g, '');
  assert.equal(segmentsAtJoin, 0, 'the player joined before the first segment was complete');
  assert.doesNotMatch(clean, /Couldn't parse playlist|Lost synchronization|ERROR/, clean.slice(-3000));
  assert.match(clean, /Setting pipeline to PLAYING/);
  assert.ok(late >= 2, `${late} segments or parts fetched in the last 4 s`);
});
