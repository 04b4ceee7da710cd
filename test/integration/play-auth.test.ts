/**
 * auth.play: token on every transport against the real server: WHEP, WebSocket + MSE, LL-HLS, LL-DASH, RTMP
 * play (ffmpeg) and the stream's API details refuse a viewer without a token, with an expired one, one for
 * another path, a forged one, `alg: none`, and an RS256 token whose key left the key set (served by the test)
 * after a rotation — 401/403 with the reason, WebSocket close 4401/4403, RTMP NetStream.Play.Failed — and let
 * in HS256 and RS256 tokens granting play. LL-HLS/LL-DASH media URIs carry a signature: forged, missing or
 * expired ones are refused.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { WebSocket } from 'ws';
import { signToken } from '../../src/auth/Tokens.ts';
import { type RunningServer, startServer } from '../../src/server.ts';
import { KeySetServer } from '../helpers/jwks.ts';
import { killAll, publishTestSource, stop, waitFor } from '../helpers/processes.ts';

const execFileAsync = promisify(execFile);
const SECRET = 'play-auth-test-secret';
const SIGNING = 'edge-shared-signing-secret';
const STREAM = 'live/paid';
let server: RunningServer;
let keys: KeySetServer;
let publisher: ChildProcess | undefined;

const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;
const play = (pattern: string) => [{ pattern, actions: ['play' as const] }];
const hs = (claims: Parameters<typeof signToken>[1], secret = SECRET) => signToken(secret, claims);

before(async () => {
  keys = await KeySetServer.start(['RS256']);
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { host: '127.0.0.1', port: 0 },
    webrtc: { udpPort: 0 },
    hls: { segmentTargetMs: 1000, partTargetMs: 250 },
    log: { level: 'silent' },
    auth: {
      play: 'token',
      jwtSecret: SECRET,
      jwksUrl: keys.url,
      jwksCooldownMs: 0,
      segmentSigningSecret: SIGNING,
    },
  });
  publisher = publishTestSource(`${server.rtmpUrl}/${STREAM}`, {
    size: '320x240',
    rate: 25,
    gop: 25,
    seconds: 120,
  });
  const good = hs({ sub: 'viewer', exp: inAnHour(), grants: play('live/*') });
  await waitFor(
    'the stream on LL-HLS',
    async () => (await fetch(`${server.httpUrl}/hls/${STREAM}/media.m3u8?token=${good}`)).ok,
    20_000,
  );
});

after(async () => {
  await stop(publisher);
  killAll();
  await server?.close();
  await keys?.close();
});

/** What each transport answers a viewer presenting `token` (undefined: none): an HTTP status, a close code, or 'played'. */
const transports = {
  async whep(token?: string) {
    const response = await fetch(`${server.httpUrl}/whep/${STREAM}`, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: 'v=0\r\n',
    });
    const { error } = (await response.json()) as { error: string };
    // Past authorization the (deliberately empty) offer is what is refused: 400.
    return { status: response.status, reason: error };
  },
  mse(token?: string): Promise<{ status: number; reason: string }> {
    const ws = new WebSocket(
      `${server.httpUrl.replace('http', 'ws')}/mse/${STREAM}${token ? `?token=${token}` : ''}`,
    );
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('MSE socket neither played nor closed')), 10_000);
      ws.on('message', (_data, binary) => {
        if (!binary) return;
        clearTimeout(timer);
        ws.close();
        resolve({ status: 200, reason: 'played' });
      });
      ws.on('close', (code, reason) => {
        clearTimeout(timer);
        resolve({ status: code, reason: reason.toString() });
      });
      ws.on('error', () => {});
    });
  },
  async hls(token?: string) {
    const response = await fetch(
      `${server.httpUrl}/hls/${STREAM}/index.m3u8${token ? `?token=${token}` : ''}`,
    );
    const text = await response.text();
    return {
      status: response.status,
      reason: response.ok ? text : (JSON.parse(text) as { error: string }).error,
    };
  },
  async dash(token?: string) {
    const response = await fetch(
      `${server.httpUrl}/dash/${STREAM}/manifest.mpd${token ? `?token=${token}` : ''}`,
    );
    const text = await response.text();
    return {
      status: response.status,
      reason: response.ok ? text : (JSON.parse(text) as { error: string }).error,
    };
  },
  async api(token?: string) {
    const response = await fetch(`${server.httpUrl}/api/v1/streams/${STREAM}`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
    const body = (await response.json()) as { error?: string };
    return { status: response.status, reason: body.error ?? '' };
  },
  async rtmp(token?: string) {
    const url = `${server.rtmpUrl}/${STREAM}${token ? `?token=${token}` : ''}`;
    try {
      await execFileAsync(
        'ffmpeg',
        ['-hide_banner', '-rw_timeout', '8000000', '-i', url, '-frames:v', '5', '-f', 'null', '-'],
        {
          timeout: 20_000,
        },
      );
      return { status: 200, reason: 'played' };
    } catch (err) {
      return { status: 0, reason: String((err as { stderr?: string }).stderr ?? err) };
    }
  },
};

