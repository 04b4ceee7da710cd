/**
 * An independent WebRTC stack as a second client: Google's libwebrtc (through @roamhq/wrtc, in a child
 * process, see test/helpers/wrtcPeers.ts) publishes over WHIP and plays over WHEP. The publisher feeds I420
 * frames to an RTCVideoSource and 48 kHz PCM to an RTCAudioSource, so libwebrtc's own encoders, packetizers,
 * RTCP and congestion control talk to our server; the viewer's RTCVideoSink must get frames of the size sent
 * and its RTCAudioSink decoded Opus. Then DELETE ends both sessions, checked through the API. libwebrtc here
 * is built without H.264 (no proprietary codecs), so each of its video codecs gets a run: VP8, VP9, AV1.
 */
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type RunningServer, startServer } from '../../src/server.ts';
import { waitFor } from '../helpers/processes.ts';
import type { Played } from '../helpers/wrtcPeers.ts';

let server: RunningServer;

before(async () => {
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { enabled: false },
    webrtc: { udpPort: 0 },
    log: { level: 'warn' },
  });
});

after(async () => {
  await server?.close();
});

async function sessionsOn(stream: string): Promise<{ kind: string; path: string }[]> {
  const { sessions } = (await (await fetch(`${server.httpUrl}/api/v1/webrtc/sessions`)).json()) as {
    sessions: { kind: string; path: string }[];
  };
  return sessions.filter((s) => s.path === stream);
}

for (const codec of ['VP8', 'VP9', 'AV1'] as const) {
  test(`libwebrtc publishes ${codec} and Opus over WHIP; a second libwebrtc peer decodes both over WHEP`, async () => {
    const stream = `live/wrtc-${codec.toLowerCase()}`;
    const child = fork(join(import.meta.dirname, '../helpers/wrtcPeers.ts'), [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let exitCode: number | null;
    try {
      const played = await new Promise<Played>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error('no result from the libwebrtc peers in 60 s')),
          60_000,
        );
        child.once('message', (m: Played | { type: 'error'; message: string }) => {
          clearTimeout(timer);
          if (m.type === 'played') resolve(m);
          else reject(new Error(m.message));
        });
        child.send({ type: 'run', base: server.httpUrl, stream, codec });
      });
      assert.equal(/^a=rtpmap:\d+ ([\w-]+)\/90000/m.exec(played.whip.answer)?.[1], codec, played.whip.answer);
      assert.match(played.whip.answer, /^a=rtpmap:\d+ opus\/48000\/2/m);
      assert.equal(/^a=rtpmap:\d+ ([\w-]+)\/90000/m.exec(played.whep.answer)?.[1], codec, played.whep.answer);
      assert.ok(played.frames >= 30, `${played.frames} frames`);
      assert.deepEqual(
        played.lastFrames,
        Array.from({ length: 10 }, () => ({ width: 320, height: 240 })),
        'decoded frames have the size the publisher sent',
      );
      assert.ok(played.framesDecoded >= 30, `libwebrtc's inbound-rtp framesDecoded: ${played.framesDecoded}`);
      assert.equal(played.audioRate, 48_000);
      assert.ok(played.audioBlocks >= 100, `${played.audioBlocks} blocks of 10 ms audio`);
      assert.deepEqual((await sessionsOn(stream)).map((s) => s.kind).sort(), ['whep', 'whip']);

      for (const location of [played.whep.location, played.whip.location]) {
        const response = await fetch(location, { method: 'DELETE' });
        assert.equal(response.status, 200, await response.text());
      }
      await waitFor('both sessions freed', async () => (await sessionsOn(stream)).length === 0);
      const live = await fetch(`${server.httpUrl}/api/v1/streams/${stream}`);
      assert.equal(live.status, 404, 'the stream ended with its WHIP session');
    } finally {
      if (child.connected) child.send({ type: 'close' });
      exitCode = await exited;
    }
    assert.equal(exitCode, 0, 'the libwebrtc child closed its peers and exited');
  });
}
