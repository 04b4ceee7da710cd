/**
 * The publishing examples of docs/publish.md, run as written (with this server's port and key): ffmpeg over
 * RTMP with and without B-frames, OBS's RTMP settings (server `rtmp://host:1935/live`, stream key
 * `cam1?key=KEY`, sent the way OBS splits them), GStreamer's rtmp2sink, and WHIP with a Bearer token as OBS's
 * WHIP output sends it. The server accepts no publisher without the key, loopback included, as on a remote box.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { B_FRAMES_WARNING } from '../../src/core/warnings.ts';
import { type RunningServer, startServer } from '../../src/server.ts';
import { type ChromiumSession, closeServerThenBrowser, launchChromium } from '../helpers/browser.ts';
import { stop, waitFor } from '../helpers/processes.ts';
import { playWhep, startWhepViewer } from '../helpers/whepPage.ts';

const KEY = 'docs-example-key';
let server: RunningServer;
let browser: ChromiumSession;
const children: ChildProcess[] = [];

before(async () => {
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { host: '127.0.0.1', port: 0 },
    auth: { loopbackPublish: false, publishKey: KEY },
    webrtc: { udpPort: 0 },
    log: { level: 'warn' },
  });
  browser = await launchChromium();
});

after(async () => {
  for (const child of children) await stop(child);
  await closeServerThenBrowser(server, browser);
});

/** Starts a publisher command; each is bounded (a duration or buffer count) and killed at the end of the file. */
function publisher(command: string, args: string[]): ChildProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  return child;
}

interface DescribedStream {
  live: boolean;
  publisher: { protocol: string } | null;
  tracks: { kind: string; codec: string; width?: number }[];
  warnings: string[];
}

async function described(path: string): Promise<DescribedStream | null> {
  const response = await fetch(`${server.httpUrl}/api/v1/streams/${path}`);
  return response.status === 200 ? ((await response.json()) as DescribedStream) : null;
}

async function waitLive(path: string, child: ChildProcess): Promise<DescribedStream> {
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  try {
    const live = await waitFor(
      `${path} to be live with video and audio`,
      async () => {
        const s = await described(path);
        return s && s.tracks.length === 2 ? s : undefined;
      },
      20_000,
    );
    assert.ok(live);
    return live;
  } catch (error) {
    throw new Error(`${(error as Error).message}; the publisher said: ${stderr.slice(-2000)}`);
  }
}

function codecs(s: DescribedStream): string {
  return s.tracks
    .map((t) => t.codec)
    .sort()
    .join('+');
}

async function whepViewer(path: string): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(`${server.httpUrl}/healthz`);
  await playWhep(page, `${server.httpUrl}/whep/${path}`, { frames: 10, timeoutMs: 15_000 });
  return page;
}

const ffmpegTestSource = [
  '-re',
  '-f',
  'lavfi',
  '-i',
  'testsrc2=size=640x360:rate=30',
  '-f',
  'lavfi',
  '-i',
  'sine=frequency=440:sample_rate=48000',
  '-t',
  '30',
];

test('ffmpeg over RTMP without B-frames (-tune zerolatency): WebRTC viewers get it without a warning', async () => {
  const child = publisher('ffmpeg', [
    '-hide_banner',
    '-loglevel',
    'error',
    ...ffmpegTestSource,
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    '-tune',
    'zerolatency',
    '-g',
    '60',
    '-c:a',
    'aac',
    '-b:a',
    '128k',
    '-f',
    'flv',
    `${server.rtmpUrl}/live/cam1?key=${KEY}`,
  ]);
  const stream = await waitLive('live/cam1', child);
  assert.equal(codecs(stream), 'aac+h264');
  const page = await whepViewer('live/cam1');
  await page.close();
  assert.deepEqual((await described('live/cam1'))?.warnings, []);
  await stop(child);
});

