/**
 * auth.play: token with real players: headless Chromium on the /play page plays over WHEP, WebSocket + MSE
 * and hls.js with `?token=` in the page URL (the player SDK's `token` option), and the same page without a
 * token reports the refusal instead of playing.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { signToken } from '../../src/auth/Tokens.ts';
import { type RunningServer, startServer } from '../../src/server.ts';
import { type ChromiumSession, closeServerThenBrowser, launchChromium } from '../helpers/browser.ts';
import { killAll, publishTestSource, stop, waitFor } from '../helpers/processes.ts';

const SECRET = 'e2e-play-secret';
const STREAM = 'live/private';
let server: RunningServer | undefined;
let publisher: ChildProcess | undefined;
let browser: ChromiumSession | undefined;

before(async () => {
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { host: '127.0.0.1', port: 0 },
    webrtc: { udpPort: 0 },
    hls: { segmentTargetMs: 1000, partTargetMs: 250 },
    log: { level: 'warn' },
    auth: { play: 'token', jwtSecret: SECRET },
  });
  // Opus-free AAC source: WHEP viewers get the Opus rendition the server makes.
  publisher = publishTestSource(`${server.rtmpUrl}/${STREAM}`, {
    size: '640x360',
    rate: 30,
    gop: 30,
    seconds: 300,
  });
  await waitFor('the stream to be live', () => server!.registry.get(STREAM)?.live === true, 15_000);
  browser = await launchChromium();
});

after(async () => {
  await stop(publisher);
  killAll();
  await closeServerThenBrowser(server, browser);
});

const token = () =>
  signToken(SECRET, {
    sub: 'ticket-holder',
    exp: Math.floor(Date.now() / 1000) + 600,
    grants: [{ pattern: 'live/*', actions: ['play'] }],
  });

async function playing(page: Page, transport: string): Promise<void> {
  await waitFor(
    `${transport} to play`,
    () =>
      page.evaluate(() => {
        const video = document.querySelector('video');
        return window.subsecondPlayer?.state === 'playing' && (video?.currentTime ?? 0) > 1;
      }),
    30_000,
  );
  // A slow first frame on a loaded machine is reported (and retried); a refusal is not what happened.
  const errors = await page.evaluate(() => window.subsecondErrors ?? []);
  const refusals = errors.filter((e) => e.fatal || /401|403|token/.test(e.message));
  assert.deepEqual(refusals, [], `${transport}: the token was accepted`);
}

for (const transport of ['webrtc', 'mse', 'hls']) {
  test(`with ?token= the /play page plays over ${transport}; without one it says why`, async () => {
    const page = await browser!.newPage();
    try {
      await page.goto(`${server!.httpUrl}/play/${STREAM}?transport=${transport}&token=${token()}`);
      await playing(page, transport);
    } finally {
      await page.close();
    }
    const refused = await browser!.newPage();
    try {
      await refused.goto(`${server!.httpUrl}/play/${STREAM}?transport=${transport}`);
      const errors = await waitFor(
        `${transport} to report the refusal`,
        async () => {
          const list = await refused.evaluate(() =>
            (window.subsecondErrors ?? []).map((e) => JSON.stringify(e)),
          );
          return list.length > 0 ? list.join('\n') : '';
        },
        20_000,
      );
      assert.match(errors, /401|token/, `${transport}: ${errors}`);
      assert.notEqual(await refused.evaluate(() => window.subsecondPlayer?.state), 'playing');
    } finally {
      await refused.close();
    }
  });
}
