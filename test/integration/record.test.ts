/**
 * Recording (record.*): ffmpeg publishes H.264 + AAC over RTMP; the recorder writes 4-second files that
 * ffprobe reads one by one, whose durations add up and whose audio and video line up; a range across two
 * files downloads as one MP4 of that duration; the HLS VOD playlist points at byte ranges that are
 * fragments; recording starts and stops through the control API; a republish with another size starts a
 * new file; no recording route lets a path out of record.dir; retention deletes the oldest file first.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { cp, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type RunningServer, startServer } from '../../src/server.ts';
import { publishTestSource, stop, waitFor } from '../helpers/processes.ts';
import { type ListedFile, probeRecording, rawRequest, recordingsOf } from '../helpers/recordings.ts';

const FRAME = 1 / 30;
/** ffprobe prints durations to the microsecond, and RTMP times are whole milliseconds. */
const EPSILON = 0.002;

let server: RunningServer;
let dir: string;
let rtmp: ChildProcess;
let other: ChildProcess;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'subsecond-record-'));
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { host: '127.0.0.1', port: 0 },
    webrtc: { enabled: false },
    hls: { enabled: false },
    log: { level: 'warn' },
    record: { enabled: true, paths: ['live/**'], dir, segmentSeconds: 4 },
  });
  rtmp = publishTestSource(`${server.rtmpUrl}/live/rtmp`, { size: '640x360', gop: 15, seconds: 11 });
  other = publishTestSource(`${server.rtmpUrl}/other/cam`, { size: '320x240', gop: 15, seconds: 8 });
});

after(async () => {
  await stop(rtmp);
  await stop(other);
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

async function closedFiles(path: string, atLeast: number): Promise<ListedFile[]> {
  const files = await waitFor(
    `${atLeast} finished recordings of ${path}`,
    async () => {
      const listed = await recordingsOf(server.httpUrl, path).catch(() => null);
      const files = listed?.files ?? [];
      return files.length >= atLeast && files.every((f) => !f.recording) && !listed?.recording ? files : null;
    },
    30_000,
  );
  return files!;
}

test('recording starts and stops through the control API for a path record.paths does not name', async () => {
  await waitFor('other/cam live', () => server.registry.get('other/cam')?.ready);
  assert.equal((await fetch(`${server.httpUrl}/api/v1/recordings/other/cam`)).status, 404);
  const started = await fetch(`${server.httpUrl}/api/v1/streams/other/cam/recording`, { method: 'POST' });
  assert.equal(started.status, 201, await started.clone().text());
  assert.equal(((await started.json()) as { recording: boolean }).recording, true);
  await new Promise((r) => setTimeout(r, 2500));
  const stopped = await fetch(`${server.httpUrl}/api/v1/streams/other/cam/recording`, { method: 'DELETE' });
  assert.equal(stopped.status, 204);
  const again = await fetch(`${server.httpUrl}/api/v1/streams/other/cam/recording`, { method: 'DELETE' });
  assert.equal(again.status, 404);
  assert.match(((await again.json()) as { error: string }).error, /"other\/cam" is not being recorded/);
  const notLive = await fetch(`${server.httpUrl}/api/v1/streams/nobody/here/recording`, { method: 'POST' });
  assert.equal(notLive.status, 404);
  assert.match(((await notLive.json()) as { error: string }).error, /"nobody\/here" is not live/);

  const [file] = await closedFiles('other/cam', 1);
  const probed = await probeRecording(join(dir, 'other/cam', file.name));
  assert.equal(probed.errors, '');
  assert.equal(probed.video?.codec, 'h264');
  assert.equal(probed.audio?.codec, 'aac');
  // Started at the GOP cache's keyframe (at most 0.5 s back), stopped 2.5 s later.
  assert.ok(
    probed.video!.durationSeconds > 2 && probed.video!.durationSeconds < 3.6,
    String(probed.video?.durationSeconds),
  );
  // The stream itself played on: the kick route still finds the publisher.
  assert.ok(server.registry.get('other/cam')?.live);
});

test('every file plays alone, durations add up within a frame per file, audio and video line up', async () => {
  await new Promise<void>((resolve) =>
    rtmp.exitCode !== null ? resolve() : rtmp.once('exit', () => resolve()),
  );
  const files = await closedFiles('live/rtmp', 3);
  const starts = files.map((f) => Date.parse(f.start) / 1000);
  let videoTotal = 0;
  for (const [i, f] of files.entries()) {
    const p = await probeRecording(join(dir, 'live/rtmp', f.name));
    assert.equal(p.errors, '', `${f.name}: ${p.errors}`);
    assert.deepEqual(f.codecs, ['h264', 'aac']);
    assert.equal(p.video?.codec, 'h264');
    assert.equal(p.audio?.codec, 'aac');
    assert.equal(p.video?.startSeconds, 0, `${f.name} starts at time 0`);
    assert.ok(
      Math.abs(p.audio!.startSeconds - p.video!.startSeconds) < 0.025,
      `${f.name}: audio starts with video`,
    );
    const videoEnd = p.video!.startSeconds + p.video!.durationSeconds;
    const audioEnd = p.audio!.startSeconds + p.audio!.durationSeconds;
    assert.ok(
      Math.abs(audioEnd - videoEnd) < FRAME + 0.022,
      `${f.name}: audio ends at ${audioEnd}, video at ${videoEnd}`,
    );
    if (i < files.length - 1) {
      // Cut at the first keyframe at or after 4 s (GOP 0.5 s), and the next file starts where this one ends.
      assert.ok(
        p.video!.durationSeconds >= 4 - EPSILON && p.video!.durationSeconds < 4.5 + FRAME,
        String(p.video!.durationSeconds),
      );
      const gap = starts[i + 1] - starts[i] - p.video!.durationSeconds;
      assert.ok(
        Math.abs(gap) <= FRAME + EPSILON,
        `${f.name}: next file starts ${gap.toFixed(4)} s off its end`,
      );
    }
    videoTotal += p.video!.durationSeconds;
  }
  const span = starts[starts.length - 1] - starts[0] + files[files.length - 1].durationSeconds;
  assert.ok(Math.abs(videoTotal - span) <= files.length * FRAME, `files ${videoTotal} s, range ${span} s`);
  assert.ok(videoTotal > 9.5 && videoTotal < 11.2, `11 s published, ${videoTotal} s recorded`);
  const listed = await recordingsOf(server.httpUrl, 'live/rtmp');
  assert.equal(listed.ranges.length, 1, 'one publish is one time range');
});

test('a range across two files downloads as one MP4 lasting the range within a frame', async () => {
  const files = await closedFiles('live/rtmp', 3);
  const start = new Date(Date.parse(files[0].start) + 2250).toISOString();
  const res = await fetch(`${server.httpUrl}/api/v1/recordings/live/rtmp/download?start=${start}&duration=4`);
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal(res.headers.get('content-type'), 'video/mp4');
  assert.equal(res.headers.get('x-recording-duration'), '4.000');
  const file = join(dir, 'download.mp4');
  await writeFile(file, Buffer.from(await res.arrayBuffer()));
  const p = await probeRecording(file);
  assert.equal(p.errors, '');
  assert.ok(Math.abs(p.video!.durationSeconds - 4) <= FRAME, `video lasts ${p.video!.durationSeconds} s`);
  assert.ok(Math.abs(p.formatDurationSeconds - 4) <= FRAME, `file lasts ${p.formatDurationSeconds} s`);
  assert.ok(Math.abs(p.audio!.startSeconds - p.video!.startSeconds) < 0.025);
  // 4 s at 30 fps, plus the frames from the keyframe before the start that the decoder needs (GOP 0.5 s).
  assert.ok(p.video!.packets >= 119 && p.video!.packets <= 121 + 15, String(p.video!.packets));
  await rm(file);

  const outside = await fetch(
    `${server.httpUrl}/api/v1/recordings/live/rtmp/download?start=2001-01-01T00:00:00Z&duration=10`,
  );
  assert.equal(outside.status, 404);
  const bad = await fetch(`${server.httpUrl}/api/v1/recordings/live/rtmp/download?start=yesterday`);
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { error: string }).error, /start "yesterday" is not an ISO 8601 time/);
});

