/**
 * Glass-to-glass measurement in the real browser: the time-stamp barcode survives a canvas, scaling and blur in
 * Chromium and rejects a corrupted code; a short measurement over each transport the player offers collects
 * sane samples, from ffmpeg publishing the stamped source over RTMP and from the stamped canvas over WHIP. The targets live in the benchmark
 * (`npm run bench:latency`), not here.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as esbuild from 'esbuild';
import type { Page } from 'playwright-core';
import { BenchPages } from '../../bench/latency/BenchPages.ts';
import { measureTransport, playerPageUrl } from '../../bench/latency/measure.ts';
import { StampedSource } from '../../bench/latency/StampedSource.ts';
import { type RunningServer, startServer } from '../../src/server.ts';
import { type ChromiumSession, launchChromium } from '../helpers/browser.ts';
import { killAll, waitFor } from '../helpers/processes.ts';

const root = join(import.meta.dirname, '../..');
const STREAM = 'live/latency';
const WHIP_STREAM = 'live/latency-whip';

let server: RunningServer | undefined;
let browser: ChromiumSession | undefined;
let source: StampedSource | undefined;
let pages: BenchPages | undefined;
let whipPublisher: Page | undefined;

before(async () => {
  execFileSync(process.execPath, [join(root, 'scripts/build-client.ts')], { stdio: 'inherit' });
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { host: '127.0.0.1', port: 0 },
    webrtc: { udpPort: 0 },
    log: { level: 'warn' },
  });
  browser = await launchChromium();
});

after(async () => {
  await source?.kill();
  await pages?.close();
  killAll();
  await browser?.close();
  await server?.close();
});

test('the barcode round-trips on a canvas in Chromium, through scaling and blur, and rejects corruption', async () => {
  const bundle = await esbuild.build({
    entryPoints: [join(root, 'client/latency/barcode.ts')],
    bundle: true,
    format: 'iife',
    globalName: 'barcode',
    write: false,
  });
  const page = await browser!.newPage();
  try {
    await page.addScriptTag({ content: bundle.outputFiles[0].text });
    const results = await page.evaluate(() => {
      type Barcode = typeof import('../../client/latency/barcode.ts');
      const bc = (window as unknown as { barcode: Barcode }).barcode;
      const width = 1280;
      const height = bc.bandHeight(720);
      const paint = (time: number, flipCell = -1) => {
        const canvas = document.createElement('canvas');
        canvas.width = width;
        canvas.height = height;
        const ctx = canvas.getContext('2d')!;
        bc.encodeCells(time).forEach((v, cell) => {
          const on = cell === flipCell ? !v : v;
          ctx.fillStyle = on ? '#ebebeb' : '#101010';
          ctx.fillRect(
            bc.cellLeft(width, cell),
            0,
            bc.cellLeft(width, cell + 1) - bc.cellLeft(width, cell),
            height,
          );
        });
        return canvas;
      };
      /** Down to a quarter and back up, smoothed, then blurred: what a scaler and a soft encode do. */
      const degrade = (input: HTMLCanvasElement) => {
        const small = document.createElement('canvas');
        small.width = width / 4;
        small.height = Math.round(height / 4);
        small.getContext('2d')!.drawImage(input, 0, 0, small.width, small.height);
        const out = document.createElement('canvas');
        out.width = width;
        out.height = height;
        const ctx = out.getContext('2d', { willReadFrequently: true })!;
        ctx.imageSmoothingEnabled = true;
        ctx.filter = 'blur(2px) brightness(0.8)';
        ctx.drawImage(small, 0, 0, width, height);
        return out;
      };
      const decode = (canvas: HTMLCanvasElement) => {
        const data = canvas
          .getContext('2d', { willReadFrequently: true })!
          .getImageData(0, 0, width, height).data;
        return bc.decodeRgba(data, width, height);
      };
      const times = [0, 1_764_620_000_123, 2 ** 44 - 1, 1_800_000_000_001];
      return {
        clean: times.map((t) => decode(paint(t))),
        degraded: times.map((t) => decode(degrade(paint(t)))),
        corrupted: [2, 20, 45, 46, 61].map((cell) => decode(paint(1_764_620_000_123, cell))),
        blank: decode(document.createElement('canvas')),
        times,
      };
    });
    assert.deepEqual(
      results.clean,
      results.times.map((timeMs) => ({ ok: true, timeMs })),
    );
    assert.deepEqual(
      results.degraded,
      results.times.map((timeMs) => ({ ok: true, timeMs })),
      'scaled and blurred',
    );
    for (const r of results.corrupted) assert.deepEqual(r, { ok: false, reason: 'check' });
    assert.equal(results.blank.ok, false);
  } finally {
    await page.close();
  }
});

