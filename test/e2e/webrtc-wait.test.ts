/**
 * WHEP viewers that come before the publisher (`webrtc.whepWaitForPublisherMs`), in headless Chromium: the
 * viewer's POST on a path nobody publishes to is answered, it stays connected, and it plays once a canvas
 * publisher goes live over WHIP; when that publisher leaves, the same viewer waits again and plays the next
 * publisher, an ffmpeg RTMP stream on the same path. A waiting viewer whose codec the stream does not have is
 * closed with the reason; one nobody publishes for is freed when the wait ends.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { type RunningServer, startServer } from '../../src/server.ts';
import { type ChromiumSession, closeServerThenBrowser, launchChromium } from '../helpers/browser.ts';
import { publishTestSource, stop, waitFor } from '../helpers/processes.ts';
import { startWhepViewer, whepStats } from '../helpers/whepPage.ts';
import { publishCanvas } from '../helpers/whipPage.ts';

let server: RunningServer;
let browser: ChromiumSession;

before(async () => {
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { host: '127.0.0.1', port: 0 },
    webrtc: { udpPort: 0, inactivityTimeoutMs: 3000, whepWaitForPublisherMs: 20_000 },
    hls: { enabled: false },
    log: { level: 'warn' },
  });
  browser = await launchChromium();
});

after(() => closeServerThenBrowser(server, browser));

async function assertDecodes(page: Page, what: string): Promise<number> {
  const start = (await whepStats(page)).framesDecoded;
  const reached = await waitFor(
    `${what}: 20 more frames decoded`,
    async () => {
      const now = await whepStats(page);
      return now.framesDecoded - start >= 20 ? now : null;
    },
    15_000,
  );
  return reached!.width;
}

async function sessionOf(id: string) {
  const { sessions } = (await (await fetch(`${server.httpUrl}/api/v1/webrtc/sessions`)).json()) as {
    sessions: { id: string; state: string; waitingForPublisher?: boolean }[];
  };
  return sessions.find((s) => s.id === id);
}

test('a WHEP viewer that comes first plays the WHIP publisher, then the RTMP one that replaces it', async () => {
  const path = 'live/later';
  const viewer = await browser.newPage();
  await viewer.goto(`${server.httpUrl}/healthz`);
  const answered = await startWhepViewer(viewer, `${server.httpUrl}/whep/${path}`);
  assert.equal(answered.status, 201, 'a path nobody publishes to yet is answered');
  const id = server.webrtc!.sessionAt(answered.location)!.id;
  await waitFor('the waiting viewer to connect', async () => (await sessionOf(id))?.state === 'connected');
  assert.equal((await sessionOf(id))?.waitingForPublisher, true);
  // Connected and waiting longer than webrtc.inactivityTimeoutMs, without a packet: still there.
  await new Promise((r) => setTimeout(r, 3500));
  assert.equal((await sessionOf(id))?.state, 'connected');
  assert.equal((await whepStats(viewer)).framesDecoded, 0);

  const publisher = await browser.newPage();
  await publisher.goto(`${server.httpUrl}/healthz`);
  const published = await publishCanvas(publisher, `${server.httpUrl}/whip/${path}`);
  assert.equal(published.status, 201, published.body);
  assert.equal(await assertDecodes(viewer, 'the WHIP publisher'), 640);
  assert.equal((await sessionOf(id))?.waitingForPublisher, false);
  const stream = (await (await fetch(`${server.httpUrl}/api/v1/streams/${path}`)).json()) as {
    viewers: { byProtocol: { whep?: number } };
  };
  assert.equal(stream.viewers.byProtocol.whep, 1, 'the viewer counts on the stream once it plays');

  // The WHIP publisher leaves: the viewer waits, connected, for the next one.
  assert.equal((await fetch(`${server.httpUrl}${published.location}`, { method: 'DELETE' })).status, 200);
  await publisher.close();
  await waitFor('the viewer to wait again', async () => (await sessionOf(id))?.waitingForPublisher === true);
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal((await whepStats(viewer)).connection, 'connected');

  const ffmpeg = publishTestSource(`${server.rtmpUrl}/${path}`, {
    size: '480x270',
    rate: 30,
    gop: 30,
    audio: false,
  });
  try {
    // The same peer connection decodes the new source, whose SSRC, sequence and timestamps are re-based.
    await assertDecodes(viewer, 'the RTMP publisher');
    await waitFor('the new resolution', async () => (await whepStats(viewer)).width === 480, 5000);
    assert.equal((await sessionOf(id))?.waitingForPublisher, false);
  } finally {
    await stop(ffmpeg);
  }
  await viewer.close();
});

test('a waiting viewer answered VP8 is closed, saying why, when the stream goes live with H.264', async () => {
  const path = 'live/other-codec';
  const viewer = await browser.newPage();
  await viewer.goto(`${server.httpUrl}/healthz`);
  const answered = await startWhepViewer(viewer, `${server.httpUrl}/whep/${path}`, { videoCodec: 'VP8' });
  assert.equal(answered.status, 201);
  const session = server.webrtc!.sessions.get(server.webrtc!.sessionAt(answered.location)?.id ?? '');
  assert.ok(session && !session.closed);
  const ffmpeg = publishTestSource(`${server.rtmpUrl}/${path}`, { size: '320x180', audio: false });
  try {
    await waitFor('the mismatched viewer to be closed', () => session.closed, 15_000);
    assert.match(session.closedReason, /the stream's video is H264, this viewer negotiated VP8/);
  } finally {
    await stop(ffmpeg);
  }
  await viewer.close();
});

test('a waiting viewer nobody publishes for is freed when webrtc.whepWaitForPublisherMs ends', async () => {
  const short = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { enabled: false },
    webrtc: { udpPort: 0, whepWaitForPublisherMs: 1500 },
    hls: { enabled: false },
    log: { level: 'silent' },
  });
  // Its own browser, closed before the server: the shared one's keep-alive connections would hold the
  // server's close for its idle timeout.
  const own = await launchChromium();
  try {
    const viewer = await own.newPage();
    await viewer.goto(`${short.httpUrl}/healthz`);
    const answered = await startWhepViewer(viewer, `${short.httpUrl}/whep/live/nobody`);
    assert.equal(answered.status, 201);
    const session = short.webrtc!.sessions.get(short.webrtc!.sessionAt(answered.location)?.id ?? '');
    assert.ok(session, 'the viewer has a session');
    await waitFor('the wait to end', () => session.closed, 5000);
    assert.match(session.closedReason, /no publisher on "live\/nobody" within 1500 ms/);
    assert.equal(short.webrtc?.sessions.size, 0);
  } finally {
    await own.close();
    await short.close();
  }
});
