import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseAudioSpecificConfig } from '../aac/asc.ts';
import { MediaParseError } from '../errors.ts';
import { h264TrackInfo } from '../h264/avcC.ts';
import { splitAvcc } from '../nalu.ts';
import { ffmpeg } from '../testing/ffmpeg.ts';
import { parseAudioTag } from './audio.ts';
import { FlvTagType, parseFlvTags } from './tag.ts';
import { parseVideoTag } from './video.ts';

test('an ffmpeg FLV file parses tag by tag into configs and frames', () => {
  const flv = ffmpeg([
    ...['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-f', 'lavfi', '-i', 'sine=sample_rate=44100'],
    ...['-t', '1', '-c:v', 'libx264', '-bf', '2', '-g', '25', '-c:a', 'aac', '-f', 'flv', '-'],
  ]);
  // FLV header (9 bytes) and PreviousTagSize0 (4 bytes), then tags.
  assert.equal(Buffer.from(flv.subarray(0, 3)).toString(), 'FLV');
  const tags = parseFlvTags(flv.subarray(13));
  assert.equal(tags[0].type, FlvTagType.Script);
  const video = tags.filter((t) => t.type === FlvTagType.Video).map((t) => ({ t, p: parseVideoTag(t.body) }));
  const audio = tags.filter((t) => t.type === FlvTagType.Audio).map((t) => parseAudioTag(t.body));

  const config = video[0].p;
  assert.equal(config.kind, 'config');
  if (config.kind !== 'config') return;
  assert.deepStrictEqual(
    { ...h264TrackInfo(config.config), frameRate: undefined },
    { codecString: 'avc1.64000d', width: 320, height: 240, frameRate: undefined },
  );
  const frames = video.filter((v) => v.p.kind === 'frame');
  assert.equal(frames.length, 25);
  assert.ok(frames[0].p.kind === 'frame' && frames[0].p.keyframe);
  // With B-frames, some frames are presented later than decoded.
  assert.ok(
    frames.some((f) => f.p.kind === 'frame' && f.p.compositionTime > 0),
    'B-frames give composition offsets',
  );
  for (const f of frames) if (f.p.kind === 'frame') assert.ok(splitAvcc(f.p.data).length > 0);
  // Timestamps never go back in decode order.
  for (let i = 1; i < frames.length; i++) assert.ok(frames[i].t.timestamp >= frames[i - 1].t.timestamp);

  assert.equal(audio[0].kind, 'config');
  if (audio[0].kind === 'config') assert.equal(parseAudioSpecificConfig(audio[0].config).sampleRate, 44100);
  assert.ok(audio.filter((a) => a.kind === 'frame').length >= 40);
});

test('a tag whose DataSize runs past the end throws MediaParseError naming it', () => {
  // Type 9, DataSize 500, timestamp 0x01000002 (extended byte 1), stream id 0, then only 20 bytes.
  const tag = Uint8Array.from([9, 0, 1, 0xf4, 0, 0, 2, 1, 0, 0, 0, ...new Array(20).fill(0)]);
  assert.throws(
    () => parseFlvTags(tag),
    (err: unknown) =>
      err instanceof MediaParseError &&
      err.message ===
        'FLV tags: truncated reading tag body (DataSize 500), needed 500 bytes but 20 remain (at byte 11)',
  );
  // Well-formed, the same header gives the 32-bit timestamp from TimestampExtended.
  const ok = Uint8Array.from([9, 0, 0, 2, 0, 0, 2, 1, 0, 0, 0, 0x17, 2, 0, 0, 0, 13]);
  assert.deepStrictEqual(parseFlvTags(ok), [
    { type: 9, timestamp: 0x01000002, body: Uint8Array.from([0x17, 2]) },
  ]);
  assert.throws(() => parseFlvTags(ok.subarray(0, 15)), /2 stray bytes after a tag/);
});
