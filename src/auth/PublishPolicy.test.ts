import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULTS } from '../config/schema.ts';
import { createPublishPolicy, isLoopback } from './PublishPolicy.ts';
import { signToken } from './Tokens.ts';

test('loopback addresses are recognised in every form', async () => {
  for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) assert.equal(isLoopback(a), true, a);
  for (const a of ['10.0.0.1', '::ffff:10.0.0.1', '128.0.0.1', 'fe80::1', ''])
    assert.equal(isLoopback(a), false, a);
});

test('by default only loopback may publish', async () => {
  const policy = createPublishPolicy(DEFAULTS.auth);
  assert.equal(await policy({ protocol: 'rtmp', path: 'live/a', remoteAddress: '127.0.0.1' }), null);
  const refusal = await policy({
    protocol: 'rtmp',
    path: 'live/a',
    remoteAddress: '192.0.2.7',
    key: 'guess',
  });
  assert.match(refusal ?? '', /remote publishing is off.*auth\.publishKey/);
  assert.match(refusal ?? '', /192\.0\.2\.7/);
});

test('a configured key lets remote publishers in and a wrong one is named as such', async () => {
  const policy = createPublishPolicy({ ...DEFAULTS.auth, publishKey: 's3cret' });
  assert.equal(
    await policy({ protocol: 'rtmp', path: 'live/a', remoteAddress: '192.0.2.7', key: 's3cret' }),
    null,
  );
  assert.match(
    (await policy({ protocol: 'rtmp', path: 'live/a', remoteAddress: '192.0.2.7', key: 'nope' })) ?? '',
    /wrong/,
  );
  assert.match(
    (await policy({ protocol: 'rtmp', path: 'live/a', remoteAddress: '192.0.2.7' })) ?? '',
    /key is required/,
  );
  // A wrong key is refused even from loopback: a client that sends a key means it.
  assert.match(
    (await policy({ protocol: 'rtmp', path: 'live/a', remoteAddress: '127.0.0.1', key: 'x' })) ?? '',
    /wrong/,
  );
});

test('loopback publishing can be switched off', async () => {
  const policy = createPublishPolicy({ ...DEFAULTS.auth, loopbackPublish: false, publishKey: 'k' });
  assert.notEqual(await policy({ protocol: 'rtmp', path: 'live/a', remoteAddress: '127.0.0.1' }), null);
});

test('with auth.jwtSecret a token granting publish on the path lets a remote publisher in', async () => {
  const policy = createPublishPolicy({ ...DEFAULTS.auth, loopbackPublish: false, jwtSecret: 'j' });
  const exp = Math.floor(Date.now() / 1000) + 60;
  const cam = signToken('j', { sub: 'studio', exp, grants: [{ pattern: 'live/*', actions: ['publish'] }] });
  const remote = '192.0.2.7';
  assert.equal(await policy({ protocol: 'whip', path: 'live/a', remoteAddress: remote, key: cam }), null);
  assert.match(
    (await policy({ protocol: 'whip', path: 'other/a', remoteAddress: remote, key: cam })) ?? '',
    /token of studio grants no publish on it/,
  );
  const playOnly = signToken('j', { sub: 'v', exp, grants: [{ pattern: '**', actions: ['play'] }] });
  assert.match(
    (await policy({ protocol: 'rtmp', path: 'live/a', remoteAddress: remote, key: playOnly })) ?? '',
    /no publish/,
  );
  const expired = signToken('j', {
    sub: 's',
    exp: exp - 120,
    grants: [{ pattern: '**', actions: ['publish'] }],
  });
  assert.match(
    (await policy({ protocol: 'rtmp', path: 'live/a', remoteAddress: remote, key: expired })) ?? '',
    /expired/,
  );
  assert.match(
    (await policy({ protocol: 'rtmp', path: 'live/a', remoteAddress: remote })) ?? '',
    /a token granting publish on it is required/,
  );
});

test('the publish key keeps working beside tokens, and tokens are off without a secret', async () => {
  const both = createPublishPolicy({ ...DEFAULTS.auth, publishKey: 'k', jwtSecret: 'j' });
  assert.equal(await both({ protocol: 'rtmp', path: 'live/a', remoteAddress: '192.0.2.7', key: 'k' }), null);
  assert.match(
    (await both({ protocol: 'rtmp', path: 'live/a', remoteAddress: '192.0.2.7', key: 'x' })) ?? '',
    /wrong/,
  );
  const token = signToken('j', { sub: 's', grants: [{ pattern: '**', actions: ['publish'] }] });
  const keyOnly = createPublishPolicy({ ...DEFAULTS.auth, publishKey: 'k' });
  assert.match(
    (await keyOnly({ protocol: 'rtmp', path: 'live/a', remoteAddress: '192.0.2.7', key: token })) ?? '',
    /wrong/,
  );
});
