/**
 * End to end: ffmpeg publishes over RTMP, headless Chromium plays the stream on the player page over LL-HLS
 * with hls.js and over LL-DASH with dash.js (both served by us from the client bundle), and survives the
 * publisher leaving and coming back without a page reload.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import type { PlayerError, PlayerState, PlayerStats } from '../../client/player/index.ts';
import { type RunningServer, startServer } from '../../src/server.ts';
import { type ChromiumSession, launchChromium } from '../helpers/browser.ts';
import { killAll, publishTestSource, stop, waitFor } from '../helpers/processes.ts';

const STREAM = 'live/hls1';
const root = join(import.meta.dirname, '../..');

let server: RunningServer | undefined;
let publisher: ChildProcess | undefined;
let browser: ChromiumSession | undefined;
let page: Page;

interface PageView {
  state: PlayerState | undefined;
  stats: PlayerStats | undefined;
  errors: PlayerError[];
  mediaError: string | null;
}

function view(p: Page): Promise<PageView> {
  return p.evaluate(() => {
    const video = document.querySelector('video');
    return {
      state: window.subsecondPlayer?.state,
      stats: window.subsecondPlayer?.stats(),
      errors: window.subsecondErrors ?? [],
      mediaError: video?.error ? `${video.error.code} ${video.error.message}` : null,
    };
  });
}

function publish(): ChildProcess {
  return publishTestSource(`${server!.rtmpUrl}/${STREAM}`, {
    size: '640x360',
    rate: 30,
    gop: 30,
    seconds: 300,
  });
}

/** The playhead and decoded frames advance over 3 s, over `transport`, at low latency. */
async function assertPlaying(label: string, transport = 'hls', p = page): Promise<PlayerStats> {
  await waitFor(`${label}: player state "playing"`, async () => (await view(p)).state === 'playing', 30_000);
  const before = await view(p);
  await p.waitForTimeout(3000);
  const after = await view(p);
  const s0 = before.stats!;
  const s1 = after.stats!;
  console.log(`${label}: ${JSON.stringify(s1)}`);
  assert.equal(after.mediaError, null, `${label}: video element error`);
  assert.equal(s1.transport, transport);
  assert.ok(
    s1.currentTime - s0.currentTime > 2,
    `${label}: currentTime ${s0.currentTime} → ${s1.currentTime}`,
  );
  assert.ok(
    s1.decodedFrames - s0.decodedFrames >= 60,
    `${label}: decoded ${s1.decodedFrames - s0.decodedFrames}`,
  );
  assert.match(s1.codecs, /avc1\./, `${label}: codecs ${s1.codecs}`);
  assert.equal(s1.width, 640);
  assert.equal(s1.height, 360);
  assert.ok(s1.bytesReceived > 100_000, `${label}: ${s1.bytesReceived} bytes received`);
  // hls.js holds PART-HOLD-BACK (0.6 s) plus a part or two behind the edge; dash.js its 1 s target.
  assert.ok(s1.latency > 0 && s1.latency < 3, `${label}: latency ${s1.latency} s`);
  return s1;
}

before(async () => {
  execFileSync(process.execPath, [join(root, 'scripts/build-client.ts')], { stdio: 'inherit' });
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { host: '127.0.0.1', port: 0 },
    log: { level: 'warn' },
  });
  publisher = publish();
  await waitFor(
    'a complete HLS segment',
    () => (server!.hls?.packagers.get(STREAM)?.segments.length ?? 0) >= 1,
    15_000,
  );
  browser = await launchChromium();
});

after(async () => {
  await stop(publisher);
  killAll();
  await browser?.close();
  await server?.close();
});

test('the player page plays the stream over LL-HLS with hls.js', async () => {
  page = await browser!.newPage();
  await page.goto(`${server!.httpUrl}/play/${STREAM}?transport=hls`);
  await assertPlaying('first publish');
  const counters = server!.hls!.counters;
  assert.ok(counters.parts > 0, 'hls.js fetched parts');
  assert.ok(counters.blockedPlaylists > 0, 'hls.js used blocking playlist reloads');
});

let dashPage: Page;

test('the player page plays the stream over LL-DASH with dash.js', async () => {
  dashPage = await browser!.newPage();
  await dashPage.goto(`${server!.httpUrl}/play/${STREAM}?transport=dash`);
  await assertPlaying('dash', 'dash', dashPage);
  assert.ok(server!.dash!.counters.streamedSegments > 0, 'dash.js fetched segments while they were produced');
});

test('the player waits for a publisher that left and resumes without a reload when it returns', async () => {
  for (const p of [page, dashPage]) {
    await p.evaluate(() => {
      (window as Window & { samePage?: boolean }).samePage = true;
    });
  }
  await stop(publisher);
  await waitFor(
    'the waiting-for-publisher state',
    async () => (await view(page)).state === 'waiting-for-publisher',
    15_000,
  );
  publisher = publish();
  await assertPlaying('after republish');
  assert.equal(await page.evaluate(() => (window as Window & { samePage?: boolean }).samePage), true);
  assert.equal(await dashPage.evaluate(() => (window as Window & { samePage?: boolean }).samePage), true);
  // The DASH page reconnected by itself (the manifest answered 404 while the publisher was away).
  await assertPlaying('dash after republish', 'dash', dashPage);
  assert.ok((await view(dashPage)).stats!.reconnects >= 1, 'the DASH player reconnected');
  const errors = (await view(page)).errors.filter((e) => e.fatal);
  assert.deepEqual(errors, [], 'no fatal player error');
});
