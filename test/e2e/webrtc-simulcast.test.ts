/**
 * Simulcast over WHIP (RFC 8853) from headless Chromium: a canvas published with three encodings (rid h, m, l
 * at full, half and quarter size). The answer accepts all three; the API records every layer with its SSRC
 * and packet count; WHEP viewers get the highest layer only (full size, one SSRC, decodes).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type RunningServer, startServer } from '../../src/server.ts';
import { type ChromiumSession, launchChromium } from '../helpers/browser.ts';
import { waitFor } from '../helpers/processes.ts';

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

after(async () => {
  // The server first, while the browser still answers: libdatachannel cleaned up while peers whose remote had
  // vanished were still shutting down crashed the test process at exit (SIGSEGV/abort in ~1 of 2 runs).
  await server?.close();
  await browser?.close();
});

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
  const answer = await publisher.evaluate(async (url) => {
    const canvas = document.createElement('canvas');
    canvas.width = 1280;
    canvas.height = 720;
    const g = canvas.getContext('2d')!;
    let n = 0;
    setInterval(() => {
      n += 7;
      g.fillStyle = `hsl(${n % 360} 80% 50%)`;
      g.fillRect(0, 0, 1280, 720);
      g.fillStyle = '#fff';
      g.fillRect(n % 1280, 300, 80, 80);
    }, 33);
    const pc = new RTCPeerConnection();
    (window as unknown as { pc: RTCPeerConnection }).pc = pc;
    const [track] = canvas.captureStream(30).getVideoTracks();
    pc.addTransceiver(track, {
      direction: 'sendonly',
      sendEncodings: [
        { rid: 'h', maxBitrate: 1_500_000 },
        { rid: 'm', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
        { rid: 'l', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
      ],
    });
    await pc.setLocalDescription(await pc.createOffer());
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp' },
      body: pc.localDescription!.sdp,
    });
    const sdp = await response.text();
    if (response.status !== 201) throw new Error(`WHIP answered ${response.status}: ${sdp}`);
    await pc.setRemoteDescription({ type: 'answer', sdp });
    return sdp;
  }, `${server.httpUrl}/whip/${path}`);
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
  const played = await viewer.evaluate(async (url) => {
    const pc = new RTCPeerConnection();
    pc.addTransceiver('video', { direction: 'recvonly' });
    const video = document.createElement('video');
    video.muted = true;
    video.autoplay = true;
    document.body.append(video);
    pc.ontrack = (event) => {
      video.srcObject = new MediaStream([event.track]);
    };
    await pc.setLocalDescription(await pc.createOffer());
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp' },
      body: pc.localDescription!.sdp,
    });
    if (response.status !== 201)
      throw new Error(`WHEP answered ${response.status}: ${await response.text()}`);
    await pc.setRemoteDescription({ type: 'answer', sdp: await response.text() });
    const decoded = async () => {
      for (const r of (await pc.getStats()).values())
        if (r.type === 'inbound-rtp' && r.kind === 'video') return r.framesDecoded ?? 0;
      return 0;
    };
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no video frame within 10 s')), 10_000);
      video.requestVideoFrameCallback(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    const first = await decoded();
    await new Promise((r) => setTimeout(r, 2000));
    return { decoded: (await decoded()) - first, width: video.videoWidth, height: video.videoHeight };
  }, `${server.httpUrl}/whep/${path}`);
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
