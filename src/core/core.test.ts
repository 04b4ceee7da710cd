import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Frame, Track } from '../media/Frame.ts';
import { InvalidPathError, parseStreamPath } from '../shared/streamPath.ts';
import { GopCache } from './GopCache.ts';
import type { FrameConsumer, Publisher } from './Stream.ts';
import { StreamBusyError, StreamRegistry } from './StreamRegistry.ts';
import { type Sink, Subscriber } from './Subscriber.ts';

const video: Track = {
  id: 1,
  kind: 'video',
  codec: 'h264',
  timescale: 90000,
  config: new Uint8Array(),
  codecString: 'avc1.42001e',
};
const audio: Track = {
  id: 2,
  kind: 'audio',
  codec: 'aac',
  timescale: 48000,
  config: new Uint8Array(),
  codecString: 'mp4a.40.2',
};
const frame = (trackId: number, dts: number, keyframe: boolean, size = 100): Frame => ({
  trackId,
  dts,
  pts: dts,
  duration: 0,
  keyframe,
  data: new Uint8Array(size),
  arrival: performance.now(),
});
const publisher = (id = 'p'): Publisher & { closed: string[] } => {
  const closed: string[] = [];
  return { protocol: 'test', remoteAddress: '127.0.0.1', id, closed, close: (r) => closed.push(r) };
};

test('stream paths: segments of [A-Za-z0-9_.-], no traversal, clear errors', () => {
  assert.equal(parseStreamPath('live/cam1'), 'live/cam1');
  assert.equal(parseStreamPath('/a/b.c-d_e/'), 'a/b.c-d_e');
  for (const bad of [
    '',
    '/',
    'live/../etc',
    'live/./x',
    'a b',
    'a//b',
    'x?y',
    'é',
    'a/%2e',
    `${'x'.repeat(129)}`,
  ]) {
    assert.throws(() => parseStreamPath(bad), InvalidPathError, bad);
  }
  assert.throws(() => parseStreamPath('live/../x'), /segment "\.\." is not allowed/);
});

test('GOP cache restarts at every random access point and is bounded', () => {
  const gop = new GopCache<number>({ maxItems: 5, maxBytes: 1000 });
  gop.add(0, false, 10);
  assert.equal(gop.length, 0, 'nothing is cached before the first keyframe');
  gop.add(1, true, 10);
  gop.add(2, false, 10);
  assert.deepEqual(
    gop.entries.map((e) => e.item),
    [1, 2],
  );
  gop.add(3, true, 10);
  assert.deepEqual(
    gop.entries.map((e) => e.item),
    [3],
  );
  for (let i = 0; i < 4; i++) gop.add(4 + i, false, 10);
  assert.equal(gop.length, 5);
  gop.add(99, false, 10);
  assert.equal(gop.length, 0, 'past the count bound the cache empties until the next keyframe');
  gop.add(100, false, 10);
  assert.equal(gop.length, 0);
  gop.add(101, true, 990);
  gop.add(102, false, 20);
  assert.equal(gop.length, 0, 'past the byte bound too');
});

test('a slow subscriber skips to the next random access point instead of queueing', () => {
  const written: number[] = [];
  const sink: Sink<number> & { backlogBytes: number } = { backlogBytes: 0, write: (n) => written.push(n) };
  const sub = new Subscriber(sink, 1000);
  sub.offer(1, false);
  assert.deepEqual(written, [], 'starts at a random access point');
  sub.offer(2, true);
  sub.offer(3, false);
  sink.backlogBytes = 5000;
  sub.offer(4, false);
  sink.backlogBytes = 0;
  sub.offer(5, false);
  sub.offer(6, true);
  sub.offer(7, false);
  assert.deepEqual(written, [2, 3, 6, 7]);
  assert.equal(sub.skips, 1);
  assert.equal(sub.dropped, 3);
  assert.equal(sub.delivered, 4);
});

