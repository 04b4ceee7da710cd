/**
 * The live-auction rules, as a pure fold over a channel's messages. The server orders every message and
 * stamps its time, so every viewer folding the same sequence reaches the same price and the same winner —
 * the clock of no browser decides anything.
 *
 * - `auction-open` `{item, startPrice, durationMs}` opens an auction at the message's server time, unless one
 *   is still running;
 * - `bid` `{amount}` counts if an auction is running at the bid's server time and the amount is at least
 *   the price plus the increment; the highest valid bidder when time runs out wins.
 */
export const BID_INCREMENT = 1;

export interface Bid {
  readonly id: number;
  readonly from: string;
  readonly amount: number;
  readonly time: number;
  readonly accepted: boolean;
  /** Why a bid did not count. */
  readonly reason?: string;
}

export interface AuctionState {
  readonly item: string | null;
  readonly openedBy: string | null;
  readonly endsAt: number;
  readonly price: number;
  readonly leader: string | null;
  readonly bids: readonly Bid[];
}

export const NO_AUCTION: AuctionState = {
  item: null,
  openedBy: null,
  endsAt: 0,
  price: 0,
  leader: null,
  bids: [],
};

interface AuctionMessage {
  readonly id: number;
  readonly time: number;
  readonly from: string;
  readonly type: string;
  readonly data: unknown;
}

function numberField(data: unknown, name: string): number | null {
  const value = data && typeof data === 'object' ? (data as Record<string, unknown>)[name] : undefined;
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

export function foldAuction(state: AuctionState, message: AuctionMessage): AuctionState {
  if (message.type === 'auction-open') {
    if (state.item !== null && message.time < state.endsAt) return state;
    const startPrice = numberField(message.data, 'startPrice');
    const durationMs = numberField(message.data, 'durationMs');
    const rawItem =
      message.data && typeof message.data === 'object' ? (message.data as { item?: unknown }).item : null;
    if (startPrice === null || durationMs === null || durationMs <= 0 || durationMs > 3_600_000) return state;
    return {
      item: typeof rawItem === 'string' && rawItem.trim() ? rawItem.slice(0, 200) : 'lot',
      openedBy: message.from,
      endsAt: message.time + durationMs,
      price: startPrice,
      leader: null,
      bids: [],
    };
  }
  if (message.type !== 'bid' || state.item === null) return state;
  const amount = numberField(message.data, 'amount');
  const bid = { id: message.id, from: message.from, amount: amount ?? Number.NaN, time: message.time };
  let reason: string | undefined;
  if (amount === null) reason = 'not a number';
  else if (message.time >= state.endsAt) reason = 'after the end';
  else if (amount < state.price + BID_INCREMENT) reason = `below ${state.price + BID_INCREMENT}`;
  if (reason) return { ...state, bids: [...state.bids, { ...bid, accepted: false, reason }] };
  return {
    ...state,
    price: amount!,
    leader: message.from,
    bids: [...state.bids, { ...bid, accepted: true }],
  };
}

/** The winner once the auction is over at `now` (server time), else null. */
export function winner(state: AuctionState, now: number): string | null {
  return state.item !== null && now >= state.endsAt ? state.leader : null;
}
