/**
 * VLC (Debian's vlc-bin, VLC 3) plays the LL-HLS playlist and the LL-DASH manifest of a live RTMP stream: it
 * remuxes what it receives to an MPEG-TS file for 8 s, which ffprobe then decodes. VLC 3 knows neither parts
 * nor blocking reload: this is the plain-HLS / plain-DASH client of the field reading the same resources.
 * Remuxing to a file, VLC is not paced by a clock: over HLS the playlist reloads pace it (it records for the
 * whole 8 s); over DASH it fetches the manifest's window as fast as it can (from 15 s behind live, its
 * --adaptive-livedelay) and ends with EOF when it reaches the live edge, so that test checks the segments it
 * read, not 8 s of playback (docs/protocols/hls.md, "Players outside the browser").
 * VLC refuses to run as root, so under root (CI here) it runs as `nobody`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { CAMERA_PATH, LiveCamera } from '../helpers/liveCamera.ts';
import { ffprobe } from '../helpers/processes.ts';

const execFileAsync = promisify(execFile);
const camera = new LiveCamera('vlc');

/** VLC plays `url` for `seconds`, writing what it demuxed to `file` (MPEG-TS) without re-encoding. */
async function vlcRecord(url: string, file: string, seconds: number): Promise<void> {
  const out = join(camera.dir, file);
  chmodSync(camera.dir, 0o777);
  const vlc = [
    ...['-q', '--intf', 'dummy', '--no-audio-time-stretch'],
    url,
    ...['--sout', `#std{access=file,mux=ts,dst=${out}}`],
    ...['--run-time', String(seconds), 'vlc://quit'],
  ];
  const asRoot = process.getuid?.() === 0;
  await execFileAsync(asRoot ? 'runuser' : 'cvlc', asRoot ? ['-u', 'nobody', '--', 'cvlc', ...vlc] : vlc, {
    timeout: 60_000,
    env: { ...process.env, HOME: camera.dir },
  });
}

for (const [name, resource] of [
  ['LL-HLS playlist', `hls/${CAMERA_PATH}/index.m3u8`],
  ['LL-DASH manifest', `dash/${CAMERA_PATH}/manifest.mpd`],
]) {
  test(`VLC reads the ${name} of a live RTMP stream and the media it lists`, async () => {
    const file = `${resource.split('/').at(-1)}.ts`;
    await vlcRecord(`${camera.server.httpUrl}/${resource}`, file, 8);
    const streams = await ffprobe(join(camera.dir, file));
    const video = streams.find((s) => s.codec_type === 'video');
    const audio = streams.find((s) => s.codec_type === 'audio');
    console.log(`VLC, ${name}: ${video?.nb_read_frames} video and ${audio?.nb_read_frames} audio frames`);
    assert.equal(video?.codec_name, 'h264');
    assert.equal(video?.width, 640);
    assert.equal(video?.height, 360);
    assert.equal(audio?.codec_name, 'aac');
    // 8 s of play, less VLC's start-up and buffering: at least 2 s of the 30 fps camera, with its sound.
    assert.ok(Number(video?.nb_read_frames) >= 60, `${video?.nb_read_frames} video frames decoded`);
    assert.ok(Number(audio?.nb_read_frames) >= 90, `${audio?.nb_read_frames} audio frames decoded`);
  });
}
