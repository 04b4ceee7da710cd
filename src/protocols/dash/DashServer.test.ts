import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { findBoxes, parseTfhd, readBoxes } from '../../media/fmp4/reader.ts';
import { concatBytes } from '../../media/testing/ffmpeg.ts';
import { probeBytes } from '../../media/testing/mp4.ts';
import { type RunningServer, startServer } from '../../server.ts';
import { type Clip, ClipSource, h264AacClip } from '../hls/testing/clip.ts';

/*
 * LL-DASH over real HTTP, fed frame by frame with real H.264 + AAC, so each test decides when a segment begins
 * and ends.
 */

let server: RunningServer;
let clip: Clip;

before(async () => {
  clip = h264AacClip();
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { enabled: false },
    log: { level: 'warn' },
    hls: { blockTimeoutMs: 2000, endedRetentionMs: 3000 },
  });
});

after(async () => {
  await server?.close();
});

const source = (path: string) => new ClipSource(server.registry, path, clip);
const url = (path: string) => `${server.httpUrl}${path}`;
const attr = (xml: string, element: string, name: string, nth = 0) =>
  [...xml.matchAll(new RegExp(`<${element}[^>]*\\s${name}="([^"]*)"`, 'g'))][nth]?.[1];

async function manifest(path: string): Promise<string> {
  const res = await fetch(url(`/dash/${path}/manifest.mpd`));
  assert.equal(res.status, 200);
  return res.text();
}

