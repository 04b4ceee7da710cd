import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Frame } from '../media/Frame.ts';
import type { FrameConsumer } from './Stream.ts';
import { StreamBusyError, StreamRegistry } from './StreamRegistry.ts';
import { audio, frame, publisher, video } from './testing/fixtures.ts';

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
