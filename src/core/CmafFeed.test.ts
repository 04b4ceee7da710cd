import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Track } from '../media/Frame.ts';
import { buildAvcDecoderConfig, h264TrackInfo } from '../media/h264/avcC.ts';
import { splitAnnexB } from '../media/nalu.ts';
import { encodeH264 } from '../media/testing/ffmpeg.ts';
import { CmafFeed } from './CmafFeed.ts';
import { StreamRegistry } from './StreamRegistry.ts';
import { audio, frame, publisher, video } from './testing/fixtures.ts';

test('CMAF init: a new decoder configuration within one publish continues; a republish or new tracks do not', () => {
  // Real AudioSpecificConfigs: AAC-LC stereo at 48 kHz, then at 44.1 kHz; Opus is a different track set.
  const aac48: Track = {
    ...audio,
    id: 1,
    config: new Uint8Array([0x11, 0x90]),
    channels: 2,
    sampleRate: 48000,
  };
  const aac44: Track = {
    ...aac48,
    config: new Uint8Array([0x12, 0x10]),
    timescale: 44100,
    sampleRate: 44100,
  };
  const opus: Track = {
    ...aac48,
    codec: 'opus',
    codecString: 'opus',
    config: new Uint8Array([...Buffer.from('OpusHead'), 1, 2, 0x38, 1, 0x80, 0xbb, 0, 0, 0, 0, 0]),
  };
  const registry = new StreamRegistry();
  const p1 = publisher('p1');
  const stream = registry.publish('live/cmaf', p1);
  const inits: { generation: number; continues: boolean }[] = [];
  const remove = CmafFeed.of(stream).addListener({
    onInit: (init) => inits.push({ generation: init.generation, continues: init.continues }),
    onItem: () => {},
    onUnpublish: () => {},
  });
  stream.setTracks([aac48]);
  stream.setTracks([aac44]);
  stream.setTracks([opus]);
  registry.unpublish(stream, p1);
  assert.equal(registry.publish('live/cmaf', publisher('p2')), stream);
  stream.setTracks([opus]);
  assert.deepEqual(inits, [
    { generation: 1, continues: false },
    { generation: 2, continues: true },
    { generation: 3, continues: false },
    { generation: 4, continues: false },
  ]);
  remove();
});

test('CMAF feed asks the publisher for a keyframe after a video gap MSE would treat as a discontinuity', () => {
  const nalus = splitAnnexB(encodeH264({ width: 320, height: 240 }));
  const avcC = buildAvcDecoderConfig(
    nalus.filter((n) => (n[0] & 0x1f) === 7),
    nalus.filter((n) => (n[0] & 0x1f) === 8),
  );
  const h264: Track = {
    ...video,
    config: avcC,
    codecString: h264TrackInfo(avcC).codecString,
    width: 320,
    height: 240,
  };
  const registry = new StreamRegistry();
  let asked = 0;
  const stream = registry.publish('live/gap', { ...publisher(), requestKeyframe: () => asked++ });
  const remove = CmafFeed.of(stream).addListener({
    onInit: () => {},
    onItem: () => {},
    onUnpublish: () => {},
  });
  stream.setTracks([h264]);
  let dts = 0;
  const push = (gap: number, key = false) => {
    dts += gap;
    stream.pushFrame(frame(1, dts, key));
  };
  push(0, true);
  for (let i = 0; i < 10; i++) push(3000);
  assert.equal(asked, 0, 'a steady 30 fps stream needs nothing');
  push(5000);
  assert.equal(asked, 0, 'a late frame within twice the last duration is no discontinuity');
  push(3000);
  push(15_000);
  assert.equal(asked, 1, 'a 166 ms gap after 33 ms frames is');
  push(15_000, true);
  assert.equal(asked, 1, 'a keyframe after a gap is its own random access point');
  remove();
});
