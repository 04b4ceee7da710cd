/**
 * RTMP → WHEP for the codecs beyond H.264: VP9 and AV1 (with Opus audio) published as Enhanced RTMP in
 * real time, played by headless Chromium over WHEP. ffmpeg (libvpx, libaom) encodes; its fragmented MP4 is
 * demuxed into Tracks and Frames (independent of our FLV code), which our FLV writer frames as E-RTMP tags
 * for the RTMP test client, as in src/protocols/rtmp/enhanced.test.ts. The stream's feed packetizes each frame
 * once (RFC 9628, the AOMedia AV1 RTP spec) and the browser decodes the codec it negotiated. VP8 takes the
 * same path (RFC 7741 packetizer) but is not here: ffmpeg 5.1 cannot put VP8 in MP4, the oracle's container.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Frame, Track } from '../../src/media/Frame.ts';
import { audioFrameTagHeader, audioSequenceStartTag } from '../../src/media/flv/audio.ts';
import { videoFrameTagHeader, videoSequenceStartTag } from '../../src/media/flv/video.ts';
import { splitVp9Superframe } from '../../src/media/rtp/vp9.ts';
import { demuxFragmentedMp4, ffmpegFragmentedMp4, interleave } from '../../src/media/testing/mp4.ts';
import { Amf0EcmaArray } from '../../src/protocols/rtmp/amf0.ts';
import { fourCcNumber } from '../../src/protocols/rtmp/codecs.ts';
import { dataMessage, MessageType } from '../../src/protocols/rtmp/messages.ts';
import { RtmpTestClient } from '../../src/protocols/rtmp/testing/RtmpTestClient.ts';
import { type RunningServer, startServer } from '../../src/server.ts';
import { type ChromiumSession, closeServerThenBrowser, launchChromium } from '../helpers/browser.ts';
import { waitFor } from '../helpers/processes.ts';
import { closeWhepViewer, playWhep, whepStatsOver } from '../helpers/whepPage.ts';

const SOURCES = [
  {
    name: 'VP9',
    fourCc: 'vp09',
    codec: ['-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-cpu-used', '8', '-row-mt', '1'],
  },
  { name: 'AV1', fourCc: 'av01', codec: ['-c:v', 'libaom-av1', '-usage', 'realtime', '-cpu-used', '8'] },
] as const;

/** Seconds of source encoded once; the publisher loops it. */
const CLIP_SECONDS = 2;
const WIDTH = 320;

let server: RunningServer;
let browser: ChromiumSession;
const clips = new Map<string, { tracks: Track[]; frames: Frame[] }>();

before(async () => {
  // Encoded before the server starts: ffmpegFragmentedMp4 runs ffmpeg synchronously.
  for (const source of SOURCES) {
    const { tracks, frames } = demuxFragmentedMp4(
      ffmpegFragmentedMp4([
        ...['-f', 'lavfi', '-i', `testsrc2=size=${WIDTH}x180:rate=30`],
        ...['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000'],
        ...['-t', String(CLIP_SECONDS), '-g', '15', '-b:v', '600k', ...source.codec],
        ...['-c:a', 'libopus', '-b:a', '64k'],
      ]),
    );
    const video = tracks.find((t) => t.kind === 'video')!;
    let clip = frames;
    if (source.name === 'VP9') {
      // libvpx's hidden alt-ref frames come in superframes: the case browsers dropped when it was split.
      const superframes = frames.filter(
        (f) => f.trackId === video.id && splitVp9Superframe(f.data).length > 1,
      );
      assert.ok(superframes.length > 0, 'the VP9 clip has superframes');
    } else if (source.name === 'AV1') {
      // As from an encoder that keeps the sequence header in av1C only: the feed must put it back in band.
      clip = frames.map((f) => (f.trackId === video.id ? { ...f, data: withoutSequenceHeader(f.data) } : f));
      assert.ok(
        clip.some((f, i) => f.data.length < frames[i].data.length),
        'sequence headers were removed',
      );
    }
    clips.set(source.name, { tracks, frames: interleave(tracks, clip) });
  }
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { host: '127.0.0.1', port: 0 },
    webrtc: { udpPort: 0, inactivityTimeoutMs: 3000 },
    hls: { enabled: false },
    log: { level: 'warn' },
  });
  browser = await launchChromium();
});

