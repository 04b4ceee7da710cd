/**
 * LL-DASH with a player nobody here wrote: video.js 8 with VHS (and its mpd-parser) in headless Chromium,
 * joining a stream in its first seconds and playing on past its first MPD refresh.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';
import { type RunningServer, startServer } from '../../src/server.ts';
import { type ChromiumSession, launchChromium } from '../helpers/browser.ts';
import { killAll, publishTestSource, stop, waitFor } from '../helpers/processes.ts';

const STREAM = 'live/vhs';
const require = createRequire(import.meta.url);
const VIDEO_JS = require.resolve('video.js/dist/video.min.js');

let server: RunningServer;
let browser: ChromiumSession;
let publisher: ReturnType<typeof publishTestSource>;

before(async () => {
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { host: '127.0.0.1', port: 0 },
    webrtc: { enabled: false },
    log: { level: 'warn' },
  });
  publisher = publishTestSource(`${server.rtmpUrl}/${STREAM}`, { size: '640x360', gop: 30, seconds: 120 });
  browser = await launchChromium();
});

after(async () => {
  await stop(publisher);
  killAll();
  await browser?.close();
  await server?.close();
});

test('video.js/VHS joins an LL-DASH stream in its first seconds and plays past its first MPD refresh', async () => {
  await waitFor('the first segment', () => (server.hls?.packagers.get(STREAM)?.segments.length ?? 0) >= 1);
  const page = await browser.newPage();
  await page.goto(`${server.httpUrl}/healthz`);
  await page.addScriptTag({ path: VIDEO_JS });
  await page.evaluate((src) => {
    const video = document.createElement('video');
    video.id = 'vhs';
    video.muted = true;
    document.body.append(video);
    const videojs = (window as unknown as { videojs: (el: HTMLVideoElement, o: object) => unknown }).videojs;
    const player = videojs(video, { autoplay: 'muted', liveui: true }) as {
      src(s: object): void;
      currentTime(): number;
    };
    player.src({ src, type: 'application/dash+xml' });
    (window as unknown as { vhs: typeof player }).vhs = player;
  }, `${server.httpUrl}/dash/${STREAM}/manifest.mpd`);
  const currentTime = () =>
    page.evaluate(() => (window as unknown as { vhs: { currentTime(): number } }).vhs.currentTime());
  await waitFor('VHS playing', async () => (await currentTime()) > 0, 20_000);
  // The first refresh is minimumUpdatePeriod (5 segment targets, 10 s) after the join.
  const samples: number[] = [];
  for (let i = 0; i < 16; i++) {
    samples.push(await currentTime());
    await page.waitForTimeout(1000);
  }
  const advanced = samples.at(-1)! - samples[0];
  console.log(samples.map((s) => s.toFixed(1)).join(' '));
  assert.ok(advanced > 12, `VHS played ${advanced.toFixed(1)} s of 16 (${samples.map((s) => s.toFixed(1))})`);
  const error = await page.evaluate(() => document.querySelector('video')?.error?.message ?? null);
  assert.equal(error, null);
  await page.close();
});
