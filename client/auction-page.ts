/**
 * The live-auction demo (`/auction/{path}`): the stream, and its `{path}:auction` channel folded into a
 * price, a leader, the bids in server order with their server times, a countdown, and the winner — the same
 * on every screen, because the server orders and stamps every bid (see auction.ts).
 */
import { type AuctionState, foldAuction, NO_AUCTION, winner } from './auction.ts';
import { byId, element } from './dom.ts';
import { ChannelEvent, channel, type SubsecondChannel } from './messaging/index.ts';
import { SubsecondPlayer } from './player/index.ts';

declare global {
  interface Window {
    subsecondAuction?: { channel: SubsecondChannel; state: () => AuctionState; winner: () => string | null };
  }
}

const item = byId('item', HTMLElement);
const price = byId('price', HTMLElement);
const leader = byId('leader', HTMLElement);
const countdown = byId('countdown', HTMLElement);
const winnerLine = byId('winner', HTMLElement);
const bids = byId('bids', HTMLOListElement);
const errorLine = byId('error', HTMLElement);
const amount = byId('amount', HTMLInputElement);
const stateLine = byId('state', HTMLElement);

function showError(message: string): void {
  errorLine.textContent = message;
  errorLine.hidden = false;
}

function main(): void {
  const prefix = '/auction/';
  const path = location.pathname.startsWith(prefix)
    ? decodeURIComponent(location.pathname.slice(prefix.length)).replace(/\/+$/, '')
    : '';
  byId('stream-path', HTMLElement).textContent = `${path} · auction`;
  try {
    new SubsecondPlayer(byId('video', HTMLVideoElement), { path }).start();
  } catch (error) {
    showError((error as Error).message);
  }
  let auction: SubsecondChannel;
  try {
    auction = channel(`${path}:auction`, { since: 0 });
  } catch (error) {
    showError((error as Error).message);
    return;
  }
  let state = NO_AUCTION;
  // Server time ≈ local time + offset; the smallest offset seen is the least delayed estimate.
  let offset = Number.POSITIVE_INFINITY;
  const serverNow = () => Date.now() + (Number.isFinite(offset) ? offset : 0);
  window.subsecondAuction = {
    channel: auction,
    state: () => state,
    winner: () => winner(state, serverNow()),
  };

  const render = () => {
    item.textContent = state.item ?? '—';
    price.textContent = state.item === null ? '—' : String(state.price);
    leader.textContent = state.leader ?? '—';
    const left = state.endsAt - serverNow();
    if (state.item === null) countdown.textContent = 'no auction running';
    else countdown.textContent = left > 0 ? `${(left / 1000).toFixed(1)} s left` : 'ended';
    const won = winner(state, serverNow());
    winnerLine.hidden = state.item === null || left > 0;
    winnerLine.textContent = won ? `Sold to ${won} for ${state.price}` : 'Ended without a bid';
  };

  auction.on(ChannelEvent.State, (change) => {
    stateLine.dataset.state = change.state === 'open' ? 'playing' : change.state;
    stateLine.textContent = change.state === 'open' ? 'live' : change.state;
  });
  auction.on(ChannelEvent.Gap, (gap) =>
    showError(`${gap.missed} earlier bids are gone: the price shown may be off`),
  );
  auction.on(ChannelEvent.Error, (error) => showError(error.message));
  auction.on(ChannelEvent.Message, (message) => {
    offset = Math.min(offset, message.time - Date.now());
    const before = state;
    state = foldAuction(state, message);
    if (state.item !== before.item || state.endsAt !== before.endsAt) bids.replaceChildren();
    const bid = state.bids.length > before.bids.length ? state.bids[state.bids.length - 1] : null;
    if (bid) {
      bids.append(
        element(
          'li',
          { 'data-id': String(bid.id), class: bid.accepted ? 'accepted' : 'rejected' },
          element('time', {}, new Date(bid.time).toLocaleTimeString()),
          element('span', { class: 'from' }, bid.from),
          element('span', { class: 'text' }, `${bid.amount}${bid.reason ? ` (${bid.reason})` : ''}`),
        ),
      );
      bids.scrollTop = bids.scrollHeight;
    }
    if (document.activeElement !== amount) amount.value = String(state.price + 1);
    render();
  });
  setInterval(render, 100);

  byId('bid', HTMLFormElement).addEventListener('submit', (event) => {
    event.preventDefault();
    auction
      .publish('bid', { amount: Number(amount.value) })
      .catch((error: Error) => showError(error.message));
  });
  byId('open', HTMLFormElement).addEventListener('submit', (event) => {
    event.preventDefault();
    const data = {
      item: byId('lot', HTMLInputElement).value,
      startPrice: Number(byId('start', HTMLInputElement).value),
      durationMs: Number(byId('seconds', HTMLInputElement).value) * 1000,
    };
    auction.publish('auction-open', data).catch((error: Error) => showError(error.message));
  });
}

main();