describe('LL-DASH', () => {
  it('describes each track with its own template, offset and timescale, anchored where the newest frame is live', async () => {
    const pushedAt = Date.now();
    const src = source('d/mpd');
    src.pushUntil(4.1);
    const mpd = await manifest('d/mpd');
    const ast = Date.parse(attr(mpd, 'MPD', 'availabilityStartTime')!);
    // 4.1 s of media arrived at once: the newest frame is the live edge, so the timeline began ~4 s before the
    // push (an anchor at the first frame's arrival would put every DASH player that much behind its target).
    const expected = pushedAt - 4100;
    assert.ok(
      Math.abs(ast - expected) < 1000,
      `availabilityStartTime ${ast - expected} ms from push − 4.1 s`,
    );
    // Early on the time-shift window is only what exists: 4.1 s of media, of which one whole segment is done.
    const depth = Number(/^PT(\d+(?:\.\d+)?)S$/.exec(attr(mpd, 'MPD', 'timeShiftBufferDepth') ?? '')?.[1]);
    assert.ok(depth >= 1 && depth <= 4, `timeShiftBufferDepth ${depth} s within the 4.1 s produced`);
    // Latency@referenceId="0" names the producer reference time: the Period start's wall clock, as the AST.
    assert.deepEqual(
      [0, 1].map((i) => [
        attr(mpd, 'ProducerReferenceTime', 'id', i),
        attr(mpd, 'ProducerReferenceTime', 'type', i),
        attr(mpd, 'ProducerReferenceTime', 'presentationTime', i),
        Date.parse(attr(mpd, 'ProducerReferenceTime', 'wallClockTime', i)!),
      ]),
      [
        ['0', 'encoder', '0', ast],
        ['0', 'encoder', '0', ast],
      ],
    );
    assert.equal(attr(mpd, 'Period', 'id'), '1');
    assert.deepEqual(
      [0, 1].map((i) => [
        attr(mpd, 'SegmentTemplate', 'timescale', i),
        attr(mpd, 'SegmentTemplate', 'duration', i),
        attr(mpd, 'SegmentTemplate', 'startNumber', i),
        attr(mpd, 'SegmentTemplate', 'presentationTimeOffset', i),
      ]),
      [
        ['90000', '180000', '0', '0'],
        ['48000', '96000', '0', '0'],
      ],
    );
    src.unpublish();
  });

  it("holds the MPD until the timeline's clock anchor settled, then serves the settled one", async () => {
    const src = source('d/settle');
    src.pushUntil(1.1);
    const packager = server.hls!.packagers.get('d/settle')!;
    assert.equal(packager.anchorSettling, true);
    const held = server.dash!.counters.heldManifests;
    let answered = false;
    const pending = manifest('d/settle').then((text) => {
      answered = true;
      return text;
    });
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(answered, false, 'not served while availabilityStartTime may still move');
    src.pushUntil(4.1);
    const mpd = await pending;
    assert.equal(packager.anchorSettling, false);
    assert.equal(server.dash!.counters.heldManifests, held + 1);
    assert.equal(
      Date.parse(attr(mpd, 'MPD', 'availabilityStartTime')!),
      Math.round(packager.timeline!.wallMs),
      'the anchor it names is the settled one',
    );
    assert.equal(
      attr(mpd, 'MPD', 'minimumUpdatePeriod'),
      'PT1S',
      'settled, its time-shift window still growing: reloads every second, the step it grows by',
    );
    src.unpublish();
  });

  it('serves a held MPD once frames arrive in real time for a second, before the anchor window ends', async () => {
    const src = source('d/paced');
    src.pushUntil(1.1); // the encoder's start-up burst
    const packager = server.hls!.packagers.get('d/paced')!;
    let answered = false;
    const pending = manifest('d/paced').then((text) => {
      answered = true;
      return text;
    });
    let media = 1.1;
    for (let i = 0; i < 40 && !answered; i++) {
      await new Promise((r) => setTimeout(r, 100));
      media += 0.1;
      src.pushUntil(media);
    }
    const mpd = await pending;
    assert.ok(media >= 2.1 && media <= 2.8, `served after ${media.toFixed(1)} s of media`);
    assert.equal(packager.anchorSettling, true, 'within the first two segments');
    assert.equal(packager.anchorStable, true);
    assert.equal(
      Date.parse(attr(mpd, 'MPD', 'availabilityStartTime')!),
      Math.round(packager.timeline!.wallMs),
    );
    assert.equal(attr(mpd, 'MPD', 'minimumUpdatePeriod'), 'PT0.2S', 'reloads every part while it may move');
    src.unpublish();
  });

  it('serves the MPD as it is when the anchor does not settle within the block timeout', async () => {
    const src = source('d/stall');
    src.pushUntil(1.1);
    const started = performance.now();
    const mpd = await manifest('d/stall');
    const waited = performance.now() - started;
    assert.ok(waited >= 1950 && waited < 3000, `served after ${waited.toFixed(0)} ms (block timeout 2000)`);
    assert.equal(attr(mpd, 'MPD', 'minimumUpdatePeriod'), 'PT0.2S', 'still settling: reload every part');
    src.unpublish();
  });

  it('holds a request for the next segment until it begins, streams it, and it decodes', async () => {
    const src = source('d/seg');
    src.pushUntil(1.5);
    const epoch = server.hls!.packagers.get('d/seg')!.epoch;
    let headersAt = 0;
    const started = performance.now();
    const pending = fetch(url(`/dash/d/seg/seg-${epoch}-1-t1.m4s`)).then((res) => {
      headersAt = performance.now() - started;
      return res;
    });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(headersAt, 0, 'held: segment 1 has not begun');
    src.pushUntil(2.5); // segment 1 begins at the keyframe at 2 s
    const res = await pending;
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('transfer-encoding'), 'chunked');
    const reader = res.body!.getReader();
    const chunks: Uint8Array[] = [];
    chunks.push((await reader.read()).value!);
    src.pushUntil(4.1); // completes it
    for (let i = 0; i < 10_000; i++) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
    }
    const bytes = concatBytes(chunks);
    const trackIds = findBoxes(readBoxes(bytes), 'moof/traf/tfhd').map((b) => parseTfhd(b).trackId);
    assert.equal(trackIds.length, 60, 'the 60 video frames of 2 s');
    assert.ok(trackIds.every((id) => id === 1));
    const init = new Uint8Array(await (await fetch(url(`/dash/d/seg/init-${epoch}-1-t1.mp4`))).arrayBuffer());
    const probed = probeBytes(concatBytes([init, bytes]), ['-count_frames', '-show_streams']).streams!;
    assert.equal(probed.length, 1, 'the video representation alone');
    assert.equal(probed[0].codec_name, 'h264');
    assert.equal(Number(probed[0].nb_read_frames), 60);

    const audio = await fetch(url(`/dash/d/seg/seg-${epoch}-1-t2.m4s`));
    const audioIds = findBoxes(readBoxes(new Uint8Array(await audio.arrayBuffer())), 'moof/traf/tfhd').map(
      (b) => parseTfhd(b).trackId,
    );
    assert.ok(audioIds.length > 80 && audioIds.every((id) => id === 2), `${audioIds.length} audio fragments`);
    src.unpublish();
  });

  it('404s a segment two ahead, and everything once the publisher left; a republish is a new Period', async () => {
    const src = source('d/end');
    src.pushUntil(2.5);
    const epoch = server.hls!.packagers.get('d/end')!.epoch;
    const ahead = await fetch(url(`/dash/d/end/seg-${epoch}-3-t1.m4s`));
    assert.equal(ahead.status, 404);
    assert.match(
      ((await ahead.json()) as { error: string }).error,
      /segment 3 of "d\/end" does not exist yet/,
    );

    const held = fetch(url(`/dash/d/end/seg-${epoch}-2-t1.m4s`));
    await new Promise((r) => setTimeout(r, 50));
    src.unpublish();
    assert.equal((await held).status, 404, 'a held request is answered when the publisher leaves');
    const gone = await fetch(url('/dash/d/end/manifest.mpd'));
    assert.equal(gone.status, 404);

    const again = source('d/end');
    again.pushUntil(4.1); // past the two segments during which the new timeline's anchor settles
    const mpd = await manifest('d/end');
    assert.equal(attr(mpd, 'Period', 'id'), '2');
    assert.equal(attr(mpd, 'SegmentTemplate', 'startNumber'), '2', 'numbers continue after the republish');
    assert.match(attr(mpd, 'SegmentTemplate', 'initialization')!, /-2-t1\.mp4$/);
    again.unpublish();
  });
});
