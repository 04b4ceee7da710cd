import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GopCache } from './GopCache.ts';

test('GOP cache restarts at every random access point and is bounded', () => {
  const gop = new GopCache<number>({ maxItems: 5, maxBytes: 1000 });
  gop.add(0, false, 10);
  assert.equal(gop.length, 0, 'nothing is cached before the first keyframe');
  gop.add(1, true, 10);
  gop.add(2, false, 10);
  assert.deepEqual(
    gop.entries.map((e) => e.item),
    [1, 2],
  );
  gop.add(3, true, 10);
  assert.deepEqual(
    gop.entries.map((e) => e.item),
    [3],
  );
  for (let i = 0; i < 4; i++) gop.add(4 + i, false, 10);
  assert.equal(gop.length, 5);
  gop.add(99, false, 10);
  assert.equal(gop.length, 0, 'past the count bound the cache empties until the next keyframe');
  gop.add(100, false, 10);
  assert.equal(gop.length, 0);
  gop.add(101, true, 990);
  gop.add(102, false, 20);
  assert.equal(gop.length, 0, 'past the byte bound too');
});
