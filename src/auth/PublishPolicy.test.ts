import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULTS } from '../config/schema.ts';
import { createPublishPolicy, isLoopback } from './PublishPolicy.ts';

test('loopback addresses are recognised in every form', () => {
  for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) assert.equal(isLoopback(a), true, a);
  for (const a of ['10.0.0.1', '::ffff:10.0.0.1', '128.0.0.1', 'fe80::1', ''])
    assert.equal(isLoopback(a), false, a);
});

test('by default only loopback may publish', () => {
  const policy = createPublishPolicy(DEFAULTS.auth);
  assert.equal(policy({ protocol: 'rtmp', path: 'live/a', remoteAddress: '127.0.0.1' }), null);
  const refusal = policy({ protocol: 'rtmp', path: 'live/a', remoteAddress: '192.0.2.7', key: 'guess' });
  assert.match(refusal ?? '', /remote publishing is off.*auth\.publishKey/);
  assert.match(refusal ?? '', /192\.0\.2\.7/);
});

test('a configured key lets remote publishers in and a wrong one is named as such', () => {
  const policy = createPublishPolicy({ ...DEFAULTS.auth, publishKey: 's3cret' });
  assert.equal(policy({ protocol: 'rtmp', path: 'live/a', remoteAddress: '192.0.2.7', key: 's3cret' }), null);
  assert.match(
    policy({ protocol: 'rtmp', path: 'live/a', remoteAddress: '192.0.2.7', key: 'nope' }) ?? '',
    /wrong/,
  );
  assert.match(
    policy({ protocol: 'rtmp', path: 'live/a', remoteAddress: '192.0.2.7' }) ?? '',
    /key is required/,
  );
  // A wrong key is refused even from loopback: a client that sends a key means it.
  assert.match(
    policy({ protocol: 'rtmp', path: 'live/a', remoteAddress: '127.0.0.1', key: 'x' }) ?? '',
    /wrong/,
  );
});

test('loopback publishing can be switched off', () => {
  const policy = createPublishPolicy({ ...DEFAULTS.auth, loopbackPublish: false, publishKey: 'k' });
  assert.notEqual(policy({ protocol: 'rtmp', path: 'live/a', remoteAddress: '127.0.0.1' }), null);
});
