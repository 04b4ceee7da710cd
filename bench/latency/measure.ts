/**
 * One glass-to-glass measurement: a time-stamped source publishing to a Subsecond server, a headless Chromium
 * viewer on the player page over one transport, and the latency of every frame it presents (LatencyMeter on
 * the page). Used by `npm run bench:latency` and, briefly, by the tests.
 */
import type { Page } from 'playwright-core';
import type { LatencyReport } from '../../client/latency/LatencyMeter.ts';
import type { ChromiumSession } from '../../test/helpers/browser.ts';

export interface TransportResult {
  transport: string;
  source: string;
  /** Latency samples in ms after the warm-up, in presentation order. */
  samples: number[];
  p50: number | null;
  p90: number | null;
  p99: number | null;
  min: number | null;
  max: number | null;
  /** From opening the page to the first time-stamped frame on screen, ms. */
  firstFrameMs: number | null;
  /** Frames presented after the warm-up; decoded + failed + noBand. */
  frames: number;
  /** Frames whose stamp failed its check (counted, not guessed). */
  failed: number;
  noBand: number;
  /** Frames the browser dropped (getVideoPlaybackQuality) over the measurement. */
  droppedFrames: number;
  /** The player's own transport name, to check the page did not fall back to another one. */
  playedOver: string | null;
  /** Subsecond's player at the end: what its live-edge control did (null for the peers' players). */
  player: { underruns: number; liveSeeks: number; stallRecoveries: number; targetBuffer: number } | null;
  error?: string;
}

export function quantile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

export function summarizeSamples(samples: readonly number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    p50: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    p99: quantile(sorted, 0.99),
    min: sorted.length ? sorted[0] : null,
    max: sorted.length ? sorted[sorted.length - 1] : null,
  };
}

interface PageReading {
  report: LatencyReport | null;
  dropped: number;
  transport: string | null;
  player: TransportResult['player'];
}

function read(page: Page): Promise<PageReading> {
  return page.evaluate(() => {
    const video = document.querySelector('video');
    const meter = window.subsecondLatency;
    return {
      report: meter ? JSON.parse(JSON.stringify(meter.report)) : null,
      dropped: video?.getVideoPlaybackQuality().droppedVideoFrames ?? 0,
      transport: window.latencyTransport ?? window.subsecondPlayer?.stats().transport ?? null,
      player: (() => {
        const s = window.subsecondPlayer?.stats();
        return s
          ? {
              underruns: s.underruns,
              liveSeeks: s.liveSeeks,
              stallRecoveries: s.stallRecoveries,
              targetBuffer: s.targetBuffer,
            }
          : null;
      })(),
    };
  });
}

declare global {
  interface Window {
    /** Set by pages that play without the Subsecond player (the peers' viewer page). */
    latencyTransport?: string;
  }
}

/** Subsecond's player page for one stream over one transport. */
export function playerPageUrl(server: string, path: string, transport: string): string {
  return `${server}/play/${path}?transport=${encodeURIComponent(transport)}`;
}

export interface MeasureOptions {
  browser: ChromiumSession;
  /** The viewer page: playerPageUrl(…) for Subsecond, the peers' page for a peer. */
  url: string;
  transport: string;
  source: string;
  warmupSeconds: number;
  seconds: number;
  /** Called every second with the samples so far (progress lines). */
  onProgress?: (samples: number, elapsedSeconds: number) => void;
}

/** Opens the player page over one transport, drops the warm-up, and collects `seconds` of samples. */
export async function measureTransport(options: MeasureOptions): Promise<TransportResult> {
  const { browser, transport } = options;
  const page = await browser.newPage();
  const empty: TransportResult = {
    transport,
    source: options.source,
    samples: [],
    ...summarizeSamples([]),
    firstFrameMs: null,
    frames: 0,
    failed: 0,
    noBand: 0,
    droppedFrames: 0,
    playedOver: null,
    player: null,
  };
  try {
    await page.goto(options.url);
    // The first stamped frame, bounded: a transport that never shows one is reported, not waited on forever.
    const deadline = Date.now() + 20_000;
    let reading = await read(page);
    while (!reading.report?.decoded && Date.now() < deadline) {
      await page.waitForTimeout(100);
      reading = await read(page);
    }
    if (!reading.report?.decoded) {
      return {
        ...empty,
        error: 'no time-stamped frame was shown within 20 s',
        playedOver: reading.transport,
      };
    }
    const firstFrameMs = reading.report.firstFrameMs;
    await page.waitForTimeout(options.warmupSeconds * 1000);
    await page.evaluate(() => window.subsecondLatency?.reset());
    const droppedBefore = (await read(page)).dropped;
    for (let s = 1; s <= options.seconds; s++) {
      await page.waitForTimeout(1000);
      if (options.onProgress) options.onProgress((await read(page)).report?.decoded ?? 0, s);
    }
    reading = await read(page);
    const report = reading.report!;
    return {
      transport,
      source: options.source,
      samples: report.samples,
      ...summarizeSamples(report.samples),
      firstFrameMs,
      frames: report.frames,
      failed: report.failed,
      noBand: report.noBand,
      droppedFrames: reading.dropped - droppedBefore,
      playedOver: reading.transport,
      player: reading.player,
    };
  } finally {
    await page.close();
  }
}
