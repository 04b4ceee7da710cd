/**
 * Tokens signed by an identity provider's keys (RS256, PS256, ES256, EdDSA) checked against its key set
 * served over HTTP: rotation, an unreachable or slow key set, issuer and audience, and the algorithm
 * confusions (`alg: none`, an HS256 token keyed with the public key) that RFC 8725 §2.1 warns about.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, test } from 'node:test';
import { SignJWT } from 'jose';
import { KeySetServer } from '../../test/helpers/jwks.ts';
import { signToken, TokenVerifier } from './Tokens.ts';

let keys: KeySetServer;
const grants = [{ pattern: 'live/*', actions: ['play' as const] }];
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

before(async () => {
  keys = await KeySetServer.start(['RS256', 'PS256', 'ES256', 'EdDSA']);
});
after(() => keys.close());

test('RS256, PS256, ES256 and EdDSA tokens verify against the key set, fetched once', async () => {
  const verifier = new TokenVerifier({ jwksUrl: keys.url });
  const before = keys.fetches;
  for (const alg of ['RS256', 'PS256', 'ES256', 'EdDSA'] as const) {
    const claims = await verifier.verify(await keys.sign({ sub: `u-${alg}`, exp: inAnHour(), grants }, alg));
    assert.equal(claims.sub, `u-${alg}`);
    assert.deepEqual(claims.grants, grants);
  }
  assert.equal(keys.fetches - before, 1, 'the key set is cached');
});

test('HS384 and HS512 verify only when auth.jwtAlgorithms lists them', async () => {
  const sign = (alg: string) =>
    new SignJWT({ sub: 'a', grants: [] }).setProtectedHeader({ alg }).sign(new TextEncoder().encode('s'));
  const verifier = new TokenVerifier({ secret: 's', algorithms: ['HS384', 'HS512'] });
  assert.equal((await verifier.verify(await sign('HS384'))).sub, 'a');
  assert.equal((await verifier.verify(await sign('HS512'))).sub, 'a');
  await assert.rejects(
    verifier.verify(signToken('s', { sub: 'a', grants: [] })),
    /algorithm "HS256" is not accepted; accepted: HS384, HS512/,
  );
});

test('after a key rotation new tokens verify (unknown kid refetches) and old ones are refused', async () => {
  const verifier = new TokenVerifier({ jwksUrl: keys.url, jwksCooldownMs: 0 });
  const old = await keys.sign({ sub: 'old', exp: inAnHour(), grants });
  assert.equal((await verifier.verify(old)).sub, 'old');
  await keys.rotate(['RS256']);
  const fresh = await keys.sign({ sub: 'fresh', exp: inAnHour(), grants });
  assert.equal((await verifier.verify(fresh)).sub, 'fresh');
  await assert.rejects(verifier.verify(old), /no key of the key set .* matches the token/);
  await keys.rotate(['RS256', 'PS256', 'ES256', 'EdDSA']);
});

test('alg none, HS256 keyed with the public key, and RS256 without a key set are refused', async () => {
  const verifier = new TokenVerifier({ secret: 'hmac-secret', jwksUrl: keys.url });
  const body = Buffer.from(JSON.stringify({ sub: 'mallory', grants })).toString('base64url');
  const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${body}.`;
  await assert.rejects(verifier.verify(`${none}x`), /algorithm "none" is not accepted/);
  // The classic confusion: the attacker signs HS256 with the (public) RSA key as the HMAC secret.
  const header = Buffer.from('{"alg":"HS256"}').toString('base64url');
  const publicKey = JSON.stringify(keys.publicJwk('RS256'));
  const confused = `${header}.${body}.${createHmac('sha256', publicKey).update(`${header}.${body}`).digest('base64url')}`;
  await assert.rejects(verifier.verify(confused), /signature does not verify/);
  const hmacOnly = new TokenVerifier('hmac-secret');
  await assert.rejects(
    hmacOnly.verify(await keys.sign({ sub: 'a', grants })),
    /"RS256" needs auth.jwksUrl, which is not configured/,
  );
});

test('issuer and audience are required when configured', async () => {
  const verifier = new TokenVerifier({
    jwksUrl: keys.url,
    issuer: 'https://id.example',
    audience: 'subsecond',
  });
  const ok = await keys.sign({ sub: 'a', grants, iss: 'https://id.example', aud: 'subsecond' });
  assert.equal((await verifier.verify(ok)).sub, 'a');
  await assert.rejects(
    verifier.verify(await keys.sign({ sub: 'a', grants, iss: 'https://evil.example', aud: 'subsecond' })),
    /issuer "https:\/\/evil.example" is not auth.issuer "https:\/\/id.example"/,
  );
  await assert.rejects(
    verifier.verify(await keys.sign({ sub: 'a', grants, iss: 'https://id.example' })),
    /audience .* does not include auth.audience "subsecond"/,
  );
});

test('an unreachable or slow key set refuses the token, naming the URL', async () => {
  const token = await keys.sign({ sub: 'a', grants });
  const unreachable = new TokenVerifier({ jwksUrl: 'http://127.0.0.1:9/jwks.json' });
  await assert.rejects(unreachable.verify(token), /cannot fetch the key set http:\/\/127.0.0.1:9\/jwks.json/);
  keys.delayMs = 1000;
  try {
    const slow = new TokenVerifier({ jwksUrl: keys.url, jwksTimeoutMs: 100 });
    const started = Date.now();
    await assert.rejects(slow.verify(token), /did not answer in time/);
    assert.ok(Date.now() - started < 900, 'the timeout, not the slow answer, ended the wait');
  } finally {
    keys.delayMs = 0;
  }
});
