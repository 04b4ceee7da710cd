import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Track } from '../../media/Frame.ts';
import { findBoxes, parseMfhd, readBoxes } from '../../media/fmp4/reader.ts';
import { concatBytes } from '../../media/testing/ffmpeg.ts';
import { demuxFragmentedMp4, ffmpegFragmentedMp4, probeBytes } from '../../media/testing/mp4.ts';
import { type RunningServer, startServer } from '../../server.ts';
import { type Clip, ClipSource, h264AacClip, regularClip } from './testing/clip.ts';
import { conformanceProblems, type ParsedMediaPlaylist, parseMediaPlaylist } from './testing/m3u8.ts';

/*
 * The LL-HLS endpoints over real HTTP, fed with real H.264 + AAC (encoded by ffmpeg, demuxed by our reader)
 * pushed into a stream frame by frame, so each test decides exactly when media exists.
 */

const BLOCK_TIMEOUT_MS = 400;
let server: RunningServer;
let clip: Clip;
let tracks: Track[];

before(async () => {
  clip = h264AacClip();
  tracks = clip.tracks;
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { enabled: false },
    log: { level: 'warn' },
    hls: { blockTimeoutMs: BLOCK_TIMEOUT_MS, endedRetentionMs: 3000, playlistSegments: 8 },
  });
});

after(async () => {
  await server?.close();
});

/** A publisher of the test server pushing a clip on repeat. */
class Source extends ClipSource {
  constructor(path: string, media: Clip = clip) {
    super(server.registry, path, media);
  }
}

