/**
 * The LL-HLS playlists of a live RTMP camera read by strict third-party parsers: hls-parser in strict mode
 * (which enforces RFC 8216bis rules such as the three-target-duration window of EXT-X-PART tags) and
 * m3u8-parser (the parser video.js/VHS plays with), through the stream's first seconds and later.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import HLS from 'hls-parser';
import { Parser as M3u8Parser } from 'm3u8-parser';
import { CAMERA_PATH, LiveCamera } from '../helpers/liveCamera.ts';
import { waitFor } from '../helpers/processes.ts';

const camera = new LiveCamera('hls-parsers');
const base = () => `${camera.server.httpUrl}/hls/${CAMERA_PATH}`;

HLS.setOptions({ strictMode: true });

/** Both parsers over one playlist text: hls-parser throws on a violation, m3u8-parser warns. */
function parseStrictly(text: string, what: string): void {
  try {
    HLS.parse(text);
  } catch (err) {
    assert.fail(`hls-parser (strict) refuses ${what}: ${(err as Error).message}\n${text}`);
  }
  const parser = new M3u8Parser();
  const warnings: string[] = [];
  parser.on('warn', (w: { message: string }) => warnings.push(w.message));
  parser.push(text);
  parser.end();
  assert.deepEqual(warnings, [], `m3u8-parser warns about ${what}`);
}

test('the multivariant playlist declares CLOSED-CAPTIONS=NONE and parses strictly', async () => {
  const text = await (await fetch(`${base()}/index.m3u8`)).text();
  assert.match(text, /#EXT-X-STREAM-INF:.*CLOSED-CAPTIONS=NONE/);
  parseStrictly(text, 'the multivariant playlist');
  const variant = (HLS.parse(text) as InstanceType<typeof HLS.types.MasterPlaylist>).variants[0];
  assert.deepEqual(variant.closedCaptions, []);
});

test('media playlists parse strictly, part after part, once the playlist is full', async () => {
  await waitFor(
    'more segments than the part window',
    () => (camera.server.hls?.packagers.get(CAMERA_PATH)?.segments.length ?? 0) >= 5,
    20_000,
  );
  const deadline = performance.now() + 4000;
  let n = 0;
  while (performance.now() < deadline) {
    const text = await (await fetch(`${base()}/media.m3u8`)).text();
    parseStrictly(text, `media playlist ${n}`);
    const last = /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-\w+-(\d+)-(\d+)\.m4s"/.exec(text);
    assert.ok(last, 'the live playlist names the next part');
    await fetch(`${base()}/media.m3u8?_HLS_msn=${last[1]}&_HLS_part=${last[2]}`);
    n++;
  }
  assert.ok(n >= 10, `${n} playlists checked`);
});
