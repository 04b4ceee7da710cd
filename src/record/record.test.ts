import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { log } from '../core/log.ts';
import type { Frame, Track } from '../media/Frame.ts';
import { FragmentWriter } from '../media/fmp4/fragment.ts';
import { writeInitSegment } from '../media/fmp4/init.ts';
import { parseRange } from './RecordedRange.ts';
import {
  fileNameOf,
  readRecordedFragments,
  readRecordedHeader,
  startOfFileName,
  writeProducerReference,
} from './RecordingFile.ts';
import type { RecordingSegment } from './RecordingStore.ts';
import { selectExpired } from './Retention.ts';
import { finishRecordingFile } from './repair.ts';

const AAC: Track = {
  id: 1,
  kind: 'audio',
  codec: 'aac',
  timescale: 48000,
  config: new Uint8Array([0x11, 0x90]), // AAC LC, 48 kHz, mono
  codecString: 'mp4a.40.2',
  sampleRate: 48000,
  channels: 1,
};

function recording(frames: number, wallMs: number): Uint8Array {
  const writer = new FragmentWriter();
  const parts = [writeInitSegment([AAC]), writeProducerReference(1, wallMs)];
  for (let i = 0; i < frames; i++) {
    const frame: Frame = {
      trackId: 1,
      dts: i * 1024,
      pts: i * 1024,
      duration: 1024,
      keyframe: true,
      data: new Uint8Array(200).fill(i),
      arrival: 0,
    };
    parts.push(writer.fragment(AAC, frame, 1024));
  }
  return Buffer.concat(parts);
}

describe('recording files', () => {
  it('name a file by its start and read the start back; refuse any other name', () => {
    const ms = Date.UTC(2026, 11, 7, 12, 0, 5, 123);
    assert.equal(fileNameOf(ms), '2026-12-07T12-00-05.123Z.mp4');
    assert.equal(startOfFileName(fileNameOf(ms)), ms);
    for (const bad of ['../2026-12-07T12-00-05.123Z.mp4', '2026-12-07T12-00-05.123Z.mp4.txt', 'x.mp4', '']) {
      assert.equal(startOfFileName(bad), null, bad);
    }
  });

  it('carry the wall clock of time 0 in a prft, to well under a millisecond', () => {
    const wall = Date.UTC(2026, 11, 7, 12, 0, 0) + 0.4567;
    const header = readRecordedHeader(recording(3, wall));
    assert.ok(Math.abs((header.wallClockMs ?? 0) - wall) < 0.001);
    assert.equal(header.durationMs, 0, 'an unfinished file has no duration');
    assert.deepEqual(
      header.tracks.map((t) => [t.kind, t.codec, t.timescale]),
      [['audio', 'aac', 48000]],
    );
  });

  it('are cut after the last complete fragment and given their duration when a writer died mid-fragment', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'subsecond-repair-'));
    try {
      const whole = recording(10, 0);
      const file = join(dir, fileNameOf(0));
      await writeFile(file, whole.subarray(0, whole.length - 50));
      const finished = await finishRecordingFile(file, log.child({ level: 'silent' }));
      const bytes = await readFile(file);
      const header = readRecordedHeader(bytes);
      const { fragments, completeEnd } = readRecordedFragments(bytes, header.fragmentsStart);
      assert.equal(fragments.length, 9);
      assert.equal(completeEnd, bytes.length);
      assert.equal(finished?.bytes, bytes.length);
      assert.equal(header.durationMs, Math.round((9 * 1024 * 1000) / 48000));

      const empty = join(dir, fileNameOf(1000));
      await writeFile(empty, whole.subarray(0, header.fragmentsStart + 20));
      assert.equal(await finishRecordingFile(empty, log.child({ level: 'silent' })), null);
      await assert.rejects(readFile(empty), { code: 'ENOENT' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('retention', () => {
  const segment = (startMs: number, bytes: number, open = false): RecordingSegment => ({
    path: 'live/a',
    name: fileNameOf(startMs),
    file: `/r/${startMs}`,
    startMs,
    durationMs: 1000,
    bytes,
    tracks: [],
    initKey: '',
    open,
  });

  it('deletes the oldest first until the rest fits record.maxBytes, never the open file', () => {
    const files = [segment(3000, 10), segment(1000, 10), segment(2000, 10), segment(4000, 10, true)];
    const expired = selectExpired(files, { maxAgeHours: 0, maxBytes: 25 }, 5000);
    assert.deepEqual(
      expired.map((e) => e.segment.startMs),
      [1000, 2000],
    );
    const onlyOpen = selectExpired([segment(1000, 100, true)], { maxAgeHours: 0, maxBytes: 10 }, 5000);
    assert.deepEqual(onlyOpen, []);
  });

  it('deletes files that ended more than record.maxAgeHours ago', () => {
    const hour = 3_600_000;
    const files = [segment(0, 1), segment(2 * hour, 1), segment(3 * hour, 1)];
    const expired = selectExpired(files, { maxAgeHours: 1, maxBytes: 0 }, 3 * hour + 1000);
    assert.deepEqual(
      expired.map((e) => e.segment.startMs),
      [0],
    );
    assert.match(expired[0].reason, /record\.maxAgeHours/);
  });
});

describe('range queries', () => {
  const defaults = { startMs: 0, durationSeconds: 60 };
  it('take an ISO 8601 time with a zone and seconds', () => {
    assert.deepEqual(parseRange({ start: '2026-12-07T12:00:00Z', duration: '600' }, defaults), {
      startMs: Date.UTC(2026, 11, 7, 12),
      endMs: Date.UTC(2026, 11, 7, 12, 10),
    });
  });
  it('refuse a time without a zone, nonsense and a bad duration, naming the value', () => {
    assert.throws(
      () => parseRange({ start: '2026-12-07T12:00:00' }, defaults),
      /start "2026-12-07T12:00:00"/,
    );
    assert.throws(() => parseRange({ start: 'yesterday' }, defaults), /start "yesterday"/);
    assert.throws(() => parseRange({ duration: '-5' }, defaults), /duration "-5"/);
    assert.throws(() => parseRange({ duration: '1e9' }, defaults), /duration "1e9"/);
  });
});
