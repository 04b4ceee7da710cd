/**
 * Enhanced RTMP over the wire: HEVC, AV1 and VP9 video with Opus audio, which ffmpeg 5.1 cannot publish over
 * RTMP. ffmpeg encodes, its fragmented MP4 is demuxed into the Tracks and Frames the core should end up with
 * (an oracle independent of our FLV code), our FLV writer frames them as E-RTMP tags, a test client publishes
 * them, and another plays them back.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { log } from '../../core/log.ts';
import { StreamRegistry } from '../../core/StreamRegistry.ts';
import type { Frame, Track } from '../../media/Frame.ts';
import { audioFrameTagHeader, audioSequenceStartTag, parseAudioTag } from '../../media/flv/audio.ts';
import { parseVideoTag, videoFrameTagHeader, videoSequenceStartTag } from '../../media/flv/video.ts';
import { demuxFragmentedMp4, ffmpegFragmentedMp4, interleave } from '../../media/testing/mp4.ts';
import { Amf0EcmaArray } from './amf0.ts';
import { fourCcNumber } from './codecs.ts';
import { dataMessage, MessageType } from './messages.ts';
import { RtmpServer } from './RtmpServer.ts';
import { RtmpTestClient } from './testing/RtmpTestClient.ts';

const quiet = log.child({});
quiet.level = 'silent';

const SOURCES = [
  {
    name: 'HEVC',
    fourCc: 'hvc1',
    codec: ['-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', 'log-level=error'],
  },
  { name: 'AV1', fourCc: 'av01', codec: ['-c:v', 'libaom-av1', '-cpu-used', '8', '-usage', 'realtime'] },
  { name: 'VP9', fourCc: 'vp09', codec: ['-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-cpu-used', '8'] },
];

function ms(value: number, timescale: number): number {
  return Math.round((value * 1000) / timescale);
}

for (const source of SOURCES) {
  test(`E-RTMP ${source.name} + Opus: published over RTMP, becomes the same tracks and frames, plays back`, async (t) => {
    const { tracks: expected, frames: demuxed } = demuxFragmentedMp4(
      ffmpegFragmentedMp4([
        ...[
          '-f',
          'lavfi',
          '-i',
          'testsrc2=size=160x96:rate=30',
          '-f',
          'lavfi',
          '-i',
          'sine=sample_rate=48000',
        ],
        ...['-t', '1', '-g', '15', ...source.codec, '-c:a', 'libopus'],
      ]),
    );
    // Our track ids: video 1, audio 2, whatever the MP4 said.
    const byId = new Map(expected.map((tr) => [tr.id, tr]));
    const id = (trackId: number) => (byId.get(trackId)!.kind === 'video' ? 1 : 2);
    const video = expected.find((tr) => tr.kind === 'video')!;
    const audio = expected.find((tr) => tr.kind === 'audio')!;
    const frames = interleave(expected, demuxed);

    const registry = new StreamRegistry();
    const server = new RtmpServer({
      registry,
      host: '127.0.0.1',
      port: 0,
      authorizePublish: () => null,
      log: quiet,
    });
    await server.listen();
    t.after(() => server.close());
    const got: { tracks: (readonly Track[])[]; frames: Frame[] } = { tracks: [], frames: [] };
    registry.on('published', (stream) =>
      stream.addConsumer({
        onTracks: (tr) => got.tracks.push(tr),
        onFrame: (f) => got.frames.push(f),
        onUnpublish: () => {},
      }),
    );

    const publisher = await RtmpTestClient.open(server.address.port);
    assert.equal((await publisher.publish('live', 'cam1')).code, 'NetStream.Publish.Start');
    const meta = new Amf0EcmaArray();
    meta.videocodecid = fourCcNumber(source.fourCc);
    meta.audiocodecid = fourCcNumber('Opus');
    publisher.send(dataMessage(1, 0, '@setDataFrame', 'onMetaData', meta));
    const media = (typeId: number, timestamp: number, body: Uint8Array) =>
      publisher.send({
        csid: typeId === MessageType.Video ? 6 : 4,
        timestamp,
        typeId,
        streamId: 1,
        payload: body,
      });
    media(MessageType.Video, 0, videoSequenceStartTag(video));
    media(MessageType.Audio, 0, audioSequenceStartTag(audio));
    for (const f of frames) {
      const track = byId.get(f.trackId)!;
      const ts = ms(f.dts, track.timescale);
      if (track.kind === 'video') {
        const header = videoFrameTagHeader(track, f.keyframe, ms(f.pts, track.timescale) - ts);
        media(MessageType.Video, ts, Buffer.concat([header, f.data]));
      } else {
        media(MessageType.Audio, ts, Buffer.concat([audioFrameTagHeader(track), f.data]));
      }
    }

    const deadline = Date.now() + 5000;
    while (got.frames.length < frames.length && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    assert.equal(got.tracks.length, 1, 'setTracks once');
    const [gv, ga] = got.tracks[0];
    for (const [mine, theirs] of [
      [gv, video],
      [ga, audio],
    ] as const) {
      assert.equal(mine.codec, theirs.codec);
      assert.equal(mine.codecString, theirs.codecString);
      assert.deepStrictEqual(Buffer.from(mine.config), Buffer.from(theirs.config));
      if (theirs.width !== undefined && source.name !== 'VP9') assert.equal(mine.width, theirs.width);
      if (theirs.channels !== undefined) assert.equal(mine.channels, theirs.channels);
    }
    assert.equal(gv.timescale, 90000);
    assert.equal(ga.timescale, 48000);
    assert.equal(got.frames.length, frames.length);
    got.frames.forEach((f, i) => {
      const want = frames[i];
      const track = byId.get(want.trackId)!;
      assert.equal(f.trackId, id(want.trackId), `frame ${i}`);
      assert.equal(f.keyframe, want.keyframe, `frame ${i} keyframe`);
      assert.deepStrictEqual(Buffer.from(f.data), Buffer.from(want.data), `frame ${i} data`);
      const scale = f.trackId === 1 ? 90 : 48;
      assert.equal(f.dts, ms(want.dts, track.timescale) * scale, `frame ${i} dts`);
      assert.equal(f.pts, ms(want.pts, track.timescale) * scale, `frame ${i} pts`);
    });

    // A player gets E-RTMP sequence starts carrying the same records, then the frames.
    const player = await RtmpTestClient.open(server.address.port);
    assert.equal((await player.play('live', 'cam1')).code, 'NetStream.Play.Reset');
    const until = Date.now() + 5000;
    const tags = () =>
      player.messages.filter((m) => m.typeId === MessageType.Video || m.typeId === MessageType.Audio);
    while (tags().length < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    const [vh, ah, first] = tags();
    const vp = parseVideoTag(vh.payload);
    const ap = parseAudioTag(ah.payload);
    assert.ok(vp.kind === 'config' && ap.kind === 'config');
    assert.deepStrictEqual(Buffer.from(vp.config), Buffer.from(gv.config));
    assert.deepStrictEqual(Buffer.from(ap.config), Buffer.from(ga.config));
    const fp = parseVideoTag(first.payload);
    assert.ok(fp.kind === 'frame' && fp.keyframe, 'playback starts on a keyframe');
    publisher.close();
    player.close();
  });
}
