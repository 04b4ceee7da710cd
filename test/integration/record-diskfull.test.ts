/**
 * record.dir on a 1 MiB tmpfs fills up mid-recording: the live stream and its WebSocket viewer go on, the
 * error is logged once with the path and errno and counted in /metrics, the file cut short is finished as far
 * as it got, and recording starts again on its own once there is room.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { publishTestSource, stop, waitFor } from '../helpers/processes.ts';
import { probeRecording, serveRecording } from '../helpers/recordings.ts';

async function metric(http: string, name: string): Promise<number> {
  const text = await (await fetch(`${http}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 'NaN');
}

test('a full disk stops the recording, not the live stream; recording resumes when there is room', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'subsecond-record-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
  const server = await serveRecording(dir).catch(async (err) => {
    execFileSync('umount', [dir]);
    throw err;
  });
  const source = publishTestSource(`${server.rtmp}/live/full`, { size: '1280x720', seconds: 25 });
  await waitFor(
    'the stream to go live',
    async () => (await fetch(`${server.http}/api/v1/streams/live/full`)).ok,
  );
  let viewerMessages = 0;
  const viewer = new WebSocket(`${server.http.replace('http', 'ws')}/mse/live/full`);
  viewer.on('message', () => viewerMessages++);
  try {
    await waitFor(
      'a write error',
      async () => (await metric(server.http, 'subsecond_record_write_errors_total')) >= 1,
      20_000,
    );
    const atError = viewerMessages;
    await new Promise((r) => setTimeout(r, 2000));
    assert.ok(
      viewerMessages - atError > 40,
      `the viewer got ${viewerMessages - atError} messages in 2 s after the error`,
    );
    assert.equal(
      (await fetch(`${server.http}/api/v1/streams/live/full`)).status,
      200,
      'the stream is still live',
    );
    const logged = server
      .output()
      .split('\n')
      .filter((l) => l.includes('recording write failed'));
    assert.equal(logged.length, 1, logged.join('\n'));
    assert.match(logged[0], /"errno":"ENOSPC"/);
    assert.match(logged[0], /"path":"live\/full"/);

    // Room again: the recorder's retry starts a new file that finishes normally.
    const streamDir = join(dir, 'live/full');
    const full = await readdir(streamDir);
    for (const name of full) await rm(join(streamDir, name));
    const started = await metric(server.http, 'subsecond_record_files_started_total');
    await waitFor(
      'a new file after the retry',
      async () => (await metric(server.http, 'subsecond_record_files_started_total')) > started,
      15_000,
    );
    await waitFor('recording resumed', () => server.output().includes('recording resumed'), 10_000);
    await stop(source);
    await waitFor('files closed', async () => {
      const r = await fetch(`${server.http}/api/v1/recordings/live/full`);
      const body = (await r.json()) as { files?: { recording: boolean }[] };
      return !!body.files?.length && body.files.every((f) => !f.recording);
    });
    const after = (await readdir(streamDir)).filter((n) => !full.includes(n));
    assert.ok(after.length >= 1);
    for (const name of after) assert.equal((await probeRecording(join(streamDir, name))).errors, '', name);
  } finally {
    viewer.close();
    await stop(source);
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
    execFileSync('umount', [dir]);
    await rmdir(dir);
  }
});
