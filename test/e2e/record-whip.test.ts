/**
 * Recording a WHIP publisher (headless Chromium: canvas video as H.264, a tone as Opus): ffprobe reads every
 * file, their durations add up, audio and video line up; then the player page plays a past range of the
 * recording (`/play/{path}?start=&duration=`, hls.js over the VOD playlist) and the dashboard lists it with
 * a play link.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type RunningServer, startServer } from '../../src/server.ts';
import { type ChromiumSession, closeServerThenBrowser, launchChromium } from '../helpers/browser.ts';
import { waitFor } from '../helpers/processes.ts';
import { type ListedFile, probeRecording, recordingsOf } from '../helpers/recordings.ts';
import { publishCanvas } from '../helpers/whipPage.ts';

const PATH = 'live/whip';
let server: RunningServer;
let browser: ChromiumSession;
let dir: string;
let files: ListedFile[];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'subsecond-record-whip-'));
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { enabled: false },
    webrtc: { udpPort: 0 },
    hls: { enabled: false },
    log: { level: 'warn' },
    record: { enabled: true, dir, segmentSeconds: 4 },
  });
  browser = await launchChromium();
});

after(async () => {
  await closeServerThenBrowser(server, browser);
  await rm(dir, { recursive: true, force: true });
});

test('a WHIP publisher (H.264 + Opus) is recorded into files ffprobe reads, in sync, adding up', async () => {
  const publisher = await browser.newPage();
  await publisher.goto(`${server.httpUrl}/healthz`);
  const published = await publishCanvas(publisher, `${server.httpUrl}/whip/${PATH}`, { audio: true });
  assert.equal(published.status, 201, published.body);
  await waitFor('the recording to start', () => server.recordings.recorderOf(PATH)?.segment, 15_000);
  await new Promise((r) => setTimeout(r, 10_000));
  await publisher.close();
  files = (await waitFor(
    'the recording to be closed',
    async () => {
      const listed = await recordingsOf(server.httpUrl, PATH).catch(() => null);
      return listed && !listed.recording && listed.files.every((f) => !f.recording) ? listed.files : null;
    },
    15_000,
  ))!;
  assert.ok(files.length >= 2, `${files.length} files for 10 s at record.segmentSeconds 4`);
  let total = 0;
  for (const [i, f] of files.entries()) {
    const p = await probeRecording(join(dir, PATH, f.name));
    assert.equal(p.errors, '', `${f.name}: ${p.errors}`);
    assert.equal(p.video?.codec, 'h264');
    assert.equal(p.audio?.codec, 'opus');
    assert.equal(p.video?.startSeconds, 0);
    // Opus frames last 20 ms and WebRTC audio comes in packets of its own pace: within a few frames.
    assert.ok(
      Math.abs(p.audio!.startSeconds - p.video!.startSeconds) < 0.1,
      `${f.name}: audio at ${p.audio!.startSeconds}`,
    );
    const videoEnd = p.video!.startSeconds + p.video!.durationSeconds;
    const audioEnd = p.audio!.startSeconds + p.audio!.durationSeconds;
    assert.ok(
      Math.abs(audioEnd - videoEnd) < 0.1,
      `${f.name}: audio ends at ${audioEnd}, video at ${videoEnd}`,
    );
    if (i < files.length - 1) {
      const next = (Date.parse(files[i + 1].start) - Date.parse(f.start)) / 1000;
      // One frame of a 30 fps canvas (WebRTC timestamps are 90 kHz, the file names' clock is the same one).
      assert.ok(
        Math.abs(next - p.video!.durationSeconds) < 0.034,
        `${f.name}: next file ${next} s on, lasts ${p.video!.durationSeconds}`,
      );
      // A keyframe was asked for at 4 s: the cut is not left to the encoder's next one.
      assert.ok(p.video!.durationSeconds < 5.5, String(p.video!.durationSeconds));
    }
    total += p.video!.durationSeconds;
  }
  assert.ok(total > 8 && total < 11.5, `about 10 s published, ${total} s recorded`);
});

test('the player page plays a past range from the recording, and the dashboard links to it', async () => {
  const start = new Date(Date.parse(files[0].start) + 1000).toISOString();
  const page = await browser.newPage();
  await page.goto(`${server.httpUrl}/play/${PATH}?start=${start}&duration=6`);
  const played = await waitFor(
    'the recorded range to play 2 s',
    () =>
      page.evaluate(() => {
        const video = document.querySelector('video')!;
        return video.currentTime > 2 && video.videoWidth > 0
          ? { width: video.videoWidth, fatal: window.subsecondRecording?.fatal ?? [] }
          : null;
      }),
    20_000,
  );
  assert.equal(played!.width, 640);
  assert.deepEqual(played!.fatal, [], 'hls.js recovered from anything it met');
  await page.close();

  const dashboard = await browser.newPage();
  await dashboard.goto(`${server.httpUrl}/`);
  const link = await waitFor(
    'the dashboard to list the recording',
    () =>
      dashboard.evaluate(() => document.querySelector<HTMLAnchorElement>('a[data-recording]')?.href ?? ''),
    10_000,
  );
  assert.match(link!, /\/play\/live\/whip\?start=\d{4}-\d\d-\d\dT[\d:.]+Z&duration=\d/);
  await dashboard.close();
});
