/**
 * End to end in headless Chromium: one page publishes a canvas and an oscillator over WHIP, another plays
 * the stream over WHEP; frames decode and audio arrives, and DELETE on the WHEP resource frees the viewer
 * (seen through the control API).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { type RunningServer, startServer } from '../../src/server.ts';
import { type ChromiumSession, closeServerThenBrowser, launchChromium } from '../helpers/browser.ts';
import { publishTestSource, stop, waitFor } from '../helpers/processes.ts';
import { playWhep, whepStatsOver } from '../helpers/whepPage.ts';
import { publishCanvas } from '../helpers/whipPage.ts';

const STREAM = 'live/webrtc1';

let server: RunningServer;
let browser: ChromiumSession;
let publisherPage: Page;

before(async () => {
  // The server lists web/dist when it starts, so the bundle must exist first (the MSE test uses the player).
  execFileSync(process.execPath, [join(import.meta.dirname, '../../scripts/build-client.ts')], {
    stdio: 'inherit',
  });
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { host: '127.0.0.1', port: 0 },
    webrtc: { udpPort: 0, inactivityTimeoutMs: 2000 },
    // LL-HLS packages every stream from its publish on (a frame consumer from the start), which would hide
    // whether WHIP RTP is depacketized only on demand; these tests need no HLS.
    hls: { enabled: false },
    log: { level: 'warn' },
  });
  browser = await launchChromium();
});

after(() => closeServerThenBrowser(server, browser));

/** Whether this process has an ffmpeg child encoding Opus (the AAC→Opus transcoder). */
function transcoderRunning(): boolean {
  try {
    execFileSync('pgrep', ['-P', String(process.pid), '-f', 'libopus']);
    return true;
  } catch {
    return false;
  }
}

/** Over 2 s: rendered and decoded frames grow, audio packets arrive on the one audio track, size is right. */
async function assertPlays(page: Page, width: number): Promise<void> {
  const { first, second } = await whepStatsOver(page, 2000);
  assert.ok(
    second.framesRendered - first.framesRendered > 20,
    `frames rendered grow: ${first.framesRendered} -> ${second.framesRendered}`,
  );
  assert.ok(
    second.framesDecoded - first.framesDecoded > 20,
    `frames decoded grow: ${first.framesDecoded} -> ${second.framesDecoded}`,
  );
  assert.equal(second.audioTracks, 1, 'an audio track is present');
  assert.ok(
    second.audioPackets - first.audioPackets > 50,
    `audio packets flow: ${first.audioPackets} -> ${second.audioPackets}`,
  );
  assert.equal(second.width, width);
}

