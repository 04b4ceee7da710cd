import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import { compilePattern, granted, signToken, TokenError, TokenVerifier } from './Tokens.ts';

const SECRET = 'unit-secret';
const verifier = new TokenVerifier(SECRET);
const now = Date.UTC(2026, 11, 2, 0, 0, 0);
const seconds = now / 1000;

test('a signed token verifies to its sub, expiry and grants', async () => {
  const claims = await verifier.verify(
    signToken(SECRET, {
      sub: 'alice',
      exp: seconds + 60,
      grants: [{ pattern: 'live/*:chat', actions: ['subscribe', 'publish'] }],
    }),
    now,
  );
  assert.deepEqual(claims, {
    sub: 'alice',
    expiresAt: now + 60_000,
    grants: [{ pattern: 'live/*:chat', actions: ['subscribe', 'publish'] }],
  });
});

test('expiry and not-before are enforced at the given time', async () => {
  const t = signToken(SECRET, { sub: 'a', exp: seconds, nbf: seconds - 60, grants: [] });
  await assert.rejects(async () => verifier.verify(t, now), /token expired at 2026-12-02T00:00:00.000Z/);
  await assert.doesNotReject(async () => verifier.verify(t, now - 1));
  await assert.rejects(async () => verifier.verify(t, now - 61_000), /not valid before/);
});

test('a forged, altered or alg-switched token is refused with the reason', async () => {
  const good = signToken(SECRET, { sub: 'a', grants: [] });
  await assert.rejects(
    async () => verifier.verify(signToken('other', { sub: 'a', grants: [] })),
    /signature does not verify/,
  );
  const [h, , s] = good.split('.');
  const altered = Buffer.from(JSON.stringify({ sub: 'admin', grants: [] })).toString('base64url');
  await assert.rejects(async () => verifier.verify(`${h}.${altered}.${s}`), /signature does not verify/);
  // HS512 signed with the same secret is still refused: the server, not the token, picks the algorithm.
  const h512 = Buffer.from(JSON.stringify({ alg: 'HS512' })).toString('base64url');
  const p = Buffer.from(JSON.stringify({ sub: 'a', grants: [] })).toString('base64url');
  const sig = createHmac('sha512', SECRET).update(`${h512}.${p}`).digest('base64url');
  await assert.rejects(
    async () => verifier.verify(`${h512}.${p}.${sig}`),
    /algorithm "HS512" is not accepted/,
  );
  await assert.rejects(async () => verifier.verify('a.b'), TokenError);
  await assert.rejects(async () => verifier.verify('x'.repeat(9000)), /at most 8192/);
});

test('claims are validated: sub, reserved anon- ids, grants and their actions', async () => {
  await assert.rejects(
    async () => verifier.verify(signToken(SECRET, { sub: '', grants: [] })),
    /"sub" must be/,
  );
  await assert.rejects(
    async () => verifier.verify(signToken(SECRET, { sub: 'anon-abcdefgh', grants: [] })),
    /reserved/,
  );
  await assert.rejects(
    async () =>
      verifier.verify(signToken(SECRET, { sub: 'a' } as unknown as Parameters<typeof signToken>[1])),
    /"grants" must be an array/,
  );
  await assert.rejects(
    async () =>
      verifier.verify(
        signToken(SECRET, { sub: 'a', grants: [{ pattern: 'x', actions: ['delete'] }] } as never),
      ),
    /unknown action "delete"/,
  );
  await assert.rejects(
    async () => verifier.verify(signToken(SECRET, { sub: 'a', exp: 'tomorrow', grants: [] } as never)),
    /"exp" must be a NumericDate/,
  );
  assert.throws(() => new TokenVerifier(''), /needs a secret/);
});

test('patterns: * within a segment, ** across them, the rest literal', () => {
  assert.ok(compilePattern('live/*:chat').test('live/cam1:chat'));
  assert.ok(!compilePattern('live/*:chat').test('live/a/b:chat'));
  assert.ok(compilePattern('live/**').test('live/a/b:chat'));
  assert.ok(!compilePattern('live/cam.1').test('live/camx1'));
  const grants = [{ pattern: 'live/cam1', actions: ['publish' as const] }];
  assert.equal(granted(grants, 'live/cam1', 'publish'), true);
  assert.equal(granted(grants, 'live/cam1', 'play'), false);
  assert.equal(granted(grants, 'live/cam1:chat', 'publish'), false);
});

test('only the canonical base64url spelling of a token verifies', async () => {
  const secret = 'canonical-secret';
  const token = signToken(secret, { sub: 'alice', grants: [] });
  const verifier = new TokenVerifier(secret);
  assert.equal((await verifier.verify(token)).sub, 'alice');
  // A 32-byte signature is 43 characters: the last carries 2 unused bits, so 3 other spellings decode the same.
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = alphabet.indexOf(token.at(-1)!);
  for (let low = 1; low < 4; low++) {
    const variant = token.slice(0, -1) + alphabet[last ^ low];
    await assert.rejects(verifier.verify(variant), /not canonical base64url/);
  }
});
