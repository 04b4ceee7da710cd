import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NackTracker } from './nack.ts';
import { parseRtcp, writeNack } from './rtcp.ts';

describe('NackTracker', () => {
  it('asks for missing packets at once, again after a round trip, and stops when they arrive', () => {
    const t = new NackTracker();
    for (const s of [1, 2, 6, 7]) t.onPacket(s, 0);
    assert.deepEqual(t.due(0, 50), [3, 4, 5]);
    assert.deepEqual(t.due(10, 50), [], 'not again within the round-trip time');
    t.onPacket(4, 20);
    assert.equal(t.recovered, 1);
    assert.deepEqual(t.due(50, 50), [3, 5]);
    t.onPacket(3, 60);
    t.onPacket(5, 61);
    assert.deepEqual(t.due(200, 50), []);
    assert.equal(t.missingCount, 0);
    assert.equal(t.givenUp, 0);
  });

  it('gives up after maxRetries requests or maxAgeMs, whichever comes first', () => {
    const t = new NackTracker({ maxRetries: 3, maxAgeMs: 10_000 });
    t.onPacket(10, 0);
    t.onPacket(12, 0);
    const asked = [0, 100, 200, 300, 400].map((now) => t.due(now, 100));
    assert.deepEqual(asked, [[11], [11], [11], [], []]);
    assert.equal(t.givenUp, 1);
    const old = new NackTracker({ maxAgeMs: 500 });
    old.onPacket(1, 0);
    old.onPacket(3, 0);
    assert.deepEqual(old.due(400, 100), [2]);
    assert.deepEqual(old.due(501, 100), []);
    assert.equal(old.givenUp, 1);
  });

  it('works across the sequence wrap and feeds writeNack', () => {
    const t = new NackTracker();
    t.onPacket(65530, 0);
    t.onPacket(2, 0);
    const due = t.due(0, 50);
    assert.deepEqual(due, [65531, 65532, 65533, 65534, 65535, 0, 1]);
    const [nack] = parseRtcp(writeNack(1, 2, due));
    assert.deepEqual(nack, { type: 'nack', senderSsrc: 1, mediaSsrc: 2, lost: due });
  });

  it('gives up a hole wider than its capacity at once, and keeps at most capacity missing', () => {
    const t = new NackTracker({ capacity: 100 });
    t.onPacket(0, 0);
    t.onPacket(50, 0);
    t.onPacket(500, 0);
    assert.equal(t.missingCount, 0);
    assert.equal(t.givenUp, 49 + 449);
    const small = new NackTracker({ capacity: 10 });
    small.onPacket(0, 0);
    small.onPacket(8, 0);
    small.onPacket(14, 0);
    assert.equal(small.missingCount, 10);
    assert.deepEqual(small.due(0, 50), [3, 4, 5, 6, 7, 9, 10, 11, 12, 13]);
    assert.equal(small.givenUp, 2);
  });

  it('starts over when the sender restarts its numbering, and ignores a lone stray far behind', () => {
    const t = new NackTracker();
    t.onPacket(5000, 0);
    t.onPacket(5003, 0);
    t.onPacket(100, 1); // stray
    t.onPacket(5004, 2);
    assert.deepEqual(t.due(3, 50), [5001, 5002]);
    t.onPacket(200, 10);
    t.onPacket(201, 11);
    t.onPacket(203, 12);
    assert.deepEqual(t.due(100, 50), [202]);
    assert.equal(t.givenUp, 2, 'the holes of the old numbering are given up');
  });
});
