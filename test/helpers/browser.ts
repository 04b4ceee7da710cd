import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { killAll } from './processes.ts';

/**
 * The system Chromium (Debian's build plays H.264 and AAC; Playwright's own does not), headless, with the
 * flags real-time media tests need: autoplay without a gesture, loopback ICE candidates visible, no
 * background traffic.
 */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--allow-loopback-in-peer-connection',
  '--use-fake-ui-for-media-stream',
  // A publisher page keeps producing frames while another tab is in front (Chromium otherwise slows the timers
  // of background tabs to once a second).
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

export interface ChromiumSession {
  readonly context: BrowserContext;
  /** A new tab; its console errors and page errors are collected in `problems`. */
  newPage(): Promise<Page>;
  /** Console errors and uncaught page errors from every tab, as `url: message`. */
  readonly problems: string[];
  /** Closes the browser and removes its profile folder. Safe to call twice. */
  close(): Promise<void>;
}

export async function launchChromium(
  options: { headless?: boolean /** Flags added to CHROMIUM_ARGS. */; args?: string[] } = {},
): Promise<ChromiumSession> {
  const userDataDir = await mkdtemp(join(tmpdir(), 'subsecond-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM_PATH,
      headless: options.headless ?? true,
      args: [...CHROMIUM_ARGS, ...(options.args ?? [])],
      viewport: { width: 1280, height: 800 },
    });
  } catch (error) {
    await rm(userDataDir, { recursive: true, force: true });
    throw error;
  }
  const problems: string[] = [];
  const watch = (page: Page) => {
    page.on('pageerror', (error) => problems.push(`${page.url()}: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`${page.url()}: ${message.text()}`);
    });
  };
  for (const page of context.pages()) watch(page);
  context.on('page', watch);
  let closing: Promise<void> | null = null;
  return {
    context,
    problems,
    async newPage() {
      return context.newPage();
    },
    close() {
      closing ??= (async () => {
        try {
          await context.close();
        } finally {
          await rm(userDataDir, { recursive: true, force: true });
        }
      })();
      return closing;
    },
  };
}

/**
 * The end of a WebRTC browser test file: the processes it started through ./processes.ts, then the server while
 * the browser still answers, then the browser. (libdatachannel cleaned up while peers whose remote had vanished
 * were still shutting down crashed the test process at exit: SIGSEGV/abort in ~1 of 2 runs.)
 */
export async function closeServerThenBrowser(
  server: { close(): Promise<void> } | undefined,
  browser: ChromiumSession | undefined,
): Promise<void> {
  killAll();
  const watchdog = closeWatchdog(CLOSE_BOUND_MS);
  try {
    await server?.close();
    await browser?.close();
  } finally {
    await watchdog.terminate();
  }
}

/** How long a test file's closing may take before its process is killed. */
const CLOSE_BOUND_MS = 30_000;

/**
 * Kills this process if closing has not finished in `ms`. A thread of its own, because what hangs may block the
 * event loop (a native cleanup waiting on a thread): a file whose close hung once held the whole test run,
 * which waits for every file's process. Killed, the file fails, naming why.
 */
function closeWatchdog(ms: number): Worker {
  const source = `setTimeout(() => {
    require('node:fs').writeSync(2, 'closing the server and the browser took over ${ms} ms: killing the test process\\n');
    process.kill(${process.pid}, 'SIGKILL');
  }, ${ms});`;
  const worker = new Worker(source, { eval: true });
  worker.unref();
  return worker;
}