after(() => closeServerThenBrowser(server, browser));

/** An AV1 temporal unit (OBUs with obu_size) without its sequence header OBUs (type 1). */
function withoutSequenceHeader(tu: Uint8Array): Uint8Array {
  const kept: Uint8Array[] = [];
  for (let p = 0; p < tu.length; ) {
    const header = tu[p];
    let q = p + (header & 0x04 ? 2 : 1);
    let size = 0;
    for (let i = 0; i < 8; i++) {
      const b = tu[q++];
      size += (b & 0x7f) * 2 ** (7 * i);
      if (!(b & 0x80)) break;
    }
    if (((header >> 3) & 0x0f) !== 1) kept.push(tu.subarray(p, q + size));
    p = q + size;
  }
  return Buffer.concat(kept);
}

const ms = (value: number, timescale: number) => Math.round((value * 1000) / timescale);

/**
 * Publishes the clip over RTMP as E-RTMP in real time, looping it with timestamps that keep growing, until
 * `stop()` or `maxSeconds`.
 */
async function publishLooped(
  name: string,
  fourCc: string,
  path: string,
  maxSeconds: number,
): Promise<{ stop: () => void; done: Promise<void> }> {
  const { tracks, frames } = clips.get(name)!;
  const byId = new Map(tracks.map((t) => [t.id, t]));
  const video = tracks.find((t) => t.kind === 'video')!;
  const audio = tracks.find((t) => t.kind === 'audio')!;
  const port = Number(new URL(server.rtmpUrl).port);
  const publisher = await RtmpTestClient.open(port);
  const [app, stream] = path.split('/');
  assert.equal((await publisher.publish(app, stream)).code, 'NetStream.Publish.Start');
  const meta = new Amf0EcmaArray();
  meta.videocodecid = fourCcNumber(fourCc);
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
  let stopped = false;
  const started = Date.now();
  const done = (async () => {
    for (let loop = 0; !stopped && Date.now() - started < maxSeconds * 1000; loop++) {
      const offset = loop * CLIP_SECONDS * 1000;
      for (const f of frames) {
        if (stopped) break;
        const track = byId.get(f.trackId)!;
        const ts = ms(f.dts, track.timescale) + offset;
        const wait = started + ts - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        if (track.kind === 'video') {
          const header = videoFrameTagHeader(track, f.keyframe, 0);
          media(MessageType.Video, ts, Buffer.concat([header, f.data]));
        } else {
          media(MessageType.Audio, ts, Buffer.concat([audioFrameTagHeader(track), f.data]));
        }
      }
    }
    publisher.close();
  })();
  return {
    stop: () => {
      stopped = true;
    },
    done,
  };
}

for (const source of SOURCES) {
  test(`E-RTMP ${source.name} + Opus plays over WHEP in Chromium, ${source.name} negotiated`, async () => {
    const path = `live/${source.name.toLowerCase()}`;
    const publishing = await publishLooped(source.name, source.fourCc, path, 20);
    try {
      await waitFor(`${path} to be ready`, () => server.registry.get(path)?.ready);
      const page = await browser.newPage();
      await page.goto(`${server.httpUrl}/healthz`);
      await playWhep(page, `${server.httpUrl}/whep/${path}`);
      // The first frame, then two seconds of playback.
      const { first, second } = await whepStatsOver(page, 2000);
      await closeWhepViewer(page);
      console.log(`${source.name} RTMP -> WHEP: ${JSON.stringify({ first, second })}`);
      assert.equal(second.videoCodec, `video/${source.name}`);
      assert.equal(second.audioCodec, 'audio/opus');
      const decoded = second.framesDecoded - first.framesDecoded;
      // 30 fps published; a loaded 2-core machine decodes fewer, but a steady flow.
      assert.ok(decoded >= 20, `${decoded} ${source.name} frames decoded in 2 s`);
      assert.ok(
        second.audioPackets - first.audioPackets > 50,
        `Opus packets flow: ${first.audioPackets} -> ${second.audioPackets}`,
      );
      assert.equal(second.width, WIDTH);
      const info = (await (await fetch(`${server.httpUrl}/api/v1/streams/${path}`)).json()) as {
        warnings: string[];
      };
      assert.deepEqual(info.warnings, []);
      await page.close();
    } finally {
      publishing.stop();
      await publishing.done;
    }
  });
}
