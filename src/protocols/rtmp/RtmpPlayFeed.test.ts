import assert from 'node:assert/strict';
import { test } from 'node:test';
import { log } from '../../core/log.ts';
import type { Publisher } from '../../core/Stream.ts';
import { StreamRegistry } from '../../core/StreamRegistry.ts';
import type { Frame, Track } from '../../media/Frame.ts';
import { parseAudioTag } from '../../media/flv/audio.ts';
import { parseVideoTag } from '../../media/flv/video.ts';
import { decodeAmf0Sequence } from './amf0.ts';
import { ChunkReader, ChunkWriter } from './chunk.ts';
import { MessageType, type RtmpMessage, setChunkSizeMessage } from './messages.ts';
import { type RtmpOutput, RtmpPlayer } from './RtmpPlayer.ts';
import { RtmpPlayFeed } from './RtmpPlayFeed.ts';

const quiet = log.child({});
quiet.level = 'silent';
const CHUNK = 4096;

const VIDEO: Track = {
  id: 1,
  kind: 'video',
  codec: 'h264',
  timescale: 90000,
  config: Uint8Array.from([1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 2, 0x67, 0x64, 1, 0, 1, 0x68]),
  codecString: 'avc1.64001f',
  width: 640,
  height: 360,
};
const AUDIO: Track = {
  id: 2,
  kind: 'audio',
  codec: 'aac',
  timescale: 48000,
  config: Uint8Array.from([0x11, 0x90]),
  codecString: 'mp4a.40.2',
  sampleRate: 48000,
  channels: 2,
};

class FakeOutput implements RtmpOutput {
  readonly writes: Uint8Array[] = [];
  backlogBytes = 0;
  readonly #writer = new ChunkWriter();

  constructor() {
    this.send(setChunkSizeMessage(CHUNK));
  }