/** The refusal each transport gives for 401 / 403. */
function assertRefused(
  label: string,
  got: { status: number; reason: string },
  status: 401 | 403,
  reason: RegExp,
) {
  const name = label.split(' ')[0];
  if (name === 'mse') assert.equal(got.status, status === 401 ? 4401 : 4403, `${label}: ${got.reason}`);
  // ffmpeg prints the description of the NetStream.Play.Failed status: the reason.
  else if (name === 'rtmp') assert.match(got.reason, /Server error: play refused/, `${label}: ${got.reason}`);
  else assert.equal(got.status, status, `${label}: ${got.reason}`);
  assert.match(got.reason, reason, label);
}

function assertAdmitted(name: string, got: { status: number; reason: string }) {
  if (name === 'whep')
    assert.equal(got.status, 400, `whep: past authorization the empty offer is refused: ${got.reason}`);
  else assert.equal(got.status, 200, `${name}: ${got.reason}`);
}

test('every transport refuses a viewer without a usable token, saying why', async () => {
  const body = Buffer.from(JSON.stringify({ sub: 'mallory', grants: play('**') })).toString('base64url');
  const cases: [string, string | undefined, 401 | 403, RegExp][] = [
    ['no token', undefined, 401, /a token granting play on it is required/],
    ['expired', hs({ sub: 'v', exp: Math.floor(Date.now() / 1000) - 5, grants: play('**') }), 401, /expired/],
    ['other path', hs({ sub: 'v', exp: inAnHour(), grants: play('other/*') }), 403, /grants no play/],
    ['forged', hs({ sub: 'v', grants: play('**') }, 'not-the-secret'), 401, /signature does not verify/],
    [
      'alg none',
      `${Buffer.from('{"alg":"none"}').toString('base64url')}.${body}.x`,
      401,
      /"none" is not accepted/,
    ],
  ];
  for (const [name, check] of Object.entries(transports)) {
    for (const [label, token, status, reason] of cases) {
      assertRefused(`${name} (${label})`, await check(token), status, reason);
    }
  }
});

test('HS256 and RS256 (key set) tokens granting play are let in on every transport', async () => {
  const hsGood = hs({ sub: 'viewer', exp: inAnHour(), grants: play('live/*') });
  const rsGood = await keys.sign({ sub: 'idp-user', exp: inAnHour(), grants: play('live/**') });
  for (const [name, check] of Object.entries(transports)) {
    assertAdmitted(name, await check(hsGood));
    assertAdmitted(name, await check(rsGood));
  }
});

