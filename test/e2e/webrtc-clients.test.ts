/**
 * WHIP and WHEP with a client nobody here wrote: medooze's whip-whep (npm `whip-whep`) in headless Chromium.
 * It configures its peer from the ice-server Link headers (RFC 9725 §4.6), trickles candidates with PATCH,
 * and ends a session by closing its peer connection before sending DELETE.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { type RunningServer, startServer } from '../../src/server.ts';
import { type ChromiumSession, closeServerThenBrowser, launchChromium } from '../helpers/browser.ts';
import { waitFor } from '../helpers/processes.ts';

const STREAM = 'live/medooze';
const require = createRequire(import.meta.url);
const WHIP_JS = readFileSync(require.resolve('whip-whep/whip.js'), 'utf8');
const WHEP_JS = readFileSync(require.resolve('whip-whep/whep.js'), 'utf8');

let server: RunningServer;
let browser: ChromiumSession;

before(async () => {
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { enabled: false },
    webrtc: {
      udpPort: 0,
      // Nothing listens there: the peer only has to be configured with both, host candidates connect.
      iceServers: [
        { urls: 'stun:127.0.0.1:3478' },
        { urls: 'turn:127.0.0.1:3479', username: 'user', credential: 'secret' },
      ],
    },
    hls: { enabled: false },
    log: { level: 'warn' },
  });
  browser = await launchChromium();
});

after(() => closeServerThenBrowser(server, browser));

/** A page with medooze's WHIPClient and WHEPClient as `window.WHIPClient` / `window.WHEPClient`. */
async function medoozePage(): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(`${server.httpUrl}/healthz`);
  await page.addScriptTag({
    type: 'module',
    content: `${WHIP_JS}\nwindow.WHIPClient = WHIPClient;`,
  });
  await page.addScriptTag({
    type: 'module',
    content: `${WHEP_JS.replace(/^export class/m, 'class')}\nwindow.WHEPClient = WHEPClient;`,
  });
  await page.waitForFunction(() => 'WHIPClient' in window && 'WHEPClient' in window);
  return page;
}

test('medooze WHIPClient publishes and WHEPClient plays, each configured with every ICE server', async () => {
  const page = await medoozePage();
  const publisherIce = await page.evaluate(async (url) => {
    const canvas = document.createElement('canvas');
    canvas.width = 320;
    canvas.height = 180;
    const g = canvas.getContext('2d')!;
    let n = 0;
    setInterval(() => {
      n += 7;
      g.fillStyle = `hsl(${n % 360} 80% 50%)`;
      g.fillRect(0, 0, 320, 180);
    }, 33);
    const pc = new RTCPeerConnection();
    pc.addTransceiver(canvas.captureStream(30).getVideoTracks()[0], { direction: 'sendonly' });
    const Client = (
      window as unknown as {
        WHIPClient: new () => { publish(pc: RTCPeerConnection, url: string): Promise<void> };
      }
    ).WHIPClient;
    await new Client().publish(pc, url);
    return pc.getConfiguration().iceServers;
  }, `${server.httpUrl}/whip/${STREAM}`);
  assert.deepEqual(
    publisherIce?.map((s) => [[s.urls].flat().join(' '), s.username ?? '', s.credential ?? '']),
    [
      ['stun:127.0.0.1:3478', '', ''],
      ['turn:127.0.0.1:3479', 'user', 'secret'],
    ],
  );
  await waitFor('the medooze publisher to connect', () =>
    server.webrtc?.publishers.some((s) => s.path === STREAM && s.connectedAt),
  );

  const viewer = await page.evaluate(async (url) => {
    const pc = new RTCPeerConnection();
    pc.addTransceiver('video', { direction: 'recvonly' });
    const frames = new Promise<number>((resolve, reject) => {
      pc.ontrack = ({ track }) => {
        const video = document.createElement('video');
        video.muted = true;
        video.srcObject = new MediaStream([track]);
        document.body.append(video);
        void video.play();
        const timer = setTimeout(() => reject(new Error('no frame within 10 s')), 10_000);
        video.requestVideoFrameCallback(() => {
          clearTimeout(timer);
          resolve(video.videoWidth);
        });
      };
    });
    const Client = (
      window as unknown as {
        WHEPClient: new () => { view(pc: RTCPeerConnection, url: string): Promise<void> };
      }
    ).WHEPClient;
    const client = new Client();
    (window as unknown as { whep: unknown }).whep = client;
    await client.view(pc, url);
    return { width: await frames, iceServers: pc.getConfiguration().iceServers?.length ?? 0 };
  }, `${server.httpUrl}/whep/${STREAM}`);
  assert.equal(viewer.width, 320, 'the viewer decodes the publisher canvas');
  assert.equal(viewer.iceServers, 2, 'the WHEP client is configured with both ICE servers');

  // stop() closes the peer, then sends DELETE; over a real network the server has freed the session on "peer
  // closed" before that DELETE arrives. Here the peer is closed first and the DELETE sent once it is freed.
  await page.evaluate(() => (window as unknown as { whep: { pc: RTCPeerConnection } }).whep.pc.close());
  await waitFor('the server to free the viewer on peer closed', () => server.webrtc!.viewers.length === 0);
  const deleted = page.waitForResponse(
    (r) => r.request().method() === 'DELETE' && /\/whep\/resource\//.test(r.url()),
  );
  await page.evaluate(() => (window as unknown as { whep: { stop(): Promise<void> } }).whep.stop());
  assert.equal((await deleted).status(), 200, 'DELETE of a session that just ended is answered 200');
  await page.close();
});

test('a DELETE for a session id that never existed is still 404', async () => {
  const response = await fetch(`${server.httpUrl}/whep/resource/00000000-0000-0000-0000-000000000000`, {
    method: 'DELETE',
  });
  assert.equal(response.status, 404);
});