/** Starts the stamped RTMP source once, for every RTMP-sourced measurement. */
async function rtmpSource(): Promise<void> {
  if (source) return;
  source = new StampedSource({
    url: `${server!.rtmpUrl}/${STREAM}`,
    width: 854,
    height: 480,
    bitrate: '1500k',
    seconds: 120,
  }).start();
  await waitFor(`${STREAM} to be ready`, () => server!.registry.get(STREAM)?.ready, 15_000);
}

/** Opens the browser WHIP publisher (the stamped canvas) once, for every WHIP-sourced measurement. */
async function whipSource(): Promise<void> {
  if (whipPublisher) return;
  pages = await BenchPages.start();
  whipPublisher = await browser!.newPage();
  await whipPublisher.goto(
    `${pages.url}/source?mode=whip&url=${encodeURIComponent(`${server!.httpUrl}/whip/${WHIP_STREAM}`)}&width=854&height=480&bitrate=1500000`,
  );
  await waitFor('the WHIP publisher page', () => whipPublisher!.evaluate(() => window.sourceState), 10_000);
  assert.equal(await whipPublisher.evaluate(() => window.sourceState), 'running');
  await waitFor(`${WHIP_STREAM} to be ready`, () => server!.registry.get(WHIP_STREAM)?.ready, 15_000);
}

/**
 * Sanity only: samples collected, each positive and below 10 s; the targets live in the benchmark. "Positive"
 * within the meter's resolution: expectedDisplayTime is a compositor estimate on a 60 Hz clock, so a frame that
 * really took ~20 ms (WHIP → WHEP on loopback) can read a few milliseconds under zero, never a refresh under.
 */
const RESOLUTION_MS = 1000 / 60;
async function sane(transport: string, path: string, sourceName: string): Promise<void> {
  const seconds = 6;
  const result = await measureTransport({
    browser: browser!,
    url: playerPageUrl(server!.httpUrl, path, transport),
    transport,
    source: sourceName,
    warmupSeconds: 2,
    seconds,
  });
  console.log(
    `${transport} from ${sourceName}: p50 ${result.p50?.toFixed(0)} ms, p99 ${result.p99?.toFixed(0)} ms, ${result.samples.length} samples, ${result.failed} failed, first frame ${result.firstFrameMs?.toFixed(0)} ms`,
  );
  assert.equal(result.error, undefined);
  assert.equal(result.playedOver, transport);
  assert.ok(
    result.samples.length >= seconds * 20,
    `${result.samples.length} samples in ${seconds} s at 30 fps`,
  );
  assert.ok(
    result.samples.every((ms) => ms > -RESOLUTION_MS && ms < 10_000),
    `every sample positive (within one refresh) and below 10 s: min ${result.min}, max ${result.max}`,
  );
  assert.ok(
    result.failed <= result.frames * 0.1,
    `${result.failed} of ${result.frames} stamps failed their check`,
  );
}

for (const transport of ['mse', 'webrtc', 'hls', 'dash']) {
  test(`a short measurement over ${transport} from the RTMP source collects sane glass-to-glass samples`, async () => {
    await rtmpSource();
    await sane(transport, STREAM, 'rtmp');
  });
}

for (const transport of ['webrtc', 'mse']) {
  test(`a short measurement over ${transport} from the browser WHIP source collects sane samples`, async () => {
    await whipSource();
    await sane(transport, WHIP_STREAM, 'whip');
  });
}