test('after a key rotation tokens of the new key play and a token of the retired key is refused', async () => {
  // Signed before the rotation, never presented: nothing remembers it as verified.
  const retired = await keys.sign({ sub: 'old-key', exp: inAnHour(), grants: play('**') });
  await keys.rotate(['RS256']);
  const fresh = await keys.sign({ sub: 'new-key', exp: inAnHour(), grants: play('**') });
  for (const [name, check] of Object.entries(transports)) {
    // The new kid is unknown to the cached set, so the first check refetches it (and drops the old key).
    assertAdmitted(name, await check(fresh));
    assertRefused(name, await check(retired), 401, /no key of the key set/);
  }
});

/** md5(expires + folder + " " + secret), base64url: nginx secure_link's form, computed as an edge would. */
const sign = (expires: number, folder: string) =>
  createHash('md5').update(`${expires}${folder} ${SIGNING}`).digest('base64url');

test('LL-HLS and LL-DASH media URIs carry a shared signature; missing, forged, expired or foreign ones are refused', async () => {
  const token = hs({ sub: 'viewer', exp: inAnHour(), grants: play('live/*') });
  const other = hs({ sub: 'viewer2', exp: inAnHour(), grants: play('live/*') });
  const index = await (await fetch(`${server.httpUrl}/hls/${STREAM}/index.m3u8?token=${token}`)).text();
  assert.match(
    index,
    new RegExp(`^media\\.m3u8\\?token=${token}$`, 'm'),
    'the token rides on the media playlist URI',
  );
  const playlist = async (t: string) =>
    (await fetch(`${server.httpUrl}/hls/${STREAM}/media.m3u8?token=${t}`)).text();
  const [a, b] = await Promise.all([playlist(token), playlist(other)]);
  const query = /URI="init-[^"?]+\?(expires=\d+&sig=[\w-]+)"/.exec(a)?.[1];
  assert.ok(query, `a signed init URI in ${a.slice(0, 400)}`);
  assert.ok(b.includes(query), 'two viewers of the same window get the same signed URIs');
  const init = /URI="(init-[^"?]+)\?/.exec(a)?.[1];
  const media = (name: string, q: string) =>
    fetch(`${server.httpUrl}/hls/${STREAM}/${name}${q ? `?${q}` : ''}`);
  assert.equal((await media(init!, query)).status, 200);
  const refused = async (q: string, reason: RegExp) => {
    const response = await media(init!, q);
    assert.equal(response.status, 403, q);
    assert.match(((await response.json()) as { error: string }).error, reason);
  };
  await refused('', /needs the expires and sig/);
  const expires = Number(/expires=(\d+)/.exec(query)![1]);
  await refused(`expires=${expires}&sig=${sign(expires, '/hls/live/other/')}`, /does not verify/);
  await refused(`expires=${expires + 3600}&sig=${sign(expires, `/hls/${STREAM}/`)}`, /does not verify/);
  const past = Math.floor(Date.now() / 1000) - 10;
  await refused(`expires=${past}&sig=${sign(past, `/hls/${STREAM}/`)}`, /expired/);
  // The edge's own computation agrees with the server's.
  assert.equal(query, `expires=${expires}&sig=${sign(expires, `/hls/${STREAM}/`)}`);

  const mpd = await (await fetch(`${server.httpUrl}/dash/${STREAM}/manifest.mpd?token=${token}`)).text();
  const dashQuery = /media="seg-[^"?]+\?(expires=\d+&amp;sig=[\w-]+)"/.exec(mpd)?.[1]?.replace('&amp;', '&');
  assert.ok(dashQuery, `a signed media template in ${mpd.slice(0, 600)}`);
  const dashInit = /initialization="([^"?]+)\?/.exec(mpd)![1];
  assert.equal((await fetch(`${server.httpUrl}/dash/${STREAM}/${dashInit}?${dashQuery}`)).status, 200);
  assert.equal((await fetch(`${server.httpUrl}/dash/${STREAM}/${dashInit}`)).status, 403);
  assert.equal(
    (await fetch(`${server.httpUrl}/dash/${STREAM}/${dashInit}?${query}`)).status,
    403,
    'an HLS signature is not a DASH one',
  );
});
