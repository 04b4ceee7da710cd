import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  DEFAULT_LIVE_EDGE,
  LiveEdgeController,
  type PlayheadSnapshot,
  planLiveEdge,
} from './LiveEdgeController.ts';

const at = (currentTime: number, ranges: [number, number][], more: Partial<PlayheadSnapshot> = {}) =>
  planLiveEdge(
    { currentTime, paused: false, seeking: false, ranges, stalledMs: 0, ...more },
    DEFAULT_LIVE_EDGE,
  );

test('does nothing without media', () => {
  const plan = at(0, []);
  assert.equal(plan.seekTo, null);
  assert.equal(plan.rate, 1);
});

test('starts at the first buffered frame, even while paused', () => {
  const plan = at(0, [[120.5, 121]], { paused: true });
  assert.equal(plan.seekTo, 120.5);
  assert.equal(plan.seekReason, 'start');
});

test('jumps a gap between ranges (the server skipped frames)', () => {
  const plan = at(10.5, [
    [9, 10.2],
    [10.8, 11],
  ]);
  assert.equal(plan.seekTo, 10.8);
  assert.equal(plan.seekReason, 'gap');
});

test('plays at 1.0 near the target and speeds up in proportion to excess buffer', () => {
  assert.equal(at(10, [[9, 10.15]]).rate, 1);
  assert.equal(at(10, [[9, 10.4]]).rate, 1.16);
  assert.equal(at(10, [[9, 10.95]]).rate, 1.25);
});

test('a large buffer target moves the seek point with it', () => {
  const plan = (target: number) =>
    planLiveEdge(
      { currentTime: 10, paused: false, seeking: false, ranges: [[9, 11.3]], stalledMs: 0 },
      DEFAULT_LIVE_EDGE,
      target,
    );
  assert.equal(plan(0.15).seekReason, 'behind', '1.3 s behind with the default target');
  assert.equal(plan(1).seekTo, null, 'a 1 s target is 1.3 s behind by design, and catches up by rate');
  assert.equal(plan(1).rate, 1.19);
});

test('seeks near the live edge when far behind', () => {
  const plan = at(10, [[9, 12]]);
  assert.equal(plan.seekReason, 'behind');
  assert.ok(Math.abs((plan.seekTo ?? 0) - 11.85) < 1e-9);
  assert.equal(plan.latency, 2);
});

test('nudges a stalled playhead with data ahead, and leaves a starved one alone', () => {
  const stalled = at(10, [[9, 10.5]], { stalledMs: 800 });
  assert.equal(stalled.seekReason, 'stall');
  assert.ok(Math.abs((stalled.seekTo ?? 0) - 10.1) < 1e-9);
  assert.equal(at(10, [[9, 10.05]], { stalledMs: 5000 }).seekTo, null);
  assert.equal(at(10, [[9, 10.5]], { stalledMs: 100 }).seekTo, null);
  assert.equal(at(10, [[9, 10.5]], { stalledMs: 800, seeking: true }).seekTo, null);
});

test('evicts in chunks what lies more than 10 s behind', () => {
  assert.equal(at(20, [[11, 20.1]]).evict, null);
  assert.deepEqual(at(30, [[15, 30.1]]).evict, { start: 15, end: 20 });
});

test('raises the buffer target after an underrun and lowers it after a calm period', () => {
  const video = { currentTime: 10, paused: false, seeking: false, playbackRate: 1 };
  const edge = new LiveEdgeController(video as HTMLVideoElement, DEFAULT_LIVE_EDGE);
  edge.tick([[9, 10.3]], 0);
  video.currentTime = 10.3;
  edge.tick([[9, 10.3]], 300); // advancing: playback has begun
  edge.tick([[9, 10.3]], 400); // the playhead stopped at the end of the buffer
  edge.tick([[9, 10.3]], 500);
  assert.equal(edge.underruns, 1, 'one underrun per episode');
  assert.ok(Math.abs(edge.targetBuffer - 0.25) < 1e-9);
  video.currentTime = 10.4;
  edge.tick([[9, 10.6]], 40_000);
  assert.equal(edge.targetBuffer, DEFAULT_LIVE_EDGE.targetBuffer);
  edge.reset();
  assert.equal(edge.targetBuffer, DEFAULT_LIVE_EDGE.targetBuffer);
});

test('does not count the wait for the first frame as an underrun', () => {
  const video = { currentTime: 0, paused: false, seeking: false, playbackRate: 1 };
  const edge = new LiveEdgeController(video as HTMLVideoElement, DEFAULT_LIVE_EDGE);
  for (let now = 0; now < 2000; now += 100) edge.tick([], now);
  assert.equal(edge.underruns, 0);
});