test('canvas + oscillator over WHIP plays in another page over WHEP; DELETE frees the viewer', async () => {
  publisherPage = await browser.newPage();
  await publisherPage.goto(`${server.httpUrl}/healthz`);
  const published = await publishCanvas(publisherPage, `${server.httpUrl}/whip/${STREAM}`, { audio: true });
  assert.equal(published.status, 201);
  assert.match(published.location, /^\/whip\/resource\/[A-Za-z0-9_-]{43}$/);
  assert.match(published.etag, /^"[0-9a-f]+"$/);
  await waitFor(
    'the WHIP publisher to connect',
    () => server.webrtc?.publishers.find((s) => s.path === STREAM)?.connectedAt,
    10_000,
  );
  const described = (await (await fetch(`${server.httpUrl}/api/v1/streams/${STREAM}`)).json()) as {
    publisher: { protocol: string };
  };
  assert.equal(described.publisher.protocol, 'whip');

  const viewer = await browser.newPage();
  await viewer.goto(`${server.httpUrl}/healthz`);
  const played = await playWhep(viewer, `${server.httpUrl}/whep/${STREAM}`);
  console.log(`WHEP offer to first rendered frame (WHIP source): ${Math.round(played.firstFrameMs)} ms`);
  await assertPlays(viewer, 640);

  // A second viewer joins the same stream: both play (each with its own rewrite of the shared packets).
  const second = await browser.newPage();
  await second.goto(`${server.httpUrl}/healthz`);
  await playWhep(second, `${server.httpUrl}/whep/${STREAM}`);
  await Promise.all([assertPlays(viewer, 640), assertPlays(second, 640)]);
  await second.close();
  await waitFor('the second viewer to be freed', () => server.webrtc?.viewers.length === 1, 15_000);

  const viewers = async () =>
    (
      (await (await fetch(`${server.httpUrl}/api/v1/streams/${STREAM}`)).json()) as {
        viewers: { byProtocol: { whep?: number } };
      }
    ).viewers.byProtocol.whep ?? 0;
  assert.equal(await viewers(), 1);
  const { location } = played;
  const sessions = async () =>
    (
      (await (await fetch(`${server.httpUrl}/api/v1/webrtc/sessions`)).json()) as {
        sessions: { id: string }[];
      }
    ).sessions.map((s) => s.id);
  const viewerId = server.webrtc!.sessionAt(location)!.id;
  assert.ok((await sessions()).includes(viewerId));
  const deleted = await fetch(`${server.httpUrl}${location}`, { method: 'DELETE' });
  assert.equal(deleted.status, 200);
  assert.equal(await viewers(), 0);
  assert.ok(!(await sessions()).includes(viewerId), 'the session is gone from the list');
  // A DELETE repeated within the minute after the end is idempotent (200), as for clients that close first.
  assert.equal((await fetch(`${server.httpUrl}${location}`, { method: 'DELETE' })).status, 200);
  await viewer.close();

  // The publisher's DELETE ends the stream.
  assert.equal((await fetch(`${server.httpUrl}${published.location}`, { method: 'DELETE' })).status, 200);
  assert.equal((await fetch(`${server.httpUrl}/api/v1/streams/${STREAM}`)).status, 404);
  // The pages sit on /healthz, whose favicon request 404s; anything else is a real problem.
  assert.deepEqual(
    browser.problems.filter((p) => !p.includes('Failed to load resource')),
    [],
  );
});

test('ffmpeg RTMP (H.264 + AAC) plays over WHEP with Opus audio from the transcoder', async () => {
  const path = 'live/rtmp-to-whep';
  const ffmpeg = publishTestSource(`${server.rtmpUrl}/${path}`, { size: '640x360', rate: 30, gop: 30 });
  try {
    await waitFor(`${path} to be ready`, () => server.registry.get(path)?.ready);
    const viewer = await browser.newPage();
    await viewer.goto(`${server.httpUrl}/healthz`);
    const { firstFrameMs } = await playWhep(viewer, `${server.httpUrl}/whep/${path}`);
    console.log(`WHEP offer to first rendered frame (RTMP source, GOP 1 s): ${Math.round(firstFrameMs)} ms`);
    await assertPlays(viewer, 640);
    const stream = (await (await fetch(`${server.httpUrl}/api/v1/streams/${path}`)).json()) as {
      warnings: string[];
      viewers: { byProtocol: { whep?: number } };
    };
    assert.deepEqual(stream.warnings, []);
    assert.equal(stream.viewers.byProtocol.whep, 1);
    assert.ok(transcoderRunning(), 'an ffmpeg Opus transcoder runs while the viewer watches');
    await viewer.close();
    // The tab closed without a DELETE: the viewer's receiver reports stop, the session ends, and the
    // transcoder, whose last viewer it was, stops with it.
    await waitFor('the viewer session to end', () => server.webrtc?.viewers.length === 0, 10_000);
    await waitFor('the Opus transcoder to stop', () => !transcoderRunning(), 5000);
  } finally {
    await stop(ffmpeg);
  }
});

