import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { conformanceProblems, parseMediaPlaylist } from '../../src/protocols/hls/testing/m3u8.ts';
import { CAMERA_PATH, LiveCamera } from '../helpers/liveCamera.ts';
import { waitFor } from '../helpers/processes.ts';

const execFileAsync = promisify(execFile);
const camera = new LiveCamera('hls');
const server = () => camera.server;
const playlistUrl = () => `${server().httpUrl}/hls/${CAMERA_PATH}/index.m3u8`;

test('ffmpeg reads 5 s of H.264 + AAC from the LL-HLS playlist', async () => {
  const streams = await camera.readFiveSeconds(playlistUrl(), 'hls.mp4');
  assert.equal(streams.find((s) => s.codec_type === 'audio')?.sample_rate, '48000');
});

test('ffprobe sees the codecs straight from the URL', async () => {
  const { stdout } = await execFileAsync(
    'ffprobe',
    ['-v', 'error', '-show_entries', 'stream=codec_name,codec_type', '-of', 'json', playlistUrl()],
    { timeout: 30_000 },
  );
  const streams = (JSON.parse(stdout) as { streams: { codec_name: string }[] }).streams;
  assert.deepEqual(streams.map((s) => s.codec_name).sort(), ['aac', 'h264']);
});

test('a live RTMP source yields conforming playlists, part after part, through blocking reloads', async () => {
  const media = `${server().httpUrl}/hls/${CAMERA_PATH}/media.m3u8`;
  let p = parseMediaPlaylist(await (await fetch(media)).text());
  const times: number[] = [];
  // Like hls.js: ask for the part after the last one, eight times in a row (~1.6 s of media).
  for (let i = 0; i < 8; i++) {
    assert.deepEqual(conformanceProblems(p), []);
    const last = p.segments[p.segments.length - 1];
    const started = performance.now();
    const res = await fetch(`${media}?_HLS_msn=${last.msn}&_HLS_part=${last.parts.length}`);
    times.push(performance.now() - started);
    assert.equal(res.status, 200);
    const next = parseMediaPlaylist(await res.text());
    const nextLast = next.segments[next.segments.length - 1];
    const advanced =
      nextLast.msn > last.msn || (nextLast.msn === last.msn && nextLast.parts.length > last.parts.length);
    assert.ok(advanced, `playlist advanced past ${last.msn}.${last.parts.length - 1}`);
    p = next;
  }
  // Each held request waited for about one part (200 ms), not for a polling interval.
  const mean = times.slice(1).reduce((a, b) => a + b, 0) / (times.length - 1);
  assert.ok(mean > 100 && mean < 320, `mean wait ${mean.toFixed(0)} ms per part`);
});

test('Prometheus metrics report the media held per stream and the responses served', async () => {
  const text = await (await fetch(`${server().httpUrl}/metrics`)).text();
  const held = Number(/subsecond_hls_media_bytes\{path="live\/cam1"\} (\d+)/.exec(text)?.[1]);
  assert.ok(held > 100_000 && held < 64 * 2 ** 20, `held ${held} bytes`);
  assert.match(text, /subsecond_hls_responses_total\{resource="blocked_playlist"\} [1-9]/);
  assert.match(text, /subsecond_hls_held_response_delay_ms\{quantile="0.99"\}/);
});

test('a publisher restart ends the playlist, then continues it after a discontinuity', async () => {
  await camera.unpublish();
  const media = `${server().httpUrl}/hls/${CAMERA_PATH}/media.m3u8`;
  const ended = await waitFor('EXT-X-ENDLIST', async () => {
    const text = await (await fetch(media)).text();
    return text.includes('#EXT-X-ENDLIST') ? parseMediaPlaylist(text) : null;
  });
  assert.ok(ended);
  assert.deepEqual(conformanceProblems(ended), []);
  const lastMsn = ended.segments[ended.segments.length - 1].msn;
  camera.publish();
  const resumed = await waitFor('the republished stream in the playlist', async () => {
    const p = parseMediaPlaylist(await (await fetch(media)).text());
    return p.segments.some((s) => s.msn > lastMsn && s.parts.length > 0) ? p : null;
  });
  assert.ok(resumed);
  assert.equal(resumed.endList, false);
  assert.deepEqual(conformanceProblems(resumed), []);
  const first = resumed.segments.find((s) => s.msn === lastMsn + 1);
  assert.ok(first?.discontinuity, 'EXT-X-DISCONTINUITY before the first republished segment');
});
