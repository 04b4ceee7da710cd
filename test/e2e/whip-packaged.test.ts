/**
 * A browser WHIP publisher watched over what is packaged from frames: LL-HLS (hls.js), LL-DASH (dash.js) and
 * WebSocket + MSE. A browser sends a keyframe only when asked, so the server asks on the segment cadence while
 * frames are consumed: segments close on time, and a WS+MSE joiner starts at the live edge instead of being
 * replayed everything since the stream began.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { WebSocket } from 'ws';
import type { PlayerStats } from '../../client/player/index.ts';
import { type RunningServer, startServer } from '../../src/server.ts';
import { type ChromiumSession, closeServerThenBrowser, launchChromium } from '../helpers/browser.ts';
import { waitFor } from '../helpers/processes.ts';
import { publishCanvas } from '../helpers/whipPage.ts';

const STREAM = 'live/whip-packaged';
const SEGMENT_TARGET_S = 2;

let server: RunningServer;
let browser: ChromiumSession;

before(async () => {
  execFileSync(process.execPath, [join(import.meta.dirname, '../../scripts/build-client.ts')], {
    stdio: 'inherit',
  });
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { enabled: false },
    webrtc: { udpPort: 0 },
    hls: { segmentTargetMs: SEGMENT_TARGET_S * 1000 },
    log: { level: 'warn' },
  });
  browser = await launchChromium({ args: ['--use-fake-device-for-media-stream'] });
  const publisher = await browser.newPage();
  await publisher.goto(`${server.httpUrl}/healthz`);
  const published = await publishCanvas(publisher, `${server.httpUrl}/whip/${STREAM}`, {
    audio: true,
    camera: true,
  });
  assert.equal(published.status, 201, published.body);
});

after(() => closeServerThenBrowser(server, browser));

test('LL-HLS segments of a WHIP stream close on the segment cadence', async () => {
  const packager = () => server.hls?.packagers.get(STREAM);
  await waitFor('five complete segments', () => (packager()?.segments.length ?? 0) >= 5, 30_000);
  const durations = packager()!.segments.map((s) => s.duration);
  // The keyframe asked for at the target lands a frame or a round trip later, or up to webrtc.keyframeIntervalMs
  // (500 ms) later when another request was just sent (a browser's skipped frames ask for keyframes too).
  for (const d of durations) {
    assert.ok(d >= SEGMENT_TARGET_S - 0.01 && d < SEGMENT_TARGET_S + 1, `segment durations ${durations}`);
  }
});

async function stats(page: Page): Promise<PlayerStats | undefined> {
  return page.evaluate(() => window.subsecondPlayer?.stats());
}

/** The player page on `transport`: the playhead advances over 3 s, close to the live edge. */
async function assertPlays(transport: string, maxLatency: number): Promise<void> {
  const page = await browser.newPage();
  await page.goto(`${server.httpUrl}/play/${STREAM}?transport=${transport}`);
  await waitFor(
    `${transport}: playing`,
    () => page.evaluate(() => window.subsecondPlayer?.state === 'playing'),
    20_000,
  );
  const s0 = (await stats(page))!;
  await page.waitForTimeout(3000);
  const s1 = (await stats(page))!;
  assert.equal(s1.transport, transport);
  assert.ok(
    s1.currentTime - s0.currentTime > 2,
    `${transport}: currentTime ${s0.currentTime} → ${s1.currentTime}`,
  );
  assert.ok(
    s1.decodedFrames - s0.decodedFrames >= 45,
    `${transport}: decoded ${s1.decodedFrames - s0.decodedFrames}`,
  );
  assert.ok(s1.latency > 0 && s1.latency < maxLatency, `${transport}: latency ${s1.latency} s`);
  await page.close();
}

test('hls.js plays the WHIP stream over LL-HLS', () => assertPlays('hls', 3));

test('dash.js plays the WHIP stream over LL-DASH', () => assertPlays('dash', 3));

/** The ISO BMFF boxes of type `type` at the top level of one message. */
function countBoxes(bytes: Buffer, type: string): number {
  let n = 0;
  for (let at = 0; at + 8 <= bytes.length; ) {
    const size = bytes.readUInt32BE(at);
    if (size < 8) break;
    if (bytes.toString('latin1', at + 4, at + 8) === type) n++;
    at += size;
  }
  return n;
}

test('a WS+MSE joiner of a long-running WHIP stream gets at most one segment target of replay', async () => {
  await waitFor(
    'the stream to run past three segment targets',
    () => (server.hls?.packagers.get(STREAM)?.segments.length ?? 0) >= 3,
  );
  const socket = new WebSocket(`${server.httpUrl.replace(/^http/, 'ws')}/mse/${STREAM}`);
  const opened = performance.now();
  const arrivals: number[] = [];
  socket.on('message', (data: Buffer, binary: boolean) => {
    if (!binary) return;
    const fragments = countBoxes(data, 'moof');
    for (let i = 0; i < fragments; i++) arrivals.push(performance.now() - opened);
  });
  await new Promise((r) => setTimeout(r, 1500));
  socket.close();
  assert.ok(arrivals.length > 0, 'fragments arrive');
  assert.ok(arrivals[0] < 1000, `the first fragment ${Math.round(arrivals[0])} ms after connecting`);
  // The replay comes at once: what arrived within 200 ms of the first fragment. Video at 30 fps and Opus at 50
  // packets a second are 80 fragments a second of media; one segment target of GOP and some slack is < 240.
  const burst = arrivals.filter((t) => t - arrivals[0] < 200).length;
  assert.ok(burst < 240, `${burst} fragments replayed at once`);
});
