/**
 * The custom elements on a page of another origin, as a web developer embeds them: a second loopback HTTP
 * server (another port, so another origin) serves only an HTML page that loads the SDK from the Subsecond
 * server and holds `<subsecond-player>`. ffmpeg publishes over RTMP; Chromium plays over WebRTC (WHEP), and
 * falls back to WebSocket + MSE when the page has no RTCPeerConnection. `<subsecond-publisher>` publishes its
 * test pattern from that origin over WHIP.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { type RunningServer, startServer } from '../../src/server.ts';
import { type ChromiumSession, closeServerThenBrowser, launchChromium } from '../helpers/browser.ts';
import { publishTestSource, waitFor } from '../helpers/processes.ts';

const STREAM = 'live/embed1';
let server: RunningServer;
let browser: ChromiumSession;
let site: Server;
let siteOrigin: string;
/** The embedding page's HTML, set by each test before it loads `${siteOrigin}/`. */
let pageHtml = '';

before(async () => {
  execFileSync(process.execPath, [join(import.meta.dirname, '../../scripts/build-client.ts')], {
    stdio: 'inherit',
  });
  site = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(pageHtml);
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  siteOrigin = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
  server = await startServer({
    // Only the embedding site's origin may call the media endpoints and load the SDK from this server.
    http: { host: '127.0.0.1', port: 0, corsOrigin: siteOrigin },
    rtmp: { host: '127.0.0.1', port: 0 },
    webrtc: { udpPort: 0 },
    hls: { enabled: false },
    log: { level: 'warn' },
  });
  publishTestSource(`${server.rtmpUrl}/${STREAM}`, { size: '640x360', rate: 30, gop: 30, seconds: 120 });
  await waitFor('the RTMP stream', () => server.registry.get(STREAM)?.live);
  browser = await launchChromium();
});

after(async () => {
  await closeServerThenBrowser(server, browser);
  await new Promise((resolve) => site.close(resolve));
});

function embedPage(element: string): string {
  return `<!doctype html><html><body>
<script type="module" src="${server.httpUrl}/static/subsecond.js"></script>
${element}
</body></html>`;
}

interface ElementView {
  state: string | undefined;
  transport: string | null | undefined;
  decodedFrames: number;
  currentTime: number;
  errors: string[];
  statsShown: string;
}

function viewPlayer(page: Page): Promise<ElementView> {
  return page.evaluate(() => {
    const element = document.querySelector('subsecond-player');
    const w = window as unknown as { embedErrors?: string[] };
    const stats = element?.getStats();
    return {
      state: element?.player?.state,
      transport: element?.player?.transport,
      decodedFrames: stats?.decodedFrames ?? 0,
      currentTime: element?.video.currentTime ?? 0,
      errors: w.embedErrors ?? [],
      statsShown: element?.shadowRoot?.querySelector('[data-stat="transport"]')?.textContent ?? '',
    };
  });
}

async function openEmbed(html: string, init?: () => void): Promise<Page> {
  pageHtml = html;
  const page = await browser.newPage();
  if (init) await page.addInitScript(init);
  await page.addInitScript(() => {
    const w = window as unknown as { embedErrors: string[] };
    w.embedErrors = [];
    document.addEventListener(
      'error',
      (event) => {
        const detail = (event as unknown as CustomEvent<{ message: string }>).detail;
        if (detail?.message) w.embedErrors.push(detail.message);
      },
      true,
    );
  });
  await page.goto(`${siteOrigin}/`);
  return page;
}

async function assertPlays(page: Page, transport: string): Promise<ElementView> {
  const first = await waitFor(
    `the element to play over ${transport}`,
    async () => {
      const v = await viewPlayer(page);
      return v.state === 'playing' && v.decodedFrames > 10 ? v : undefined;
    },
    30_000,
  );
  assert.ok(first);
  assert.equal(first.transport, transport);
  await new Promise((r) => setTimeout(r, 1500));
  const later = await viewPlayer(page);
  assert.ok(
    later.decodedFrames > first.decodedFrames,
    `frames advance: ${first.decodedFrames} → ${later.decodedFrames}`,
  );
  assert.ok(later.currentTime > first.currentTime, 'the playhead advances');
  return later;
}

test('<subsecond-player> on another origin plays over WebRTC, with stats shown by attribute', async () => {
  const page = await openEmbed(
    embedPage(`<subsecond-player src="${server.httpUrl}/${STREAM}" muted stats></subsecond-player>`),
  );
  try {
    const view = await assertPlays(page, 'webrtc');
    assert.equal(view.statsShown, 'webrtc');
    assert.equal(new URL(page.url()).origin, siteOrigin);
    assert.notEqual(siteOrigin, server.httpUrl);
  } finally {
    await page.close();
  }
});

test('<subsecond-player> falls back to WebSocket + MSE when the page has no WebRTC', async () => {
  const page = await openEmbed(
    embedPage(
      `<subsecond-player src="${server.httpUrl}/${STREAM}" transport="webrtc mse" muted></subsecond-player>`,
    ),
    () => {
      // A browser (or an extension, or a policy) without WebRTC.
      delete (window as { RTCPeerConnection?: unknown }).RTCPeerConnection;
      // Counts the sockets the page opens: the element upgraded after its markup must start one player.
      const w = window as unknown as { socketsOpened: number };
      w.socketsOpened = 0;
      const Native = window.WebSocket;
      window.WebSocket = class extends Native {
        constructor(...args: ConstructorParameters<typeof WebSocket>) {
          super(...args);
          w.socketsOpened++;
        }
      };
    },
  );
  try {
    await assertPlays(page, 'mse');
    const opened = await page.evaluate(() => (window as unknown as { socketsOpened: number }).socketsOpened);
    assert.equal(opened, 1, 'one player, one WebSocket: the upgrade does not start a player per attribute');
  } finally {
    await page.close();
  }
});

test('an origin http.corsOrigin does not name cannot load the SDK from the server', async () => {
  pageHtml = embedPage(`<subsecond-player src="${server.httpUrl}/${STREAM}" muted></subsecond-player>`);
  const page = await browser.newPage();
  try {
    // The same page from a third origin (localhost is another origin than 127.0.0.1).
    await page.goto(siteOrigin.replace('127.0.0.1', 'localhost'));
    await new Promise((r) => setTimeout(r, 1500));
    const defined = await page.evaluate(() => customElements.get('subsecond-player') !== undefined);
    assert.equal(defined, false, 'the module script is refused by CORS');
  } finally {
    await page.close();
  }
});

test('<subsecond-publisher> on another origin publishes its test pattern over WHIP', async () => {
  const path = 'live/embed-pub';
  const page = await openEmbed(
    embedPage(
      `<subsecond-publisher src="${server.httpUrl}/${path}" source="test-pattern" autostart></subsecond-publisher>`,
    ),
  );
  try {
    await waitFor('the element to go live', async () =>
      page.evaluate(() => document.querySelector('subsecond-publisher')?.publisher?.state === 'live'),
    );
    await waitFor('the server to see the WHIP stream', () => server.registry.get(path)?.live, 15_000);
    const errors = await page.evaluate(() => (window as unknown as { embedErrors: string[] }).embedErrors);
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});
