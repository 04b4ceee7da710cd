/**
 * A server killed with SIGKILL while recording: every file it closed is intact, the one it was writing is
 * readable up to its last complete fragment, and the next start finishes that file (cut after the last
 * complete fragment, duration written) without deleting anything.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readRecordedFragments, readRecordedHeader } from '../../src/record/RecordingFile.ts';
import { publishTestSource, stop, waitFor } from '../helpers/processes.ts';
import { probeRecording, recordingsOf, serveRecording } from '../helpers/recordings.ts';

interface OnDisk {
  size: number;
  finished: boolean;
  completeEnd: number;
  videoFragments: number;
}

async function inspect(file: string): Promise<OnDisk> {
  const bytes = await readFile(file);
  const header = readRecordedHeader(bytes);
  const { fragments, completeEnd } = readRecordedFragments(bytes, header.fragmentsStart);
  const video = header.tracks.find((t) => t.kind === 'video')!.id;
  return {
    size: bytes.length,
    finished: header.durationMs > 0,
    completeEnd,
    videoFragments: fragments.filter((f) => f.trackId === video).length,
  };
}

test('SIGKILL mid-recording: closed files intact, the open one readable and finished on the next start', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'subsecond-record-kill-'));
  try {
    const first = await serveRecording(dir);
    const source = publishTestSource(`${first.rtmp}/live/kill`, { size: '640x360', gop: 15, seconds: 15 });
    const listed = await waitFor(
      'two closed files and a third being written',
      async () => {
        const r = await recordingsOf(first.http, 'live/kill').catch(() => null);
        const last = r?.files[r.files.length - 1];
        return r && r.files.length >= 3 && last?.recording && last.bytes > 100_000 ? r : null;
      },
      20_000,
    );
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    await stop(source);

    const names = listed!.files.map((f) => f.name);
    const before = await Promise.all(names.map((n) => inspect(join(dir, 'live/kill', n))));
    const open = before[before.length - 1];
    for (const [i, f] of before.slice(0, -1).entries()) {
      assert.ok(f.finished, `${names[i]} was closed with its duration`);
      assert.equal(f.completeEnd, f.size, `${names[i]} ends on a fragment`);
      assert.equal((await probeRecording(join(dir, 'live/kill', names[i]))).errors, '');
    }
    assert.equal(open.finished, false, 'the file being written has no duration yet');
    assert.ok(open.videoFragments > 10, `${open.videoFragments} video fragments on disk`);
    const asLeft = await probeRecording(join(dir, 'live/kill', names[names.length - 1]));
    assert.ok(asLeft.video!.packets >= open.videoFragments - 1, 'ffprobe reads the unfinished file as it is');

    const second = await serveRecording(dir);
    const after = await recordingsOf(second.http, 'live/kill');
    assert.deepEqual(
      after.files.map((f) => f.name),
      names,
      'nothing was deleted',
    );
    assert.ok(after.files.every((f) => !f.recording && f.durationSeconds > 0));
    assert.match(second.output(), /unfinished recording finished/);
    const repaired = await inspect(join(dir, 'live/kill', names[names.length - 1]));
    assert.ok(repaired.finished);
    assert.equal(repaired.size, open.completeEnd, 'cut after its last complete fragment');
    assert.equal(repaired.videoFragments, open.videoFragments);
    for (const name of names) {
      const p = await probeRecording(join(dir, 'live/kill', name));
      assert.equal(p.errors, '', `${name}: ${p.errors}`);
      assert.equal(p.video?.codec, 'h264');
      assert.equal(p.audio?.codec, 'aac');
    }
    const last = await probeRecording(join(dir, 'live/kill', names[names.length - 1]));
    assert.equal(last.video!.packets, open.videoFragments, 'every complete video fragment plays');
    second.child.kill('SIGTERM');
    await new Promise((r) => second.child.once('exit', r));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
