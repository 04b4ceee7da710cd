import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRedisUrl, RedisUrlError, redact } from './redis.ts';

test('a redis:// URL names one server, its credentials and database', () => {
  assert.deepEqual(parseRedisUrl('redis://app:s3cret@10.0.0.5:6380/2'), {
    kind: 'redis',
    hosts: [{ host: '10.0.0.5', port: 6380 }],
    username: 'app',
    password: 's3cret',
    db: 2,
    masterName: undefined,
  });
  assert.deepEqual(parseRedisUrl('rediss://cache.example.net').hosts, [
    { host: 'cache.example.net', port: 6379 },
  ]);
});

test('a redis+sentinel:// URL lists sentinels and names the master', () => {
  const t = parseRedisUrl('redis+sentinel://:pw@s1:26379,s2,[::1]:26380/mymaster');
  assert.equal(t.kind, 'sentinel');
  assert.equal(t.masterName, 'mymaster');
  assert.equal(t.password, 'pw');
  assert.deepEqual(t.hosts, [
    { host: 's1', port: 26379 },
    { host: 's2', port: 26379 },
    { host: '::1', port: 26380 },
  ]);
});

test('a malformed cluster.redis is refused with the value, never its password', () => {
  assert.throws(
    () => parseRedisUrl('http://127.0.0.1:6379'),
    /cluster.redis must look like .*"http:\/\/127.0.0.1:6379"/,
  );
  assert.throws(() => parseRedisUrl('redis+sentinel://s1:26379'), /needs the master name/);
  assert.throws(() => parseRedisUrl('redis://a:1,b:2'), /takes one host/);
  assert.throws(() => parseRedisUrl('redis://host:99999'), RedisUrlError);
  assert.equal(redact('redis://user:hunter2@h:1'), 'redis://user:***@h:1');
});