test('a WHIP stream plays over WS+MSE: RTP becomes frames once a frame consumer attaches', async () => {
  const path = 'live/whip-to-mse';
  const page = await browser.newPage();
  await page.goto(`${server.httpUrl}/healthz`);
  const published = await publishCanvas(page, `${server.httpUrl}/whip/${path}`, { audio: true });
  assert.equal(published.status, 201);
  await waitFor(
    'the publisher to connect',
    () => server.webrtc?.publishers.find((s) => s.path === path)?.connectedAt,
  );
  const stream = server.registry.get(path)!;
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(stream.framesIn, 0, 'no frame is assembled while nobody consumes frames');

  const player = await browser.newPage();
  await player.goto(`${server.httpUrl}/play/${path}?transport=mse`);
  await waitFor(
    'the MSE player to play',
    () => player.evaluate(() => window.subsecondPlayer?.state === 'playing'),
    15_000,
  );
  const stats = () => player.evaluate(() => window.subsecondPlayer!.stats());
  // Let the live-edge controller settle on the jittery arrival first.
  await new Promise((r) => setTimeout(r, 1500));
  // Count the video frames assembled from RTP in the same window as the player's decoder counts.
  let assembled = 0;
  const detachCounter = stream.addConsumer({
    onTracks() {},
    onFrame(frame) {
      if (frame.trackId === stream.videoTrack?.id) assembled++;
    },
    onUnpublish() {},
  });
  assembled = 0; // not the GOP cache replayed at attach
  const before = await stats();
  await new Promise((r) => setTimeout(r, 2000));
  const after = await stats();
  detachCounter();
  // The canvas publisher makes up to 30 fps; headless Chromium on a loaded 2-core machine presents fewer, so
  // the bar is a steady flow (7.5 fps decoded) and a playhead that keeps real time.
  const decoded = after.decodedFrames - before.decodedFrames;
  const dropped = after.droppedFrames - before.droppedFrames;
  console.log(
    `WHIP -> WS+MSE over 2 s: ${assembled} frames assembled, ${decoded} decoded, ${dropped} dropped as late`,
  );
  assert.ok(assembled >= 15, `${assembled} video frames assembled from RTP in 2 s`);
  assert.ok(decoded >= 15, `decoded ${decoded} of ${assembled}`);
  assert.ok(
    after.currentTime - before.currentTime > 1.5,
    `playhead ${before.currentTime} -> ${after.currentTime}`,
  );
  assert.match(after.codecs, /avc1\.[0-9a-f]{6}/);
  assert.match(after.codecs, /opus/);
  assert.equal(after.width, 640);
  console.log(`WHIP -> WS+MSE: latency ${after.latency.toFixed(3)} s, codecs ${after.codecs}`);
  await player.close();
  await fetch(`${server.httpUrl}${published.location}`, { method: 'DELETE' });
  await page.close();
});