test('the VOD playlist of a range is byte ranges of the files, each a run of fragments, and ffmpeg plays it', async () => {
  const files = await closedFiles('live/rtmp', 3);
  const start = new Date(Date.parse(files[0].start) + 1000).toISOString();
  const url = `${server.httpUrl}/recordings/live/rtmp/index.m3u8?start=${start}&duration=6`;
  const res = await fetch(url);
  assert.equal(res.status, 200);
  const playlist = await res.text();
  assert.match(playlist, /#EXT-X-PLAYLIST-TYPE:VOD/);
  assert.match(playlist, /#EXT-X-ENDLIST/);
  assert.match(playlist, /#EXT-X-START:TIME-OFFSET=\d+\.\d{3},PRECISE=YES/);
  const map = /#EXT-X-MAP:URI="([^"]+)",BYTERANGE="(\d+)@0"/.exec(playlist);
  assert.ok(map);
  const ranges = [...playlist.matchAll(/#EXT-X-BYTERANGE:(\d+)@(\d+)\n(\S+)/g)];
  assert.ok(ranges.length >= 3, playlist);
  let seconds = 0;
  for (const m of playlist.matchAll(/#EXTINF:([\d.]+),/g)) seconds += Number(m[1]);
  assert.ok(seconds >= 6 && seconds < 10, `the playlist covers ${seconds} s for a 6 s range`);
  for (const [, size, offset, name] of ranges) {
    const part = await fetch(`${server.httpUrl}/recordings/live/rtmp/${name}`, {
      headers: { range: `bytes=${offset}-${Number(offset) + Number(size) - 1}` },
    });
    assert.equal(part.status, 206);
    const body = new Uint8Array(await part.arrayBuffer());
    assert.equal(body.length, Number(size));
    assert.equal(Buffer.from(body.subarray(4, 8)).toString('latin1'), 'moof');
  }
  const p = await probeRecording(url);
  assert.equal(p.errors, '');
  assert.ok(p.video!.packets >= 6 * 30, `ffmpeg read ${p.video!.packets} video packets from the playlist`);
});

test('a republish with another picture size starts a new file and a new time range', async () => {
  const before = (await closedFiles('live/rtmp', 3)).length;
  const again = publishTestSource(`${server.rtmpUrl}/live/rtmp`, { size: '320x240', gop: 15, seconds: 3 });
  await new Promise((r) => again.once('exit', r));
  const files = await closedFiles('live/rtmp', before + 1);
  const listed = await recordingsOf(server.httpUrl, 'live/rtmp');
  assert.equal(listed.ranges.length, 2);
  const probed = await probeRecording(join(dir, 'live/rtmp', files[files.length - 1].name));
  assert.equal(probed.errors, '');
  assert.ok(probed.video!.durationSeconds > 2, String(probed.video!.durationSeconds));
});

test('no recording route lets a URL reach outside record.dir', async () => {
  const files = await closedFiles('live/rtmp', 3);
  // A file of a valid name that the recorder did not write, and one outside any stream folder.
  await writeFile(join(dir, 'live/rtmp/2001-01-01T00-00-00.000Z.mp4'), 'planted');
  await writeFile(join(dir, 'secret.mp4'), 'planted');
  const name = files[0].name;
  const attempts: [string, string][] = [
    ['GET', '/api/v1/recordings/..%2F..%2F..%2Fetc%2Fpasswd'],
    ['GET', '/api/v1/recordings/live/../../../etc/passwd'],
    ['GET', '/api/v1/recordings/%2e%2e/%2e%2e/etc'],
    ['GET', '/api/v1/recordings/live/rtmp%00/download?start=2026-01-01T00:00:00Z'],
    ['GET', '/api/v1/recordings/..%2Fsecret/download?start=2026-01-01T00:00:00Z'],
    ['GET', '/recordings/live/rtmp/..%2F..%2Fsecret.mp4'],
    ['GET', '/recordings/live/rtmp/../../secret.mp4'],
    ['GET', '/recordings/..%2F..%2F..%2Fetc/passwd'],
    ['GET', '/recordings/live/rtmp/%2Fetc%2Fpasswd'],
    ['GET', '/recordings/live/rtmp/2001-01-01T00-00-00.000Z.mp4'],
    ['GET', `/recordings/live/rtmp/${name}%00.txt`],
    ['GET', `/recordings/live/..%2Flive%2Frtmp/${name}`],
    ['GET', '/recordings/secret.mp4'],
    ['GET', '/recordings/%2E%2E/index.m3u8'],
    ['GET', '/recordings/live/rtmp/..%2F..%2F..%2Fetc%2Fpasswd/index.m3u8'],
    ['POST', '/api/v1/streams/..%2F..%2Fetc/recording'],
    ['POST', '/api/v1/streams/live/%2e%2e/recording'],
    ['DELETE', '/api/v1/streams/..%2F..%2Fetc/recording'],
    ['DELETE', '/api/v1/streams/live/rtmp/..%2F..%2F/recording'],
  ];
  for (const [method, path] of attempts) {
    const res = await rawRequest(server.httpUrl, method, path);
    assert.ok(res.status === 400 || res.status === 404, `${method} ${path}: ${res.status} ${res.body}`);
    assert.doesNotMatch(res.body, /root:|planted/, `${method} ${path}`);
  }
  // And the real file is still served by its name.
  assert.equal((await fetch(`${server.httpUrl}/recordings/live/rtmp/${name}`)).status, 200);
});

test('retention deletes the oldest file first when the recordings exceed record.maxBytes', async () => {
  const copy = await mkdtemp(join(tmpdir(), 'subsecond-retention-'));
  await rm(join(dir, 'live/rtmp/2001-01-01T00-00-00.000Z.mp4'), { force: true });
  await cp(dir, copy, { recursive: true });
  const paths = ['live/rtmp', 'other/cam'];
  const all = (
    await Promise.all(
      paths.map(async (p) => (await recordingsOf(server.httpUrl, p)).files.map((f) => ({ ...f, path: p }))),
    )
  )
    .flat()
    .sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
  const total = all.reduce((n, f) => n + f.bytes, 0);
  const second = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { enabled: false },
    webrtc: { enabled: false },
    hls: { enabled: false },
    log: { level: 'warn' },
    record: { dir: copy, maxBytes: total - all[0].bytes - all[1].bytes },
  });
  try {
    await waitFor('retention', () => second.recordings.filesDeleted >= 2, 5000);
    const exists = async (f: (typeof all)[number]) =>
      stat(join(copy, f.path, f.name)).then(
        () => true,
        () => false,
      );
    assert.deepEqual(
      await Promise.all(all.map(exists)),
      all.map((_, i) => i >= 2),
      'the two oldest files are gone, every newer one kept',
    );
    const metrics = await (await fetch(`${second.httpUrl}/metrics`)).text();
    assert.match(metrics, /subsecond_record_files_deleted_total 2/);
  } finally {
    await second.close();
    await rm(copy, { recursive: true, force: true });
  }
});
