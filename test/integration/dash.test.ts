import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findBoxes, parseTfhd, readBoxes } from '../../src/media/fmp4/reader.ts';
import { startServer } from '../../src/server.ts';
import { CAMERA_PATH, LiveCamera } from '../helpers/liveCamera.ts';

// A latency target other than the default, to see that dash.targetLatencyMs reaches the MPD.
const camera = new LiveCamera('dash', { dash: { targetLatencyMs: 1200 } });
const server = () => camera.server;
const manifestUrl = () => `${server().httpUrl}/dash/${CAMERA_PATH}/manifest.mpd`;
const attr = (xml: string, element: string, name: string) =>
  new RegExp(`<${element}[^>]*\\s${name}="([^"]*)"`).exec(xml)?.[1];

test('the MPD is dynamic, low-latency, one adaptation set per track, clocked by our UTCTiming', async () => {
  const res = await fetch(manifestUrl());
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/dash+xml');
  const mpd = await res.text();
  assert.equal(attr(mpd, 'MPD', 'type'), 'dynamic');
  assert.equal(attr(mpd, 'SegmentTemplate', 'availabilityTimeComplete'), 'false');
  assert.equal(attr(mpd, 'SegmentTemplate', 'availabilityTimeOffset'), '1.8');
  assert.match(attr(mpd, 'SegmentTemplate', 'media') ?? '', /\$Number\$/);
  assert.equal(attr(mpd, 'Latency', 'target'), '1200');
  const ast = Date.parse(attr(mpd, 'MPD', 'availabilityStartTime') ?? '');
  assert.ok(Date.now() - ast > 2000 && Date.now() - ast < 30_000, `availabilityStartTime ${ast}`);
  assert.deepEqual(
    [...mpd.matchAll(/contentType="(\w+)"/g)].map((m) => m[1]),
    ['video', 'audio'],
  );
  assert.match(mpd, /codecs="avc1\.[0-9a-f]{6}"/);
  assert.match(mpd, /codecs="mp4a\.40\.2"/);
  const timeUrl = attr(mpd, 'UTCTiming', 'value')!;
  assert.equal(attr(mpd, 'UTCTiming', 'schemeIdUri'), 'urn:mpeg:dash:utc:http-iso:2014');
  const time = await fetch(timeUrl);
  assert.equal(time.headers.get('cache-control'), 'no-store');
  assert.ok(Math.abs(Date.parse(await time.text()) - Date.now()) < 1000);
});

test('ffmpeg reads 5 s of H.264 + AAC from the manifest, in real time', async () => {
  await camera.readFiveSeconds(manifestUrl(), 'dash.mp4');
});

test('the segment being produced is sent with chunked transfer as its fragments arrive', async () => {
  const packager = server().hls!.packagers.get(CAMERA_PATH)!;
  const msn = packager.current!.msn + 1;
  const url = `${server().httpUrl}/dash/live/cam1/seg-${packager.epoch}-${msn}-t1.m4s`;
  // Asked before it begins (as a client with availabilityTimeOffset does): held, then streamed.
  const started = performance.now();
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('transfer-encoding'), 'chunked');
  const reader = res.body!.getReader();
  const arrivals: number[] = [];
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < 10_000; i++) {
    const { done, value } = await reader.read();
    if (done) break;
    arrivals.push(performance.now() - started);
    chunks.push(value);
  }
  const bytes = Buffer.concat(chunks);
  // Bytes kept coming for about the segment's 2 s, not all at once at the end.
  assert.ok(arrivals[0] < 2100, `first bytes after ${arrivals[0]} ms`);
  assert.ok(
    arrivals[arrivals.length - 1] - arrivals[0] > 1500,
    `spread over ${arrivals.at(-1)! - arrivals[0]} ms`,
  );
  const tracks = findBoxes(readBoxes(bytes), 'moof/traf/tfhd').map((b) => parseTfhd(b).trackId);
  assert.ok(tracks.length >= 55, `${tracks.length} video fragments`);
  assert.ok(
    tracks.every((id) => id === 1),
    'only the video track',
  );
});

test('unknown streams, names and traversal attempts are refused with a message', async () => {
  const epoch = server().hls!.packagers.get(CAMERA_PATH)!.epoch;
  const cases: [string, number, RegExp][] = [
    ['/dash/nobody/manifest.mpd', 404, /stream "nobody" is not live/],
    ['/dash/live/cam1/index.m3u8', 404, /no DASH resource named "index.m3u8"/],
    [`/dash/live/cam1/seg-${epoch}-999999-t1.m4s`, 404, /segment 999999 of "live\/cam1" does not exist yet/],
    [`/dash/live/cam1/seg-${epoch}-0-t7.m4s`, 404, /no track 7|no longer held/],
    // fetch itself resolves `..` and `%2e%2e`; an encoded slash reaches the server as sent.
    ['/dash/live/..%2f..%2fetc/manifest.mpd', 400, /invalid stream path/],
  ];
  for (const [path, status, message] of cases) {
    const res = await fetch(`${server().httpUrl}${path}`);
    assert.equal(res.status, status, path);
    assert.match(((await res.json()) as { error: string }).error, message, path);
  }
});

test('dash.enabled: false serves no DASH, while LL-HLS still runs', async () => {
  const off = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { enabled: false },
    webrtc: { enabled: false },
    dash: { enabled: false },
    log: { level: 'warn' },
  });
  try {
    assert.equal(off.dash, null);
    assert.ok(off.hls);
    assert.equal((await fetch(`${off.httpUrl}/dash/time`)).status, 404);
  } finally {
    await off.close();
  }
});