test('registry: one publisher per path, consumers see tracks, GOP replay, unpublish and republish', () => {
  const registry = new StreamRegistry();
  const events: string[] = [];
  registry.on('published', (s, { republished }) => events.push(`published ${s.path} ${republished}`));
  registry.on('unpublished', (s) => events.push(`unpublished ${s.path}`));
  registry.on('removed', (s) => events.push(`removed ${s.path}`));

  const p1 = publisher('p1');
  const stream = registry.publish('live/a', p1);
  assert.throws(() => registry.publish('live/a', publisher('p2')), StreamBusyError);
  assert.throws(() => registry.publish('live/a', publisher('p2')), /stream already has a publisher/);
  stream.setTracks([video, audio]);
  stream.pushFrame(frame(1, 0, true));
  stream.pushFrame(frame(2, 0, true));
  stream.pushFrame(frame(1, 3000, false));

  const seen: string[] = [];
  const consumer: FrameConsumer = {
    onTracks: (t) => seen.push(`tracks ${t.length}`),
    onFrame: (f) => seen.push(`frame ${f.trackId}@${f.dts}`),
    onUnpublish: () => seen.push('unpublish'),
  };
  const detach = stream.addConsumer(consumer);
  assert.deepEqual(
    seen,
    ['tracks 2', 'frame 1@0', 'frame 2@0', 'frame 1@3000'],
    'a late consumer starts at the keyframe',
  );

  registry.unpublish(stream, publisher('stale'));
  assert.ok(stream.live, 'a stale publisher cannot unpublish the current one');
  registry.unpublish(stream, p1);
  assert.equal(stream.live, false);
  assert.equal(registry.get('live/a'), stream, 'kept while a consumer waits');

  const p3 = publisher('p3');
  assert.equal(registry.publish('live/a', p3), stream, 'a republish reuses the stream its viewers wait on');
  stream.setTracks([video]);
  assert.deepEqual(seen.slice(4), ['unpublish', 'tracks 1']);

  assert.equal(registry.kick('live/a', 'bye'), true);
  assert.deepEqual(p3.closed, ['bye']);
  detach();
  registry.release(stream);
  assert.equal(registry.get('live/a'), undefined);
  assert.deepEqual(events, [
    'published live/a false',
    'unpublished live/a',
    'published live/a true',
    'unpublished live/a',
    'removed live/a',
  ]);
});

test('viewer counts per protocol and bitrate', () => {
  const registry = new StreamRegistry();
  const stream = registry.publish('live/v', publisher());
  const a = stream.addViewer('mse');
  const b = stream.addViewer('mse');
  const c = stream.addViewer('rtmp');
  assert.equal(stream.viewerCount, 3);
  a();
  a();
  assert.equal(stream.viewers.get('mse'), 1, 'releasing twice counts once');
  b();
  c();
  assert.equal(stream.viewerCount, 0);
  assert.equal(stream.viewers.size, 0);
});

test('a consumer that throws is detached; the publisher and other consumers carry on', () => {
  const registry = new StreamRegistry();
  const stream = registry.publish('live/t', publisher());
  stream.setTracks([video]);
  const got: number[] = [];
  stream.addConsumer({
    onTracks: () => {},
    onFrame: () => {
      throw new Error('consumer bug');
    },
    onUnpublish: () => {},
  });
  stream.addConsumer({ onTracks: () => {}, onFrame: (f) => got.push(f.dts), onUnpublish: () => {} });
  stream.pushFrame(frame(1, 0, true));
  stream.pushFrame(frame(1, 3000, false));
  assert.deepEqual(got, [0, 3000]);
  assert.equal(stream.consumers.size, 1);
});

test('CMAF init: a new decoder configuration within one publish continues; a republish or new tracks do not', async () => {
  const { CmafFeed } = await import('./CmafFeed.ts');
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

test('CMAF feed asks the publisher for a keyframe after a video gap MSE would treat as a discontinuity', async () => {
  const { CmafFeed } = await import('./CmafFeed.ts');
  const { encodeH264 } = await import('../media/testing/ffmpeg.ts');
  const { splitAnnexB } = await import('../media/nalu.ts');
  const { buildAvcDecoderConfig, h264TrackInfo } = await import('../media/h264/avcC.ts');
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

test('a joiner is replayed a GOP longer than gop.maxReplayMs only when the publisher cannot make a keyframe', async () => {
  const limits = { maxItems: 900, maxBytes: 1 << 20, maxReplayMs: 50 };
  const registry = new StreamRegistry(limits);
  let asked = 0;
  const webrtc = registry.publish('live/asks', { ...publisher('w'), requestKeyframe: () => asked++ });
  const rtmp = registry.publish('live/cannot', publisher('r'));
  for (const stream of [webrtc, rtmp]) {
    stream.setTracks([video]);
    stream.pushFrame(frame(1, 0, true));
    stream.pushFrame(frame(1, 3000, false));
  }
  const replayed = (path: string) => {
    const frames: Frame[] = [];
    const detach = registry.get(path)!.addConsumer({
      onTracks: () => {},
      onFrame: (f) => frames.push(f),
      onUnpublish: () => {},
    });
    detach();
    return frames.length;
  };
  assert.equal(replayed('live/asks'), 2, 'a GOP within the limit is replayed');
  assert.equal(asked, 0);
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(replayed('live/asks'), 0, 'past the limit the joiner waits for a fresh keyframe…');
  assert.equal(asked, 1, '…which the publisher is asked for');
  assert.equal(replayed('live/cannot'), 2, 'an RTMP GOP is replayed whatever its span');
});
