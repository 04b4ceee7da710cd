/**
 * End to end in headless Chromium with `webrtc.workers: 2`: ffmpeg publishes H.264 + AAC over RTMP, two pages
 * play over WHEP, land on different worker processes and both decode video and receive the Opus rendition
 * (made once in the main process, forwarded to each worker once); DELETE frees the session in its worker, as
 * the sessions API shows; killing a worker leaves the server and the other page playing.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { type RunningServer, startServer } from '../../src/server.ts';
import { type ChromiumSession, launchChromium } from '../helpers/browser.ts';
import { killAll, publishTestSource, stop, waitFor } from '../helpers/processes.ts';

const STREAM = 'live/workers-e2e';

let server: RunningServer;
let browser: ChromiumSession;
let ffmpeg: ChildProcess;

before(async () => {
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { host: '127.0.0.1', port: 0 },
    webrtc: { udpPort: 0, workers: 2 },
    hls: { enabled: false },
    log: { level: 'warn' },
  });
  ffmpeg = publishTestSource(`${server.rtmpUrl}/${STREAM}`, {
    size: '640x360',
    rate: 30,
    gop: 30,
    seconds: 90,
  });
  await waitFor(`${STREAM} to be ready`, () => server.registry.get(STREAM)?.ready);
  browser = await launchChromium();
});

after(async () => {
  await stop(ffmpeg);
  killAll();
  await browser?.close();
  await server?.close();
});

/** Runs in the page: a recvonly video + audio WHEP viewer into a <video>; resolves once a frame rendered. */
function playWhep(page: Page, whepUrl: string): Promise<string> {
  return page.evaluate(async (url) => {
    const state = window as unknown as { pc: RTCPeerConnection };
    const video = document.createElement('video');
    video.muted = true;
    video.autoplay = true;
    document.body.append(video);
    const pc = new RTCPeerConnection();
    state.pc = pc;
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    const stream = new MediaStream();
    pc.ontrack = (event) => {
      stream.addTrack(event.track);
      video.srcObject = stream;
    };
    await pc.setLocalDescription(await pc.createOffer());
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp' },
      body: pc.localDescription!.sdp,
    });
    if (response.status !== 201)
      throw new Error(`WHEP answered ${response.status}: ${await response.text()}`);
    const location = response.headers.get('location') ?? '';
    await pc.setRemoteDescription({ type: 'answer', sdp: await response.text() });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no video frame within 10 s')), 10_000);
      video.requestVideoFrameCallback(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    return location;
  }, whepUrl);
}

async function received(page: Page): Promise<{ framesDecoded: number; audioPackets: number }> {
  return page.evaluate(async () => {
    const stats = await (window as unknown as { pc: RTCPeerConnection }).pc.getStats();
    let framesDecoded = 0;
    let audioPackets = 0;
    for (const r of stats.values()) {
      if (r.type === 'inbound-rtp' && r.kind === 'video') framesDecoded = r.framesDecoded;
      if (r.type === 'inbound-rtp' && r.kind === 'audio') audioPackets = r.packetsReceived;
    }
    return { framesDecoded, audioPackets };
  });
}

/** Over 2 s, the page decodes video frames and receives audio packets. */
async function assertPlays(page: Page, what: string): Promise<void> {
  const first = await received(page);
  await new Promise((r) => setTimeout(r, 2000));
  const second = await received(page);
  assert.ok(
    second.framesDecoded - first.framesDecoded > 20,
    `${what} decodes: ${JSON.stringify([first, second])}`,
  );
  assert.ok(
    second.audioPackets - first.audioPackets > 50,
    `${what} gets Opus: ${JSON.stringify([first, second])}`,
  );
}

async function workerOf(id: string): Promise<number | undefined> {
  const { sessions } = (await (await fetch(`${server.httpUrl}/api/v1/webrtc/sessions`)).json()) as {
    sessions: { id: string; worker?: number }[];
  };
  return sessions.find((s) => s.id === id)?.worker ?? (sessions.some((s) => s.id === id) ? -1 : undefined);
}

test('two Chromium WHEP viewers play from two worker processes; DELETE and a killed worker are survived', async () => {
  const pages = [await browser.newPage(), await browser.newPage()];
  const locations: string[] = [];
  for (const page of pages) {
    await page.goto(`${server.httpUrl}/healthz`);
    locations.push(await playWhep(page, `${server.httpUrl}/whep/${STREAM}`));
  }
  await Promise.all(pages.map((p, i) => assertPlays(p, `page ${i}`)));
  const ids = locations.map((l) => l.split('/').pop() ?? '');
  const workers = await Promise.all(ids.map(workerOf));
  assert.deepEqual([...workers].sort(), [0, 1], `one page per worker: ${workers}`);
  assert.equal(server.webrtc?.viewers.length, 0, 'nothing served in the main process');

  // DELETE frees the first page's session in its worker (the list comes from the workers themselves).
  assert.equal((await fetch(`${server.httpUrl}${locations[0]}`, { method: 'DELETE' })).status, 200);
  assert.equal(await workerOf(ids[0]), undefined, 'the deleted session is gone');
  await pages[0].close();

  // Killing the worker of the deleted page (test/integration/webrtc-workers.test.ts kills one with viewers):
  // the server answers, the worker comes back, and the page on the other worker keeps playing.
  const survivorWorker = workers[1] as number;
  const victimIndex = 1 - survivorWorker;
  const victim = (await server.webrtc!.workers!.stats()).find((s) => s.index === victimIndex);
  assert.ok(victim);
  process.kill(victim.pid, 'SIGKILL');
  await waitFor('the worker restart', () => {
    const c = server.webrtc?.workers?.counters()[victimIndex];
    return c?.restarts === 1 && c.ready;
  });
  assert.equal((await fetch(`${server.httpUrl}/healthz`)).status, 200);
  await assertPlays(pages[1], 'the page on the surviving worker');
  assert.deepEqual(
    browser.problems.filter((p) => !p.includes('Failed to load resource')),
    [],
  );
});
