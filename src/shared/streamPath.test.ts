import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidPathError, parseStreamPath } from './streamPath.ts';

test('stream paths: segments of [A-Za-z0-9_.-], no traversal, clear errors', () => {
  assert.equal(parseStreamPath('live/cam1'), 'live/cam1');
  assert.equal(parseStreamPath('/a/b.c-d_e/'), 'a/b.c-d_e');
  for (const bad of [
    '',
    '/',
    'live/../etc',
    'live/./x',
    'a b',
    'a//b',
    'x?y',
    'é',
    'a/%2e',
    `${'x'.repeat(129)}`,
  ]) {
    assert.throws(() => parseStreamPath(bad), InvalidPathError, bad);
  }
  assert.throws(() => parseStreamPath('live/../x'), /segment "\.\." is not allowed/);
});