test('ffmpeg over RTMP with B-frames: it is published, and the stream warns that WebRTC plays it badly', async () => {
  const child = publisher('ffmpeg', [
    '-hide_banner',
    '-loglevel',
    'error',
    ...ffmpegTestSource,
    '-c:v',
    'libx264',
    '-preset',
    'medium',
    '-bf',
    '3',
    '-g',
    '60',
    '-c:a',
    'aac',
    '-b:a',
    '128k',
    '-f',
    'flv',
    `${server.rtmpUrl}/live/bframes?key=${KEY}`,
  ]);
  await waitLive('live/bframes', child);
  // Only a WebRTC viewer makes the server packetize RTP, where it notices; how it renders is the point of the
  // warning, so no frame count is asked for.
  const page = await browser.newPage();
  await page.goto(`${server.httpUrl}/healthz`);
  const answer = await startWhepViewer(page, `${server.httpUrl}/whep/live/bframes`);
  assert.equal(answer.status, 201, answer.body);
  try {
    await waitFor('the B-frames warning', async () =>
      (await described('live/bframes'))?.warnings.includes(B_FRAMES_WARNING),
    );
    // RTMP ingest noticed the same fact before WebRTC did: the stream says it once.
    const warnings = (await described('live/bframes'))?.warnings ?? [];
    assert.deepEqual(
      warnings.filter((w) => /B-frames/i.test(w)),
      [B_FRAMES_WARNING],
    );
  } finally {
    await page.close();
    await stop(child);
  }
});

test("OBS's RTMP settings (server rtmp://host:1935/live, stream key cam2?key=KEY) publish; no key is refused", async () => {
  // OBS connects to the server URL (app "live") and publishes the stream key as the stream name.
  const obsLike = publisher('ffmpeg', [
    '-hide_banner',
    '-loglevel',
    'error',
    ...ffmpegTestSource,
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    '-bf',
    '0',
    '-g',
    '60',
    '-c:a',
    'aac',
    '-f',
    'flv',
    '-rtmp_app',
    'live',
    '-rtmp_playpath',
    `cam2?key=${KEY}`,
    server.rtmpUrl,
  ]);
  await waitLive('live/cam2', obsLike);
  const refused = publisher('ffmpeg', [
    '-hide_banner',
    '-loglevel',
    'error',
    ...ffmpegTestSource,
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    '-c:a',
    'aac',
    '-f',
    'flv',
    `${server.rtmpUrl}/live/nokey`,
  ]);
  const code = await new Promise((resolve) => refused.once('exit', resolve));
  assert.notEqual(code, 0);
  assert.equal(await described('live/nokey'), null);
  await stop(obsLike);
});

test('GStreamer: x264enc + voaacenc into rtmp2sink', async () => {
  const rtmp = `${server.rtmpUrl}/live/gst?key=${KEY}`;
  const child = publisher('gst-launch-1.0', [
    '-q',
    '-e',
    'videotestsrc',
    'is-live=true',
    'num-buffers=900',
    '!',
    'video/x-raw,width=640,height=360,framerate=30/1',
    '!',
    'x264enc',
    'tune=zerolatency',
    'key-int-max=60',
    'bitrate=1500',
    '!',
    'h264parse',
    '!',
    'flvmux',
    'name=mux',
    'streamable=true',
    '!',
    'rtmp2sink',
    `location=${rtmp}`,
    'audiotestsrc',
    'is-live=true',
    '!',
    'audioconvert',
    '!',
    'audioresample',
    '!',
    'voaacenc',
    'bitrate=128000',
    '!',
    'aacparse',
    '!',
    'mux.',
  ]);
  const stream = await waitLive('live/gst', child);
  assert.equal(codecs(stream), 'aac+h264');
  assert.equal(stream.tracks.find((t) => t.kind === 'video')?.width, 640);
  await stop(child);
});

test("WHIP with a Bearer token, as OBS's WHIP output sends it; a wrong token is refused", async () => {
  const page = await browser.newPage();
  try {
    await page.goto(`${server.httpUrl}/healthz`);
    const results = await page.evaluate(
      async ([sdk, key]) => {
        const { WhipPublisher, testPattern } = (await import(sdk)) as typeof import('../../client/sdk.ts');
        const attempt = async (path: string, token: string) => {
          const publisher = new WhipPublisher({ path, token });
          try {
            await publisher.start(testPattern(true));
            return 'published';
          } catch (error) {
            return (error as Error).message;
          }
        };
        return { good: await attempt('live/whip', key), bad: await attempt('live/whip-bad', 'wrong') };
      },
      [`${server.httpUrl}/static/subsecond.js`, KEY] as const,
    );
    assert.equal(results.good, 'published');
    assert.match(results.bad, /^WHIP refused \((401|403)\)/);
    await waitFor('the WHIP stream', async () => (await described('live/whip'))?.live);
  } finally {
    await page.close();
  }
});
