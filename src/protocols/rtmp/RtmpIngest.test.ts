import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { log } from '../../core/log.ts';
import { StreamRegistry } from '../../core/StreamRegistry.ts';
import { B_FRAMES_WARNING } from '../../core/warnings.ts';
import type { Frame, Track } from '../../media/Frame.ts';
import { type FlvTag, FlvTagType, parseFlvTags } from '../../media/flv/tag.ts';
import { splitAvcc } from '../../media/nalu.ts';
import { ffmpeg } from '../../media/testing/ffmpeg.ts';
import { type Amf0Object, decodeAmf0Sequence } from './amf0.ts';
import { AUDIO_TRACK_ID, RtmpIngest, VIDEO_TRACK_ID } from './RtmpIngest.ts';

const quiet = log.child({});
quiet.level = 'silent';

function flvTags(videoArgs: readonly string[], withAudio = true, size = '320x240'): FlvTag[] {
  const inputs = ['-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=30`];
  if (withAudio) inputs.push('-f', 'lavfi', '-i', 'sine=sample_rate=48000');
  const codecs = ['-c:v', 'libx264', '-preset', 'veryfast', '-g', '30', ...videoArgs];
  if (withAudio) codecs.push('-c:a', 'aac');
  return parseFlvTags(ffmpeg([...inputs, '-t', '2', ...codecs, '-f', 'flv', '-']).subarray(13));
}

interface Recorded {
  events: ({ tracks: readonly Track[] } | { frame: Frame })[];
  unpublished: number;
}

function setup(path = 'live/cam1'): { registry: StreamRegistry; ingest: RtmpIngest; rec: Recorded } {
  const registry = new StreamRegistry();
  const rec: Recorded = { events: [], unpublished: 0 };
  registry.on('unpublished', () => rec.unpublished++);
  registry.on('published', (stream) => {
    stream.addConsumer({
      onTracks: (tracks) => rec.events.push({ tracks }),
      onFrame: (frame) => rec.events.push({ frame }),
      onUnpublish: () => {},
    });
  });
  const ingest = new RtmpIngest({
    registry,
    path,
    remoteAddress: '127.0.0.1',
    id: 'test',
    log: quiet,
    onKick: () => {},
    onError: (err) => {
      throw err;
    },
  });
  return { registry, ingest, rec };
}

/** Feeds tags as an RTMP publisher would send them, with arrival = the tag's timestamp plus `delay`. */
function feed(ingest: RtmpIngest, tags: readonly FlvTag[], delay = 0): void {
  for (const tag of tags) {
    if (tag.type === FlvTagType.Script) {
      const [, metadata] = decodeAmf0Sequence(tag.body);
      ingest.onMetaData(metadata as Amf0Object);
    } else if (tag.type === FlvTagType.Video) {
      ingest.onVideo(tag.timestamp, tag.body, tag.timestamp + delay);
    } else if (tag.type === FlvTagType.Audio) {
      ingest.onAudio(tag.timestamp, tag.body, tag.timestamp + delay);
    }
  }
}

function frames(rec: Recorded, trackId: number): Frame[] {
  return rec.events.flatMap((e) => ('frame' in e && e.frame.trackId === trackId ? [e.frame] : []));
}

function trackSets(rec: Recorded): (readonly Track[])[] {
  return rec.events.flatMap((e) => ('tracks' in e ? [e.tracks] : []));
}

test('an H.264 + AAC publish becomes tracks, then frames in each track timescale', () => {
  const tags = flvTags(['-tune', 'zerolatency']);
  const { ingest, rec } = setup();
  feed(ingest, tags);
  const sets = trackSets(rec);
  assert.equal(sets.length, 1, 'setTracks once');
  assert.ok('tracks' in rec.events[0], 'tracks before any frame');
  const [video, audio] = sets[0];
  assert.deepStrictEqual(
    { ...video, config: undefined },
    {
      id: 1,
      kind: 'video',
      codec: 'h264',
      timescale: 90000,
      config: undefined,
      codecString: 'avc1.64000d',
      width: 320,
      height: 240,
    },
  );
  assert.deepStrictEqual(
    { ...audio, config: undefined },
    {
      id: 2,
      kind: 'audio',
      codec: 'aac',
      timescale: 48000,
      config: undefined,
      codecString: 'mp4a.40.2',
      sampleRate: 48000,
      channels: 1,
    },
  );
  const v = frames(rec, VIDEO_TRACK_ID);
  assert.equal(v.length, 60);
  assert.deepStrictEqual(
    v.flatMap((f, i) => (f.keyframe ? [i] : [])),
    [0, 30],
  );
  const videoTags = tags.filter((t) => t.type === FlvTagType.Video).slice(1);
  v.forEach((f, i) => {
    assert.equal(f.dts, videoTags[i].timestamp * 90);
    assert.equal(f.pts, f.dts, 'zerolatency: no B-frames');
    assert.ok(splitAvcc(f.data).length > 0, '4-byte length-prefixed NAL units');
  });
  const a = frames(rec, AUDIO_TRACK_ID);
  assert.ok(a.length >= 90, `${a.length} audio frames`);
  // AAC counted in samples: contiguous 1024-sample frames, anchored to the first timestamp.
  a.forEach((f, i) => {
    assert.equal(f.duration, 1024);
    assert.equal(f.dts, a[0].dts + 1024 * i);
    assert.ok(f.keyframe);
  });
  assert.equal(ingest.stream.warnings.size, 0);
});

test('B-frames add the stream warning once', () => {
  const { ingest, rec } = setup();
  feed(ingest, flvTags(['-bf', '2'], false));
  assert.deepStrictEqual([...ingest.stream.warnings], [B_FRAMES_WARNING]);
  const v = frames(rec, VIDEO_TRACK_ID);
  assert.ok(v.some((f) => f.pts > f.dts));
  // Decode order stays monotonic even when presentation order is not.
  for (let i = 1; i < v.length; i++) assert.ok(v[i].dts > v[i - 1].dts);
});

test('without metadata, frames are held until the missing kind has had 1 s, then all are pushed', () => {
  const tags = flvTags(['-tune', 'zerolatency'], false).filter((t) => t.type !== FlvTagType.Script);
  const { ingest, rec } = setup();
  const early = tags.filter((t) => t.timestamp < 900);
  feed(ingest, early);
  assert.equal(rec.events.length, 0, 'nothing published while audio may still come');
  feed(ingest, tags.slice(early.length));
  const sets = trackSets(rec);
  assert.equal(sets.length, 1);
  assert.deepStrictEqual(
    sets[0].map((t) => t.kind),
    ['video'],
  );
  assert.equal(frames(rec, VIDEO_TRACK_ID).length, 60, 'the held frames were not lost');
});

test('frames that stop coming are still published once the wait times out', (t) => {
  mock.timers.enable({ apis: ['setTimeout'] });
  t.after(() => mock.timers.reset());
  const tags = flvTags(['-tune', 'zerolatency'], false).filter((tag) => tag.type === FlvTagType.Video);
  const { ingest, rec } = setup();
  feed(ingest, tags.slice(0, 4)); // sequence header and three frames within 100 ms, then silence
  assert.equal(rec.events.length, 0);
  mock.timers.tick(2999);
  assert.equal(rec.events.length, 0);
  mock.timers.tick(1);
  assert.equal(trackSets(rec).length, 1);
  assert.equal(frames(rec, VIDEO_TRACK_ID).length, 3);
});

test('metadata naming only a video codec publishes at the video sequence header, without waiting', () => {
  const tags = flvTags(['-tune', 'zerolatency'], false);
  assert.equal(tags[0].type, FlvTagType.Script);
  const { ingest, rec } = setup();
  feed(ingest, tags.slice(0, 2)); // onMetaData, AVC sequence header
  assert.deepStrictEqual(
    trackSets(rec).map((s) => s.map((t) => t.kind)),
    [['video']],
  );
});

test('metadata announcing audio keeps the tracks waiting for the audio sequence header', () => {
  const tags = flvTags(['-tune', 'zerolatency']);
  const script = tags.filter((t) => t.type === FlvTagType.Script);
  const video = tags.filter((t) => t.type === FlvTagType.Video);
  const audio = tags.filter((t) => t.type === FlvTagType.Audio);
  const { ingest, rec } = setup();
  feed(ingest, [...script, ...video.slice(0, 20)]);
  assert.equal(rec.events.length, 0);
  feed(ingest, audio.slice(0, 1));
  assert.deepStrictEqual(
    trackSets(rec)[0].map((t) => t.codec),
    ['h264', 'aac'],
  );
  assert.equal(frames(rec, VIDEO_TRACK_ID).length, 19);
});

test('an avcC with 2-byte NAL lengths is rewritten, and frames relengthed to 4 bytes', () => {
  const tags = flvTags(['-tune', 'zerolatency'], false).filter((t) => t.type === FlvTagType.Video);
  const reference = setup();
  feed(reference.ingest, tags, 0);
  const twoByte = tags.map((t, i) => {
    if (i === 0) {
      const body = Uint8Array.prototype.slice.call(t.body);
      body[5 + 4] = 0xfd; // lengthSizeMinusOne = 1
      return { ...t, body };
    }
    const nalus = splitAvcc(t.body.subarray(5));
    const parts = [t.body.subarray(0, 5)];
    for (const n of nalus) parts.push(Uint8Array.from([n.length >> 8, n.length & 0xff]), n);
    return { ...t, body: Buffer.concat(parts) };
  });
  const { ingest, rec } = setup();
  feed(ingest, twoByte, 0);
  const track = trackSets(rec)[0][0];
  assert.equal(track.config[4] & 0x03, 3, 'the Track config declares 4-byte lengths');
  const got = frames(rec, VIDEO_TRACK_ID);
  const want = frames(reference.rec, VIDEO_TRACK_ID);
  assert.equal(got.length, want.length);
  got.forEach((f, i) => {
    assert.deepStrictEqual(Buffer.from(f.data), Buffer.from(want[i].data));
  });
});

test('AAC is re-anchored to the RTMP clock when it drifts more than 100 ms', () => {
  const tags = flvTags([], true).filter((t) => t.type === FlvTagType.Audio);
  const { ingest, rec } = setup();
  const firstHalf = tags.filter((t) => t.timestamp < 1000);
  feed(ingest, firstHalf);
  // A 500 ms gap in the audio (a publisher's hiccup): the next frame follows the clock, not the sample count.
  const later = tags.slice(firstHalf.length).map((t) => ({ ...t, timestamp: t.timestamp + 500 }));
  feed(ingest, later);
  const a = frames(rec, AUDIO_TRACK_ID);
  const jump = a.findIndex((f, i) => i > 0 && f.dts !== a[i - 1].dts + 1024);
  assert.ok(jump > 0, 'the timeline jumped once');
  assert.equal(a[jump].dts, Math.round((later[0].timestamp * 48000) / 1000));
  for (let i = jump + 1; i < a.length; i++) assert.equal(a[i].dts, a[i - 1].dts + 1024);
});

test('a different sequence header mid-stream sets the tracks again', () => {
  const first = flvTags(['-tune', 'zerolatency'], false, '320x240').filter(
    (t) => t.type === FlvTagType.Video,
  );
  const second = flvTags(['-tune', 'zerolatency'], false, '640x360')
    .filter((t) => t.type === FlvTagType.Video)
    .map((t) => ({ ...t, timestamp: t.timestamp + 2000 }));
  const { ingest, rec } = setup();
  feed(ingest, [...first, first[0]], 1000); // the repeated identical header changes nothing
  feed(ingest, second, 1000);
  const sets = trackSets(rec);
  assert.deepStrictEqual(
    sets.map((s) => `${s[0].width}x${s[0].height}`),
    ['320x240', '640x360'],
  );
  assert.equal(frames(rec, VIDEO_TRACK_ID).length, 120);
});

test('the publish ends exactly once, however often it is ended', () => {
  const { registry, ingest, rec } = setup();
  feed(ingest, flvTags(['-tune', 'zerolatency'], false).slice(0, 5));
  ingest.end();
  ingest.end();
  registry.unpublish(ingest.stream, ingest);
  assert.equal(rec.unpublished, 1);
  assert.equal(ingest.stream.live, false);
  assert.equal(registry.get('live/cam1'), ingest.stream, 'kept while the test consumer holds it');
});