  send(message: RtmpMessage): void {
    this.writes.push(this.#writer.encode(message));
  }

  write(bytes: Uint8Array): void {
    this.writes.push(bytes);
  }

  messages(): RtmpMessage[] {
    const out: RtmpMessage[] = [];
    const reader = new ChunkReader({ onMessage: (m) => out.push(m) });
    for (const w of this.writes) reader.push(w);
    return out.slice(1);
  }
}

function describe(m: RtmpMessage): string {
  if (m.typeId === MessageType.CommandAmf0 || m.typeId === MessageType.DataAmf0) {
    const [name, , , info] = decodeAmf0Sequence(m.payload);
    return name === 'onStatus' ? `onStatus ${(info as { code: string }).code}` : String(name);
  }
  if (m.typeId === MessageType.Video) {
    const p = parseVideoTag(m.payload);
    return p.kind === 'frame' ? `video ${m.timestamp}${p.keyframe ? ' key' : ''}` : `video ${p.kind}`;
  }
  if (m.typeId === MessageType.Audio) {
    const p = parseAudioTag(m.payload);
    return p.kind === 'frame' ? `audio ${m.timestamp}` : `audio ${p.kind}`;
  }
  if (m.typeId === MessageType.UserControl && m.payload[1] === 0) return 'StreamBegin';
  return `type ${m.typeId}`;
}

function videoFrame(ms: number, keyframe: boolean, ctsMs = 0): Frame {
  return {
    trackId: 1,
    dts: ms * 90,
    pts: (ms + ctsMs) * 90,
    duration: 0,
    keyframe,
    data: Uint8Array.from([0, 0, 0, 2, keyframe ? 0x65 : 0x41, ms & 0xff]),
    arrival: ms,
  };
}

function audioFrame(ms: number): Frame {
  const dts = (ms * 48000) / 1000;
  return {
    trackId: 2,
    dts,
    pts: dts,
    duration: 1024,
    keyframe: true,
    data: Uint8Array.from([0x21, ms & 0xff]),
    arrival: ms,
  };
}

function setup() {
  const registry = new StreamRegistry();
  const publisher: Publisher = { protocol: 'test', remoteAddress: '127.0.0.1', id: 'p', close: () => {} };
  const stream = registry.publish('live/cam1', publisher);
  let emptied = 0;
  const feed = new RtmpPlayFeed(stream, CHUNK, undefined, () => emptied++);
  const player = (output: FakeOutput, maxBacklogBytes = 1 << 20) =>
    new RtmpPlayer({
      output,
      streamId: 1,
      stream,
      feed,
      registry,
      chunkSize: CHUNK,
      maxBacklogBytes,
      log: quiet,
    });
  return { registry, publisher, stream, feed, player, emptied: () => emptied };
}

test('a player joining mid-GOP gets metadata, sequence headers, then the GOP from its keyframe', () => {
  const { stream, player } = setup();
  stream.setTracks([VIDEO, AUDIO]);
  stream.pushFrame(videoFrame(0, true));
  stream.pushFrame(audioFrame(10));
  stream.pushFrame(videoFrame(33, false, 66));
  const out = new FakeOutput();
  player(out).start();
  stream.pushFrame(videoFrame(66, false));
  const got = out.messages();
  assert.deepStrictEqual(got.map(describe), [
    'onMetaData',
    'video config',
    'audio config',
    'video 0 key',
    'audio 10',
    'video 33',
    'video 66',
  ]);
  const [, meta] = decodeAmf0Sequence(got[0].payload) as [string, Record<string, unknown>];
  assert.equal(meta.width, 640);
  assert.equal(meta.videocodecid, 7);
  assert.equal(meta.audiocodecid, 10);
  assert.equal(meta.audiosamplerate, 48000);
  const frame = parseVideoTag(got[5].payload);
  assert.ok(frame.kind === 'frame');
  assert.equal(frame.compositionTime, 66);
  assert.deepStrictEqual(frame.data, videoFrame(33, false).data);
  assert.equal(stream.viewers.get('rtmp'), 1);
});

test('every player on message stream 1 is handed the very same bytes for a frame', () => {
  const { stream, player } = setup();
  stream.setTracks([VIDEO, AUDIO]);
  const a = new FakeOutput();
  const b = new FakeOutput();
  player(a).start();
  player(b).start();
  const before = [a.writes.length, b.writes.length];
  stream.pushFrame(videoFrame(0, true));
  stream.pushFrame(audioFrame(5));
  const wa = a.writes.slice(before[0]);
  const wb = b.writes.slice(before[1]);
  assert.equal(wa.length, 2);
  assert.equal(wa[0], wb[0], 'same Uint8Array instance, built once');
  assert.equal(wa[1], wb[1]);
});

test('a player whose socket backs up skips to the next keyframe; the others are untouched', () => {
  const { stream, player } = setup();
  stream.setTracks([VIDEO]);
  const fast = new FakeOutput();
  const slow = new FakeOutput();
  player(fast).start();
  const slowPlayer = player(slow, 10_000);
  slowPlayer.start();
  stream.pushFrame(videoFrame(0, true));
  slow.backlogBytes = 50_000;
  stream.pushFrame(videoFrame(33, false));
  stream.pushFrame(videoFrame(66, false));
  slow.backlogBytes = 0; // drained, but mid-GOP: wait for a keyframe
  stream.pushFrame(videoFrame(100, false));
  stream.pushFrame(videoFrame(133, true));
  stream.pushFrame(videoFrame(166, false));
  const frames = (o: FakeOutput) =>
    o
      .messages()
      .map(describe)
      .filter((d) => d.startsWith('video ') && d !== 'video config');
  assert.deepStrictEqual(frames(fast), [
    'video 0 key',
    'video 33',
    'video 66',
    'video 100',
    'video 133 key',
    'video 166',
  ]);
  assert.deepStrictEqual(frames(slow), ['video 0 key', 'video 133 key', 'video 166']);
  assert.equal(slowPlayer.subscriber.skips, 1);
});

test('unpublish notifies and keeps the player; a republish sends new headers and continues the clock', () => {
  const { registry, publisher, stream, player } = setup();
  stream.setTracks([VIDEO]);
  const out = new FakeOutput();
  player(out).start();
  stream.pushFrame(videoFrame(0, true));
  stream.pushFrame(videoFrame(5000, false));
  registry.unpublish(stream, publisher);
  assert.equal(registry.get('live/cam1'), stream, 'the waiting player keeps the stream registered');
  const again = registry.publish('live/cam1', { ...publisher, id: 'p2' });
  assert.equal(again, stream);
  again.setTracks([{ ...VIDEO, width: 1280, height: 720 }]);
  again.pushFrame(videoFrame(0, true)); // the new publisher's clock starts over
  again.pushFrame(videoFrame(33, false));
  assert.deepStrictEqual(out.messages().map(describe), [
    'onMetaData',
    'video config',
    'video 0 key',
    'video 5000',
    'onStatus NetStream.Play.UnpublishNotify',
    'StreamBegin',
    'onStatus NetStream.Play.PublishNotify',
    'onMetaData',
    'video config',
    'video 5001 key',
    'video 5034',
  ]);
});

test('closing the last player detaches the feed, uncounts the viewer and lets the registry drop the stream', () => {
  const { registry, publisher, stream, player, emptied } = setup();
  stream.setTracks([VIDEO]);
  const p = player(new FakeOutput());
  p.start();
  assert.equal(stream.consumers.size, 1);
  registry.unpublish(stream, publisher);
  assert.equal(registry.get('live/cam1'), stream);
  p.close();
  p.close();
  assert.equal(stream.consumers.size, 0);
  assert.equal(stream.viewerCount, 0);
  assert.equal(emptied(), 1);
  assert.equal(registry.get('live/cam1'), undefined);
});