async function get(
  path: string,
): Promise<{ status: number; headers: Headers; text: string; bytes: Uint8Array }> {
  const res = await fetch(`${server.httpUrl}${path}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, text: new TextDecoder().decode(bytes), bytes };
}

async function playlist(path: string, query = ''): Promise<ParsedMediaPlaylist> {
  const res = await get(`/hls/${path}/media.m3u8${query}`);
  assert.equal(res.status, 200, res.text);
  return parseMediaPlaylist(res.text);
}

function lastPart(p: ParsedMediaPlaylist): { msn: number; index: number } {
  const s = p.segments[p.segments.length - 1];
  return { msn: s.msn, index: s.parts.length - 1 };
}

describe('LL-HLS media playlist', () => {
  it('conforms: segment and part durations, continuity, server control, map, date-time, hint', async () => {
    const src = new Source('conf/a');
    src.pushUntil(13.1);
    const p = await playlist('conf/a');
    assert.deepEqual(conformanceProblems(p), []);
    assert.equal(p.targetDuration, 2);
    assert.equal(p.partTarget, 0.2);
    assert.equal(p.serverControl['PART-HOLD-BACK'], '0.600');
    assert.equal(p.serverControl['CAN-SKIP-UNTIL'], '12.000');
    // 13.1 s with keyframes every second: six complete 2 s segments and the seventh in progress.
    assert.equal(p.mediaSequence, 0);
    assert.deepEqual(
      p.segments.map((s) => [s.msn, s.duration]),
      [0, 1, 2, 3, 4, 5, 6].map((msn) => [msn, msn < 6 ? 2 : 0]),
    );
    const current = p.segments[6];
    assert.equal(current.parts.length, 5, '1.0 s of the last segment is five complete parts');
    assert.ok(p.preloadHint?.endsWith('-6-5.m4s'), `hint ${p.preloadHint}`);
    // Parts are listed for the last three target durations only; every segment keeps its date-time.
    assert.equal(p.segments[0].parts.length, 0);
    assert.equal(p.segments[5].parts.length, 10);
    src.unpublish();
  });

  it('serves parts and segments built of the per-frame fragments, which ffprobe decodes', async () => {
    const src = new Source('conf/bytes');
    src.pushUntil(4.5);
    const p = await playlist('conf/bytes');
    const seg = p.segments[1];
    const init = await get(`/hls/conf/bytes/${seg.map}`);
    assert.equal(init.status, 200);
    assert.equal(init.headers.get('content-type'), 'video/mp4');
    const segment = await get(`/hls/conf/bytes/${seg.uri}`);
    assert.equal(segment.status, 200);
    assert.equal(segment.headers.get('cache-control'), 'public, max-age=3600, immutable');
    assert.equal(segment.headers.get('content-type'), 'video/mp4');
    assert.equal(segment.headers.get('access-control-allow-origin'), '*');
    assert.equal(Number(segment.headers.get('content-length')), segment.bytes.length);
    const parts = await Promise.all(seg.parts.map((part) => get(`/hls/conf/bytes/${part.uri}`)));
    assert.deepEqual(concatBytes(parts.map((x) => x.bytes)), segment.bytes, 'the segment is its parts');

    // Many moof+mdat pairs, one frame each, with mfhd sequence numbers rising across the whole segment.
    const boxes = readBoxes(segment.bytes);
    const sequence = findBoxes(boxes, 'moof/mfhd').map(parseMfhd);
    assert.ok(sequence.length > 60, `${sequence.length} fragments in 2 s`);
    for (let i = 1; i < sequence.length; i++) assert.ok(sequence[i] > sequence[i - 1]);

    const probe = probeBytes(concatBytes([init.bytes, segment.bytes]), ['-count_frames', '-show_streams'])
      .streams!;
    const v = probe.find((s) => s.codec_type === 'video');
    const a = probe.find((s) => s.codec_type === 'audio');
    assert.equal(v?.codec_name, 'h264');
    assert.equal(Number(v?.nb_read_frames), 60, '2 s of 30 fps video');
    assert.equal(a?.codec_name, 'aac');
    src.unpublish();
  });

  it('announces codecs, resolution, bandwidth and frame rate in the multivariant playlist', async () => {
    const src = new Source('conf/mv');
    src.pushUntil(6.1);
    const res = await get('/hls/conf/mv/index.m3u8');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/vnd.apple.mpegurl');
    const codecs = tracks.map((t) => t.codecString).join(',');
    assert.match(res.text, new RegExp(`CODECS="${codecs.replace(/\./g, '\\.')}"`));
    assert.match(res.text, /RESOLUTION=320x240/);
    assert.match(res.text, /FRAME-RATE=30\.000/);
    const bandwidth = Number(/BANDWIDTH=(\d+)/.exec(res.text)?.[1]);
    assert.ok(bandwidth > 10_000, `BANDWIDTH=${bandwidth}`);
    assert.match(res.text, /\nmedia\.m3u8\n/);
    src.unpublish();
  });
});

describe('blocking playlist reload (RFC 8216bis §6.2.5.2)', () => {
  it('holds a request for the next part until it exists, and answers at once after', async () => {
    const src = new Source('block/a');
    src.pushUntil(2.5);
    const before = await playlist('block/a');
    const { msn, index } = lastPart(before);
    let answered = false;
    const pending = playlist('block/a', `?_HLS_msn=${msn}&_HLS_part=${index + 1}`).then((p) => {
      answered = true;
      return p;
    });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(answered, false, 'still held while the part does not exist');
    src.pushUntil(2.75);
    const p = await pending;
    assert.deepEqual(lastPart(p), { msn, index: index + 1 });
    assert.deepEqual(conformanceProblems(p), []);
    // The same request again is answered from what exists; its response is cacheable by its query.
    const again = await get(`/hls/block/a/media.m3u8?_HLS_msn=${msn}&_HLS_part=${index + 1}`);
    assert.equal(again.status, 200);
    assert.equal(again.headers.get('cache-control'), 'public, max-age=2');
    const delay = server.hls!.responseDelay;
    assert.ok(delay.count > 0 && delay.quantile(0.99) < 50, `held response written ${delay.max} ms after`);
    src.unpublish();
  });

  it('a part index past the end of its segment is the first part of the next segment', async () => {
    const src = new Source('block/next');
    src.pushUntil(1.95);
    const { msn, index } = lastPart(await playlist('block/next'));
    assert.equal(msn, 0);
    const pending = playlist('block/next', `?_HLS_msn=0&_HLS_part=${index + 1}`);
    src.pushUntil(2.05); // the keyframe at 2 s closes segment 0 with this part and opens segment 1
    const p = await pending;
    assert.equal(p.segments[0].duration, 2);
    src.pushUntil(2.25);
    const q = await playlist('block/next', `?_HLS_msn=0&_HLS_part=${index + 2}`);
    assert.deepEqual(lastPart(q), { msn: 1, index: 0 });
    src.unpublish();
  });

  it('without _HLS_part waits for the whole segment', async () => {
    const src = new Source('block/seg');
    src.pushUntil(2.1);
    const pending = playlist('block/seg', '?_HLS_msn=1');
    src.pushUntil(3.9);
    let done = false;
    void pending.then(() => {
      done = true;
    });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(done, false, 'segment 1 is not complete yet');
    src.pushUntil(4.1);
    const p = await pending;
    assert.equal(p.segments.find((s) => s.msn === 1)?.duration, 2);
    src.unpublish();
  });

  it('answers 503 when the part does not appear within the block timeout', async () => {
    const src = new Source('block/slow');
    src.pushUntil(1.1);
    const { msn, index } = lastPart(await playlist('block/slow'));
    const started = performance.now();
    const res = await get(`/hls/block/slow/media.m3u8?_HLS_msn=${msn}&_HLS_part=${index + 1}`);
    const waited = performance.now() - started;
    assert.equal(res.status, 503);
    assert.match(JSON.parse(res.text).error, /did not appear within 400 ms/);
    assert.ok(waited >= BLOCK_TIMEOUT_MS - 20 && waited < BLOCK_TIMEOUT_MS + 400, `waited ${waited} ms`);
    assert.equal(server.hls!.packagers.get('block/slow')?.waiting, 0, 'no waiter is left behind');
    src.unpublish();
  });

  it('forgets a held request whose client went away', async () => {
    const src = new Source('block/gone');
    src.pushUntil(1.1);
    const { msn, index } = lastPart(await playlist('block/gone'));
    const packager = server.hls!.packagers.get('block/gone')!;
    const abort = new AbortController();
    const pending = fetch(
      `${server.httpUrl}/hls/block/gone/media.m3u8?_HLS_msn=${msn}&_HLS_part=${index + 1}`,
      {
        signal: abort.signal,
      },
    ).catch((err: Error) => err.name);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(packager.waiting, 1);
    abort.abort();
    assert.equal(await pending, 'AbortError');
    for (let i = 0; i < 50 && packager.waiting > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(packager.waiting, 0, 'the waiter left with its client, before any timeout');
    src.unpublish();
  });

  it('refuses bad and too-far-ahead directives with 400 and a message', async () => {
    const src = new Source('block/bad');
    src.pushUntil(2.5);
    const cases: [string, RegExp][] = [
      ['?_HLS_part=1', /_HLS_part=1 needs _HLS_msn/],
      ['?_HLS_msn=-1', /_HLS_msn must be a non-negative integer, got "-1"/],
      ['?_HLS_msn=abc', /_HLS_msn must be a non-negative integer, got "abc"/],
      ['?_HLS_msn=1.5', /_HLS_msn must be a non-negative integer/],
      ['?_HLS_msn=99999999999999999999', /_HLS_msn must be a non-negative integer/],
      ['?_HLS_msn=999999999', /_HLS_msn=999999999 is more than two segments past the last one/],
      ['?_HLS_msn=4', /_HLS_msn=4 is more than two segments past the last one in the playlist \(1\)/],
      ['?_HLS_msn=1&_HLS_part=40', /_HLS_part=40 of _HLS_msn=1 is more than 15 parts past/],
      ['?_HLS_msn=1&_HLS_part=x', /_HLS_part must be a non-negative integer, got "x"/],
      ['?_HLS_msn=1&_HLS_msn=2', /_HLS_msn is given more than once/],
      ['?_HLS_skip=NO', /_HLS_skip must be YES or v2, got "NO"/],
    ];
    for (const [query, message] of cases) {
      const res = await get(`/hls/block/bad/media.m3u8${query}`);
      assert.equal(res.status, 400, `${query}: ${res.text}`);
      assert.match(JSON.parse(res.text).error, message, query);
    }
    // Two segments ahead is still allowed: held, then 503 since nothing is pushed.
    const res = await get('/hls/block/bad/media.m3u8?_HLS_msn=3');
    assert.equal(res.status, 503);
    src.unpublish();
  });
});

/** An HTTP/1.1 connection read response by response (framed by content-length, as every playlist is). */
class RawConnection {
  readonly #socket;
  #data = Buffer.alloc(0);
  #wake: (() => void) | null = null;
  closed = false;

  constructor() {
    const url = new URL(server.httpUrl);
    this.#socket = connect(Number(url.port), url.hostname);
    this.#socket.on('data', (d: Buffer) => {
      this.#data = Buffer.concat([this.#data, d]);
      this.#wake?.();
    });
    this.#socket.on('close', () => {
      this.closed = true;
      this.#wake?.();
    });
  }

  send(requests: string): void {
    this.#socket.write(requests);
  }

  /** The next whole response: status, headers by lower-case name, body. */
  async next(
    options: { head?: boolean } = {},
  ): Promise<{ status: number; headers: Map<string, string>; body: string }> {
    for (let i = 0; i < 200; i++) {
      const end = this.#data.indexOf('\r\n\r\n');
      if (end >= 0) {
        const lines = this.#data.subarray(0, end).toString('latin1').split('\r\n');
        const headers = new Map<string, string>();
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(':');
          headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
        }
        const length = options.head ? 0 : Number(headers.get('content-length'));
        assert.ok(Number.isInteger(length), `a content-length in ${lines.join(' | ')}`);
        if (this.#data.length >= end + 4 + length) {
          const body = this.#data.subarray(end + 4, end + 4 + length).toString('utf8');
          this.#data = this.#data.subarray(end + 4 + length);
          return { status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(lines[0])?.[1]), headers, body };
        }
      }
      if (this.closed) break;
      await new Promise<void>((r) => {
        this.#wake = r;
        setTimeout(r, 50);
      });
    }
    throw new Error(`no whole response; have ${JSON.stringify(this.#data.toString('latin1').slice(0, 200))}`);
  }

  close(): void {
    this.#socket.destroy();
  }
}

describe('held responses written whole', () => {
  it('answers held, pipelined and closing requests on one connection with the same playlist and framing', async () => {
    const src = new Source('prebuilt/a');
    src.pushUntil(2.5);
    const { msn, index } = lastPart(await playlist('prebuilt/a'));
    const conn = new RawConnection();
    const host = new URL(server.httpUrl).host;
    const target = `/hls/prebuilt/a/media.m3u8?_HLS_msn=${msn}&_HLS_part=${index + 1}`;
    try {
      // A held request with a plain one pipelined behind it: the second must wait for the first's answer.
      conn.send(
        `GET ${target} HTTP/1.1\r\nHost: ${host}\r\n\r\n` +
          `GET /hls/prebuilt/a/media.m3u8?_HLS_skip=YES HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
      );
      await new Promise((r) => setTimeout(r, 100));
      src.pushUntil(2.75);
      const held = await conn.next();
      assert.equal(held.status, 200, held.body);
      assert.deepEqual(lastPart(parseMediaPlaylist(held.body)), { msn, index: index + 1 });
      assert.equal(held.headers.get('content-type'), 'application/vnd.apple.mpegurl');
      assert.equal(held.headers.get('cache-control'), 'public, max-age=2');
      assert.equal(held.headers.get('access-control-allow-origin'), '*');
      const date = Date.parse(held.headers.get('date') ?? '');
      assert.ok(Math.abs(date - Date.now()) < 2000, `a current Date header, got ${held.headers.get('date')}`);
      const pipelined = await conn.next();
      assert.equal(pipelined.status, 200, pipelined.body);
      assert.equal(pipelined.headers.get('cache-control'), 'public, max-age=1');
      // HEAD: the same headers, no body (the next response on the connection must parse).
      conn.send(`HEAD ${target} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
      const head = await conn.next({ head: true });
      assert.equal(head.status, 200);
      assert.equal(head.body, '');
      assert.equal(Number(head.headers.get('content-length')), Buffer.byteLength(held.body));
      // Connection: close takes node's ordinary path: the same bytes of playlist, then the connection ends.
      conn.send(`GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      const closing = await conn.next();
      assert.equal(closing.status, 200);
      assert.equal(closing.body, held.body);
      assert.equal(closing.headers.get('cache-control'), held.headers.get('cache-control'));
      assert.equal(closing.headers.get('connection'), 'close');
      for (let i = 0; i < 50 && !conn.closed; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(conn.closed, true, 'the server closed the connection after the Connection: close answer');
    } finally {
      conn.close();
      src.unpublish();
    }
  });
});

describe('delta updates, end, republish, retention', () => {
  it('_HLS_skip=YES replaces segments older than CAN-SKIP-UNTIL with EXT-X-SKIP', async () => {
    const src = new Source('delta/a');
    src.pushUntil(18.1);
    const full = await playlist('delta/a');
    const delta = await playlist('delta/a', '?_HLS_skip=YES');
    assert.deepEqual(conformanceProblems(delta), []);
    assert.equal(full.mediaSequence, 1, 'eight listed segments: 1..8, and 9 in progress');
    assert.equal(delta.mediaSequence, full.mediaSequence);
    // 16 s listed (the open segment has no complete part yet): segments ending 12 s or more before the end
    // (1 and 2) are skipped.
    assert.equal(delta.skipped, 2);
    assert.deepEqual(
      delta.segments.map((s) => s.uri),
      full.segments.slice(delta.skipped).map((s) => s.uri),
    );
    assert.ok(delta.segments[0].map, 'the map is repeated after the skip');
    src.unpublish();
  });

  it('ends the playlist on unpublish, and continues it after a discontinuity on republish', async () => {
    const src = new Source('end/a');
    src.pushUntil(4.5);
    src.unpublish();
    const ended = await playlist('end/a');
    assert.equal(ended.endList, true);
    assert.equal(ended.preloadHint, null);
    assert.deepEqual(conformanceProblems(ended), []);
    const lastMsn = ended.segments[ended.segments.length - 1].msn;
    // A blocking request on an ended playlist is answered at once.
    const blocked = await get(`/hls/end/a/media.m3u8?_HLS_msn=${lastMsn + 1}`);
    assert.equal(blocked.status, 200);

    const again = new Source('end/a');
    again.pushUntil(2.5);
    const p = await playlist('end/a');
    assert.equal(p.endList, false);
    assert.deepEqual(conformanceProblems(p), []);
    const resumed = p.segments.find((s) => s.msn === lastMsn + 1);
    assert.ok(resumed?.discontinuity, 'the first segment after the republish follows a discontinuity');
    assert.notEqual(resumed.map, ended.segments[0].map, 'a new init segment for the new track set');
    assert.equal((await get(`/hls/end/a/${resumed.map}`)).status, 200);
    again.unpublish();
  });

  it('holds a bounded window: old segments leave memory and answer 404', async () => {
    const src = new Source('retain/a');
    src.pushUntil(60.3);
    const packager = server.hls!.packagers.get('retain/a')!;
    assert.equal(packager.segments.length, 16, 'twice the listed segments are held');
    const p = await playlist('retain/a');
    assert.equal(p.segments.length, 9, 'eight complete segments and the open one');
    const oldest = packager.segments[0].msn;
    const first = await get(`/hls/retain/a/seg-${packager.epoch}-${oldest}.m4s`);
    assert.equal(first.status, 200, 'a segment that left the playlist stays downloadable');
    const gone = await get(`/hls/retain/a/seg-${packager.epoch}-${oldest - 1}.m4s`);
    assert.equal(gone.status, 404);
    assert.match(JSON.parse(gone.text).error, /no longer held/);
    const stats = (await (await fetch(`${server.httpUrl}/api/v1/server`)).json()) as {
      hls: { streams: { path: string; bytes: number }[] };
    };
    const reported = stats.hls.streams.find((s) => s.path === 'retain/a');
    assert.equal(reported?.bytes, packager.bytes);
    src.unpublish();
  });
});

describe('parts being produced', () => {
  it('streams the preload-hinted part as its frames arrive and ends it when complete', async () => {
    const src = new Source('hint/a');
    src.pushUntil(1.05);
    const p = await playlist('hint/a');
    assert.ok(p.preloadHint);
    const res = await fetch(`${server.httpUrl}/hls/hint/a/${p.preloadHint}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-length'), null, 'chunked: its size is not known yet');
    const reader = res.body!.getReader();
    const first = await reader.read();
    assert.ok(first.value && first.value.length > 0, 'what exists is sent at once');
    src.pushUntil(1.5);
    const chunks = [first.value];
    for (let i = 0; i < 1000; i++) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
    }
    const streamed = concatBytes(chunks);
    const complete = await get(`/hls/hint/a/${p.preloadHint}`);
    assert.equal(Number(complete.headers.get('content-length')), complete.bytes.length);
    assert.deepEqual(streamed, complete.bytes);
    src.unpublish();
  });

  it('404s a part that will never exist', async () => {
    const src = new Source('hint/b');
    src.pushUntil(2.5);
    const epoch = server.hls!.packagers.get('hint/b')!.epoch;
    const cases: [string, RegExp][] = [
      [`part-${epoch}-0-10.m4s`, /part 10 of segment 0 of "hint\/b" does not exist/],
      [`part-${epoch}-7-0.m4s`, /part 0 of segment 7 of "hint\/b" does not exist/],
      [`seg-${epoch}-5.m4s`, /segment 5 of "hint\/b" does not exist/],
      ['part-zzzz-0-0.m4s', /restarted since this URI was listed/],
      [`init-${epoch}-9.mp4`, /no init segment 9/],
    ];
    for (const [name, message] of cases) {
      const res = await get(`/hls/hint/b/${name}`);
      assert.equal(res.status, 404, name);
      assert.match(JSON.parse(res.text).error, message, name);
    }
    src.unpublish();
  });
});

/** Sends a request line exactly as written (fetch would normalise `..`), returns status and body. */
function rawGet(target: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(server.httpUrl);
    const socket = connect(Number(url.port), url.hostname);
    let data = '';
    socket.on('connect', () =>
      socket.write(`GET ${target} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\n\r\n`),
    );
    socket.on('data', (d) => {
      data += d.toString('latin1');
    });
    socket.on('error', reject);
    socket.on('close', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1]);
      resolve({ status, body: data.slice(data.indexOf('\r\n\r\n') + 4) });
    });
    socket.setTimeout(5000, () => socket.destroy(new Error(`no answer to ${target}`)));
  });
}