test('the publish page (test pattern) feeds the play page, which picks WebRTC and shows its stats', async () => {
  const path = 'live/pages';
  const publish = await browser.newPage();
  await publish.goto(`${server.httpUrl}/publish/${path}?source=canvas&autostart=1`);
  await waitFor(
    'the publish page to go live',
    () => publish.evaluate(() => window.subsecondPublisher?.state === 'live'),
    15_000,
  );
  const play = await browser.newPage();
  await play.goto(`${server.httpUrl}/play/${path}`);
  await waitFor(
    'the player to play',
    () => play.evaluate(() => window.subsecondPlayer?.state === 'playing'),
    15_000,
  );
  const stats = () => play.evaluate(() => window.subsecondPlayer!.stats());
  const first = await stats();
  assert.equal(first.transport, 'webrtc', 'auto picks WebRTC first');
  await new Promise((r) => setTimeout(r, 2500));
  const second = await stats();
  assert.ok(
    second.decodedFrames - first.decodedFrames >= 15,
    `decoded ${first.decodedFrames} -> ${second.decodedFrames}`,
  );
  // 1280×720 published; the browser's encoder may scale it down under load, keeping the aspect.
  assert.ok(
    second.width > 0 && Math.abs(second.width / second.height - 16 / 9) < 0.05,
    `${second.width}×${second.height}`,
  );
  assert.match(second.codecs, /H264/);
  assert.match(second.codecs, /opus/);
  assert.ok(second.webrtc, 'WebRTC stats are reported');
  assert.ok(second.bitrate > 0 && second.webrtc.jitterBufferMs > 0, JSON.stringify(second));
  // One machine, one clock: the canvas publisher's sender reports, relayed in ours (with the RRTR/DLRR round
  // trip a receive-only browser needs to use them), give the path from capture to playout once the browser
  // has both a round trip and a sender report.
  const estimated = await waitFor(
    'an estimate from the sender reports',
    async () => {
      const s = await stats();
      return s.webrtc?.senderToPlayoutMs != null ? s : null;
    },
    10_000,
  );
  assert.ok(estimated?.webrtc);
  const playout = estimated.webrtc.senderToPlayoutMs!;
  // The path includes the jitter buffer; the estimate is one instant in whole milliseconds and the jitter
  // buffer a running average, so they are compared with room (one failure read 74 ms against 74.9988 ms).
  assert.ok(
    playout >= 0.75 * estimated.webrtc.jitterBufferMs && playout < 1000,
    `source → playout ${playout} ms, jitter buffer ${estimated.webrtc.jitterBufferMs} ms`,
  );
  assert.equal(estimated.latency, playout / 1000, 'the latency estimate comes from the sender reports');
  console.log(`source → playout over WHIP → WHEP: ${playout} ms`);
  console.log(
    `play page over WebRTC: ${JSON.stringify(second.webrtc)}, latency ${second.latency.toFixed(3)} s`,
  );
  const published = await publish.evaluate(() => window.subsecondPublisher!.stats());
  assert.equal(published.state, 'live');
  assert.ok(published.bitrate > 0, `publisher bitrate ${published.bitrate}`);
  assert.match(published.videoCodec, /H264/i);
  assert.deepEqual(await play.evaluate(() => window.subsecondErrors ?? []), []);

  // Stop on the publish page: the WHIP session is deleted, the stream ends, the player leaves 'playing'.
  await publish.click('#stop');
  await waitFor('the stream to end', () => !server.registry.get(path)?.live, 5000);
  await waitFor(
    'the player to notice',
    () => play.evaluate(() => window.subsecondPlayer?.state !== 'playing'),
    10_000,
  );
  await play.close();
  await publish.close();
});

test('auto falls back to WS+MSE when the server has no WHEP endpoint', async () => {
  const plain = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { host: '127.0.0.1', port: 0 },
    webrtc: { enabled: false },
    log: { level: 'warn' },
  });
  const ffmpeg = publishTestSource(`${plain.rtmpUrl}/live/fallback`, { size: '640x360', rate: 30, gop: 30 });
  try {
    await waitFor('live/fallback to be ready', () => plain.registry.get('live/fallback')?.ready);
    const play = await browser.newPage();
    await play.goto(`${plain.httpUrl}/play/live/fallback`);
    await waitFor(
      'the player to play',
      () => play.evaluate(() => window.subsecondPlayer?.state === 'playing'),
      15_000,
    );
    const stats = await play.evaluate(() => window.subsecondPlayer!.stats());
    assert.equal(stats.transport, 'mse');
    const errors = await play.evaluate(() =>
      (window.subsecondErrors ?? []).map((e) => `${e.transport}: ${e.message}`),
    );
    assert.ok(
      errors.some((e) => /^webrtc: WHEP refused \(404\): no route for POST \/whep\/live\/fallback/.test(e)),
      errors.join('; '),
    );
    await play.close();
  } finally {
    await stop(ffmpeg);
    await plain.close();
  }
});
