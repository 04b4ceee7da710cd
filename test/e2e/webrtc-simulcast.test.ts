/**
 * Simulcast over WHIP (RFC 8853) from headless Chromium: a canvas published with three encodings (rid h, m, l
 * at full, half and quarter size). The answer accepts all three; the API records every layer with its SSRC
 * and packet count; WHEP viewers get the highest layer only (full size, one SSRC, decodes).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type RunningServer, startServer } from '../../src/server.ts';
import { type ChromiumSession, closeServerThenBrowser, launchChromium } from '../helpers/browser.ts';
import { waitFor } from '../helpers/processes.ts';
import { playWhep, whepStatsOver } from '../helpers/whepPage.ts';
import { publishCanvas } from '../helpers/whipPage.ts';

let server: RunningServer;
let browser: ChromiumSession;

before(async () => {
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { enabled: false },
    webrtc: { udpPort: 0, inactivityTimeoutMs: 3000 },
    hls: { enabled: false },
    log: { level: 'warn' },
  });
  browser = await launchChromium();
});

after(() => closeServerThenBrowser(server, browser));

interface LayerInfo {
  rid: string;
  ssrc: number;
  packetsReceived: number;
  forwarded: boolean;
}

test('a three-layer simulcast WHIP publisher: every layer recorded, the highest forwarded to WHEP', async () => {
  const path = 'live/simulcast';
  const publisher = await browser.newPage();
  await publisher.goto(`${server.httpUrl}/healthz`);
  const published = await publishCanvas(publisher, `${server.httpUrl}/whip/${path}`, {
    width: 1280,
    height: 720,
    encodings: [
      { rid: 'h', maxBitrate: 1_500_000 },
      { rid: 'm', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
      { rid: 'l', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
    ],
  });
  assert.equal(published.status, 201, published.body);
  const answer = published.body;
  // RFC 8853 §5.3.2: the answer receives the offered RIDs.
  assert.match(answer, /^a=simulcast:recv h;m;l\r?$/m);
  for (const rid of ['h', 'm', 'l']) assert.match(answer, new RegExp(`^a=rid:${rid} recv\\r?$`, 'm'));
  assert.match(answer, /^a=extmap:\d+ urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r?$/m);

  // Every layer arrives and is recorded; the highest is the one forwarded.
  const layers = async () => {
    const { sessions } = (await (await fetch(`${server.httpUrl}/api/v1/webrtc/sessions`)).json()) as {
      sessions: { kind: string; path: string; simulcast?: LayerInfo[] }[];
    };
    return sessions.find((s) => s.kind === 'whip' && s.path === path)?.simulcast ?? [];
  };
  await waitFor(
    'packets on all three layers',
    async () => {
      const got = await layers();
      return got.length === 3 && got.every((l) => l.packetsReceived > 20);
    },
    15_000,
  );
  const recorded = await layers();
  console.log(`simulcast layers: ${JSON.stringify(recorded)}`);
  assert.deepEqual(
    recorded.map((l) => l.rid),
    ['h', 'm', 'l'],
  );
  assert.equal(new Set(recorded.map((l) => l.ssrc)).size, 3, 'one SSRC per layer');
  assert.deepEqual(
    recorded.map((l) => l.forwarded),
    [true, false, false],
  );
  const stream = (await (await fetch(`${server.httpUrl}/api/v1/streams/${path}`)).json()) as {
    warnings: string[];
  };
  assert.ok(
    stream.warnings.some((w) => /simulcast: layers h, m, l; h is forwarded/.test(w)),
    stream.warnings.join('; '),
  );

  const viewer = await browser.newPage();
  await viewer.goto(`${server.httpUrl}/healthz`);
  await playWhep(viewer, `${server.httpUrl}/whep/${path}`, { audio: false });
  const { first, second } = await whepStatsOver(viewer, 2000);
  const played = {
    decoded: second.framesDecoded - first.framesDecoded,
    width: second.width,
    height: second.height,
  };
  console.log(`WHEP viewer of the simulcast stream: ${JSON.stringify(played)}`);
  assert.ok(played.decoded >= 20, `${played.decoded} frames decoded in 2 s`);
  // The highest layer: full size, unless Chromium's encoder scaled it down under load (never to a quarter).
  assert.ok(
    played.width > 320 && Math.abs(played.width / played.height - 16 / 9) < 0.05,
    JSON.stringify(played),
  );
  await viewer.close();
  await publisher.close();
});
