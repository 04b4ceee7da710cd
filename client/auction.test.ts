import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type AuctionState, foldAuction, NO_AUCTION, winner } from './auction.ts';

let id = 0;
const msg = (from: string, type: string, data: unknown, time: number) => ({
  id: ++id,
  from,
  type,
  data,
  time,
});

test('the highest valid bid before the end wins; late, low and malformed bids do not count', () => {
  const log = [
    msg('host', 'auction-open', { item: 'signed poster', startPrice: 10, durationMs: 1000 }, 1000),
    msg('ann', 'bid', { amount: 11 }, 1100),
    msg('bob', 'bid', { amount: 11 }, 1150),
    msg('bob', 'bid', { amount: 15 }, 1200),
    msg('ann', 'bid', { amount: 'lots' }, 1300),
    msg('ann', 'bid', { amount: 16 }, 1999),
    msg('bob', 'bid', { amount: 99 }, 2000),
    msg('host', 'auction-open', { item: 'again', startPrice: 1, durationMs: 10 }, 1500),
  ];
  const state = log.reduce<AuctionState>(foldAuction, NO_AUCTION);
  assert.equal(state.item, 'signed poster');
  assert.equal(state.price, 16);
  assert.equal(state.leader, 'ann');
  assert.deepEqual(
    state.bids.map((b) => [b.from, b.accepted, b.reason ?? '']),
    [
      ['ann', true, ''],
      ['bob', false, 'below 12'],
      ['bob', true, ''],
      ['ann', false, 'not a number'],
      ['ann', true, ''],
      ['bob', false, 'after the end'],
    ],
  );
  assert.equal(winner(state, 1999), null, 'not over yet');
  assert.equal(winner(state, 2000), 'ann');
  const next = foldAuction(
    state,
    msg('host', 'auction-open', { item: 'next', startPrice: 5, durationMs: 500 }, 2500),
  );
  assert.equal(next.item, 'next');
  assert.equal(next.leader, null);
});