describe('bad paths', () => {
  it('answers traversal attempts and unknown names with 400/404 and a message, reading nothing from disk', async () => {
    const cases = [
      '/hls/../../etc/passwd',
      '/hls/live/../../../etc/passwd',
      '/hls/%2e%2e/%2e%2e/etc/passwd',
      '/hls/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
      '/hls/%252e%252e/%252e%252e/etc/passwd',
      '/hls/..%5c..%5cetc%5cpasswd',
      '/hls/live/cam1/..%2f..%2f..%2fetc%2fpasswd',
      '/hls/live/cam1/index.m3u8%00.txt',
      '/hls/index.m3u8',
      '/hls/live/cam1/secrets.txt',
    ];
    for (const target of cases) {
      const res = await rawGet(target);
      assert.ok(res.status === 400 || res.status === 404, `${target}: ${res.status}`);
      const error = JSON.parse(res.body).error as string;
      assert.ok(error.length > 10, `${target}: ${error}`);
      assert.doesNotMatch(res.body, /root:/, target);
    }
    const unknown = await get('/hls/nobody/here/index.m3u8');
    assert.equal(unknown.status, 404);
    assert.match(JSON.parse(unknown.text).error, /stream "nobody\/here" is not live/);
  });
});

describe('other codecs and audio only', () => {
  const codecs: { name: string; video: string[]; codecs: RegExp; probed: string }[] = [
    {
      name: 'hevc',
      video: [
        '-c:v',
        'libx265',
        '-preset',
        'ultrafast',
        '-x265-params',
        'keyint=30:bframes=0:log-level=error',
      ],
      codecs: /CODECS="(hvc1|hev1)\.[^,"]+,opus"/i,
      probed: 'hevc',
    },
    {
      name: 'vp9',
      video: ['-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-cpu-used', '8', '-g', '30', '-b:v', '300k'],
      codecs: /CODECS="vp09\.[^,"]+,opus"/i,
      probed: 'vp9',
    },
    {
      name: 'av1',
      video: ['-c:v', 'libsvtav1', '-preset', '12', '-g', '30', '-svtav1-params', 'lp=1'],
      codecs: /CODECS="av01\.[^,"]+,opus"/i,
      probed: 'av1',
    },
  ];
  for (const c of codecs) {
    it(`packages ${c.name} + Opus as the ingest carries them; ffprobe decodes a segment`, async () => {
      const media = demuxFragmentedMp4(
        ffmpegFragmentedMp4([
          ...['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30'],
          ...['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000'],
          ...['-t', '2', ...c.video, '-pix_fmt', 'yuv420p', '-c:a', 'libopus', '-b:a', '64k'],
        ]),
      );
      // Opus frames of 20 ms: 960 samples at 48 kHz.
      const regular = regularClip(media, { video: [90000, 3000], audio: [48000, 960] });
      const path = `codec/${c.name}`;
      const src = new Source(path, regular);
      src.pushUntil(4.5);
      const mv = await get(`/hls/${path}/index.m3u8`);
      assert.match(mv.text, c.codecs);
      const p = await playlist(path);
      assert.deepEqual(conformanceProblems(p), []);
      const init = await get(`/hls/${path}/${p.segments[0].map}`);
      const segment = await get(`/hls/${path}/${p.segments[1].uri}`);
      const streams = probeBytes(concatBytes([init.bytes, segment.bytes]), ['-count_frames', '-show_streams'])
        .streams!;
      const v = streams.find((x) => x.codec_type === 'video');
      const a = streams.find((x) => x.codec_type === 'audio');
      assert.equal(v?.codec_name, c.probed);
      assert.equal(Number(v?.nb_read_frames), 60);
      assert.equal(a?.codec_name, 'opus');
      src.unpublish();
    });
  }

  it('cuts an audio-only stream at the target (every audio frame is a random access point)', async () => {
    const audioOnly: Clip = {
      tracks: clip.tracks.filter((t) => t.kind === 'audio'),
      frames: clip.frames.filter((f) => f.trackId !== clip.timing.id),
      length: clip.length,
      timing: clip.tracks.find((t) => t.kind === 'audio')!,
    };
    const src = new Source('codec/audio', audioOnly);
    src.pushUntil(8.1);
    const p = await playlist('codec/audio');
    assert.deepEqual(conformanceProblems(p), []);
    const complete = p.segments.filter((s) => s.uri);
    assert.equal(complete.length, 4);
    for (const s of complete) assert.ok(s.duration >= 2 && s.duration < 2.03, `segment of ${s.duration} s`);
    const mv = await get('/hls/codec/audio/index.m3u8');
    assert.match(mv.text, /CODECS="mp4a\.40\.2"/);
    assert.doesNotMatch(mv.text, /RESOLUTION|FRAME-RATE/);
    src.unpublish();
  });
});
