import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Sink, Subscriber } from './Subscriber.ts';

test('a slow subscriber skips to the next random access point instead of queueing', () => {
  const written: number[] = [];
  const sink: Sink<number> & { backlogBytes: number } = { backlogBytes: 0, write: (n) => written.push(n) };
  const sub = new Subscriber(sink, 1000);
  sub.offer(1, false);
  assert.deepEqual(written, [], 'starts at a random access point');
  sub.offer(2, true);
  sub.offer(3, false);
  sink.backlogBytes = 5000;
  sub.offer(4, false);
  sink.backlogBytes = 0;
  sub.offer(5, false);
  sub.offer(6, true);
  sub.offer(7, false);
  assert.deepEqual(written, [2, 3, 6, 7]);
  assert.equal(sub.skips, 1);
  assert.equal(sub.dropped, 3);
  assert.equal(sub.delivered, 4);
});
