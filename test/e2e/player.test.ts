/**
 * End to end: ffmpeg publishes over RTMP to the real server, headless Chromium plays the stream on the
 * player page over WebSocket + MSE, survives the publisher leaving and coming back, and the dashboard
 * lists the stream.
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

const STREAM = 'live/cam1';
const root = join(import.meta.dirname, '../..');

let server: RunningServer | undefined;
let publisher: ChildProcess | undefined;
let browser: ChromiumSession | undefined;
let player: Page;

interface PageView {
  state: PlayerState | undefined;
  stateText: string;
  stats: PlayerStats | undefined;
  errors: PlayerError[];
  mediaError: string | null;
  audioBytes: number | null;
}

function view(page: Page): Promise<PageView> {
  return page.evaluate(() => {
    const video = document.querySelector('video');
    const audio = (video as HTMLVideoElement & { webkitAudioDecodedByteCount?: number })
      .webkitAudioDecodedByteCount;
    return {
      state: window.subsecondPlayer?.state,
      stateText: document.getElementById('state')?.textContent ?? '',
      stats: window.subsecondPlayer?.stats(),
      errors: window.subsecondErrors ?? [],
      mediaError: video?.error ? `${video.error.code} ${video.error.message}` : null,
      audioBytes: audio ?? null,
    };
  });
}

function publish(): ChildProcess {
  return publishTestSource(`${server!.rtmpUrl}/${STREAM}`, {
    size: '1280x720',
    rate: 30,
    gop: 30,
    seconds: 600,
  });
}

/** Asserts the page plays: the playhead and the decoded frame count advance over 3 s, without errors. */
async function assertPlaying(page: Page, label: string): Promise<PlayerStats> {
  await waitFor(
    `${label}: player state "playing"`,
    async () => (await view(page)).state === 'playing',
    20_000,
  );
  const before = await view(page);
  await page.waitForTimeout(3000);
  const after = await view(page);
  const s0 = before.stats!;
  const s1 = after.stats!;
  console.log(`${label}: ${JSON.stringify(s1)}`);
  assert.equal(after.mediaError, null, `${label}: video element error`);
  assert.deepEqual(after.errors, [], `${label}: player reported errors`);
  assert.ok(
    s1.currentTime - s0.currentTime > 2,
    `${label}: currentTime ${s0.currentTime} → ${s1.currentTime}`,
  );
  assert.ok(
    s1.decodedFrames - s0.decodedFrames >= 60,
    `${label}: decoded frames ${s0.decodedFrames} → ${s1.decodedFrames} in 3 s at 30 fps`,
  );
  assert.match(s1.codecs, /avc1\./, `${label}: codecs ${s1.codecs}`);
  assert.match(s1.codecs, /mp4a\./, `${label}: the SourceBuffer has no audio (codecs ${s1.codecs})`);
  if (after.audioBytes !== null && before.audioBytes !== null) {
    assert.ok(after.audioBytes > before.audioBytes, `${label}: no audio decoded`);
  }
  assert.equal(s1.width, 1280);
  assert.equal(s1.height, 720);
  assert.ok(s1.latency < 2, `${label}: latency ${s1.latency} s`);
  return s1;
}

before(async () => {
  // The server lists web/dist when it starts, so the bundle must exist first.
  execFileSync(process.execPath, [join(root, 'scripts/build-client.ts')], { stdio: 'inherit' });
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { host: '127.0.0.1', port: 0 },
    log: { level: 'warn' },
  });
  publisher = publish();
  await waitFor(`${STREAM} to be ready`, () => server!.registry.get(STREAM)?.ready, 15_000);
  browser = await launchChromium();
});

after(async () => {
  await stop(publisher);
  killAll();
  await browser?.close();
  await server?.close();
});

test('the player page plays the stream over WebSocket + MSE, video and audio', async () => {
  player = await browser!.newPage();
  await player.goto(`${server!.httpUrl}/play/${STREAM}?transport=mse`);
  const stats = await assertPlaying(player, 'first publish');
  assert.equal(stats.transport, 'mse');
  assert.equal(stats.reconnects, 0);
});

test('the dashboard lists the stream with its resolution and the open viewer', async () => {
  const dashboard = await browser!.newPage();
  try {
    await dashboard.goto(`${server!.httpUrl}/`);
    const row = dashboard.locator(`tr[data-path="${STREAM}"]`);
    await row.waitFor({ timeout: 10_000 });
    assert.match((await row.textContent()) ?? '', /1280×720/);
    assert.equal(await row.locator('a').getAttribute('href'), `/play/${STREAM}`);
    await waitFor('the publish hint to name the bound RTMP port', async () =>
      ((await dashboard.locator('#publish-command').textContent()) ?? '').includes(
        `:${server!.rtmpPort}/live/cam1`,
      ),
    );
    const viewers = await waitFor(
      'the dashboard to count the player page as a viewer',
      async () => {
        const n = Number(await row.locator('td.viewers').evaluate((td) => td.firstChild?.textContent ?? '0'));
        return n >= 1 ? n : 0;
      },
      10_000,
    );
    assert.ok(viewers >= 1);
  } finally {
    await dashboard.close();
  }
});

test('the player waits for a publisher that left and resumes without a reload when it returns', async () => {
  await player.evaluate(() => {
    (window as Window & { samePage?: boolean }).samePage = true;
  });
  await stop(publisher);
  const waiting = await waitFor(
    'the waiting-for-publisher state',
    async () => {
      const v = await view(player);
      return v.state === 'waiting-for-publisher' ? v : null;
    },
    10_000,
  );
  assert.match(waiting!.stateText, /waiting for publisher/);

  publisher = publish();
  const stats = await assertPlaying(player, 'after republish');
  assert.equal(await player.evaluate(() => (window as Window & { samePage?: boolean }).samePage), true);
  assert.equal(stats.transport, 'mse');
});
