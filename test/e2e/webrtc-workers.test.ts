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
import { playWhep, whepStatsOver } from '../helpers/whepPage.ts';

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

/** Over 2 s, the page decodes video frames and receives audio packets. */
async function assertPlays(page: Page, what: string): Promise<void> {
  const { first, second } = await whepStatsOver(page, 2000);
  const counts = [first, second].map(({ framesDecoded, audioPackets }) => ({ framesDecoded, audioPackets }));
  assert.ok(second.framesDecoded - first.framesDecoded > 20, `${what} decodes: ${JSON.stringify(counts)}`);
  assert.ok(second.audioPackets - first.audioPackets > 50, `${what} gets Opus: ${JSON.stringify(counts)}`);
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
    locations.push((await playWhep(page, `${server.httpUrl}/whep/${STREAM}`)).location);
  }
  await Promise.all(pages.map((p, i) => assertPlays(p, `page ${i}`)));
  const ids = locations.map((l) => server.webrtc?.sessionAt(l)?.id ?? '');
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
