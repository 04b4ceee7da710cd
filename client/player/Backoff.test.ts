import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Backoff } from './Backoff.ts';
import { ByteRateMeter } from './ByteRateMeter.ts';

test('back-off doubles from the base to the cap, jittered below the ceiling', () => {
  const ceilings: number[] = [];
  const backoff = new Backoff(250, 10_000, () => 1);
  for (let i = 0; i < 8; i++) ceilings.push(backoff.next());
  assert.deepEqual(ceilings, [250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
  backoff.reset();
  assert.equal(backoff.next(), 250);

  const jittered = new Backoff(250, 10_000, () => 0.5);
  assert.deepEqual([jittered.next(), jittered.next()], [125, 250]);
  const many = new Backoff(250, 10_000, () => 1);
  for (let i = 0; i < 2000; i++) many.next();
  assert.equal(many.next(), 10_000);
});

test('byte rate meter counts only the last window', () => {
  const meter = new ByteRateMeter(2000);
  meter.add(1000, 0);
  meter.add(1000, 1000);
  assert.equal(meter.bitrate(1500), (2000 * 8) / 2);
  assert.equal(meter.bitrate(2500), (1000 * 8) / 2);
  assert.equal(meter.bitrate(5000), 0);
  assert.equal(meter.total, 2000);
  for (let i = 0; i < 5000; i++) meter.add(10, 10_000 + i);
  assert.equal(meter.bitrate(15_000), (2000 * 10 * 8) / 2);
});
