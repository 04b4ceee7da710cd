import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeTrack, formatBitrate, formatDuration, playPageHref } from './format.ts';

test('formats what the pages show', () => {
  assert.equal(formatDuration(7_400), '0:07');
  assert.equal(formatDuration(3_723_000), '1:02:03');
  assert.equal(formatDuration(90_061_000), '1d 1:01:01');
  assert.equal(formatBitrate(1_234_567), '1.23 Mb/s');
  assert.equal(formatBitrate(850_000), '850 kb/s');
  assert.equal(formatBitrate(0), '—');
  assert.equal(describeTrack({ kind: 'video', codec: 'h264', width: 1280, height: 720 }), 'H.264 1280×720');
  assert.equal(
    describeTrack({ kind: 'audio', codec: 'aac', sampleRate: 48000, channels: 2 }),
    'AAC 48 kHz stereo',
  );
  assert.equal(
    describeTrack({ kind: 'audio', codec: 'opus', sampleRate: 44100, channels: 1 }),
    'Opus 44.1 kHz mono',
  );
  assert.equal(playPageHref('live/cam1'), '/play/live/cam1');
});
