import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DelayHistogram } from './DelayHistogram.ts';

test('quantiles land in the bucket of the recorded values', () => {
  const h = new DelayHistogram();
  for (let i = 0; i < 99; i++) h.record(0.55);
  h.record(250);
  assert.equal(h.count, 100);
  assert.equal(h.quantile(0.5), 0.6);
  assert.equal(h.quantile(0.99), 0.6);
  assert.equal(h.quantile(1), 250);
  assert.equal(h.max, 250);
});

test('every range maps into its bucket and the top is open-ended', () => {
  const h = new DelayHistogram();
  h.record(42.5);
  assert.equal(h.quantile(0.5), 42.5); // capped at max
  h.record(12_345);
  assert.equal(h.quantile(1), 12_345);
  h.record(-3);
  assert.equal(h.quantile(0), 0.1);
  h.reset();
  assert.equal(h.quantile(0.5), 0);
});
