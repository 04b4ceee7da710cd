/**
 * End to end in headless Chromium: chat pages talk through the messaging client over the real server. The
 * server drops one page's socket mid-conversation; it reconnects and resumes with nothing lost and nothing
 * twice. Each transport is forced in turn, and a late joiner sees the gap the history could not cover.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { type RunningServer, startServer } from '../../src/server.ts';
import { type ChromiumSession, closeServerThenBrowser, launchChromium } from '../helpers/browser.ts';
import { httpPublish, range } from '../helpers/channels.ts';
import { waitFor } from '../helpers/processes.ts';

const root = join(import.meta.dirname, '../..');
let server: RunningServer;
let browser: ChromiumSession;

before(async () => {
  execFileSync(process.execPath, [join(root, 'scripts/build-client.ts')], { stdio: 'inherit' });
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { enabled: false },
    log: { level: 'warn' },
    messaging: {
      historyMaxMessages: 40,
      publishRatePerSecond: 1000,
      publishBurst: 1000,
      presenceIntervalMs: 100,
    },
  });
  browser = await launchChromium();
});

after(async () => {
  await closeServerThenBrowser(server, browser);
});

interface ChatView {
  state: string | undefined;
  transport: string | null | undefined;
  ids: number[];
  texts: string[];
  froms: string[];
  notices: string[];
  reconnects: number;
  duplicates: number;
}

function view(page: Page): Promise<ChatView> {
  return page.evaluate(() => {
    const items = [...document.querySelectorAll<HTMLLIElement>('.messages li[data-id]')];
    return {
      state: window.subsecondChat?.state,
      transport: window.subsecondChat?.transport,
      ids: items.map((li) => Number(li.dataset.id)),
      texts: items.map((li) => li.querySelector('.text')?.textContent ?? ''),
      froms: items.map((li) => li.dataset.from ?? ''),
      notices: [...document.querySelectorAll('.messages li.notice')].map((li) => li.textContent ?? ''),
      reconnects: window.subsecondChat?.reconnects ?? 0,
      duplicates: window.subsecondChat?.duplicatesDropped ?? 0,
    };
  });
}

async function openChat(channel: string, transport: string): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(`${server.httpUrl}/chat/${channel}?transport=${transport}`);
  await waitFor(`${transport} chat page to connect`, async () => (await view(page)).state === 'open', 10_000);
  return page;
}

test('two pages chat; one page`s socket is dropped by the server and it resumes with nothing lost or doubled', async () => {
  const channel = 'live/cam1:chat';
  const alice = await openChat(channel, 'ws');
  const bob = await openChat(channel, 'sse');
  assert.equal((await view(alice)).transport, 'ws');
  assert.equal((await view(bob)).transport, 'sse');

  // Typed into the page, sent through the form: markup arrives as text.
  const markup = '<img src=x onerror="window.pwned=1"> hi <b>bob</b>';
  await alice.fill('.compose input', markup);
  await alice.click('.compose button');
  await waitFor('bob to see alice', async () => (await view(bob)).ids.length === 1);
  assert.deepEqual((await view(bob)).texts, [markup]);
  assert.equal(
    await bob.locator('.messages img, .messages b').count(),
    0,
    'no element was made from a message',
  );
  assert.equal(await bob.evaluate(() => (window as Window & { pwned?: number }).pwned), undefined);
  await waitFor('presence shows both pages', async () =>
    /2 here/.test((await bob.textContent('.chat-presence')) ?? ''),
  );

  // Bob keeps talking while the server drops Alice's socket twice.
  const talking = bob.evaluate(async () => {
    for (let i = 2; i <= 80; i++) {
      await window.subsecondChat!.publish('chat', { text: `bob ${i}` });
      await new Promise((r) => setTimeout(r, 8));
    }
  });
  await waitFor('alice mid-conversation', async () => (await view(alice)).ids.length >= 15);
  assert.equal(server.messaging.ws.dropAll(), 1, 'only alice is on WebSocket');
  await waitFor(
    'alice back',
    async () => (await view(alice)).reconnects === 1 && (await view(alice)).state === 'open',
  );
  await waitFor('alice further on', async () => (await view(alice)).ids.length >= 45);
  assert.equal(server.messaging.ws.dropAll(), 1);
  await talking;

  const expected = range(1, 80);
  const a = (await waitFor('alice to have all 80', async () => {
    const v = await view(alice);
    return v.ids.length >= 80 ? v : null;
  }))!;
  const b = await view(bob);
  assert.deepEqual(a.ids, expected, 'alice: every message once, in order, across two drops');
  assert.deepEqual(b.ids, expected);
  assert.deepEqual(
    a.texts.slice(1),
    range(2, 80).map((i) => `bob ${i}`),
  );
  assert.equal(a.reconnects, 2);
  assert.equal(a.duplicates, 0, 'the server resumed exactly: the client had nothing to drop');
  assert.deepEqual(a.notices, []);
  // Identities held across the drops: Alice still speaks as who she was, Bob's HTTP publishes share one id.
  assert.equal(new Set(b.froms.slice(1)).size, 1, 'every POST from bob carried the same identity');
  assert.notEqual(b.froms[0], b.froms[1]);
  await alice.fill('.compose input', 'alice again');
  await alice.click('.compose button');
  const last = (await waitFor('bob to see alice again', async () => {
    const v = await view(bob);
    return v.ids.length === 81 ? v : null;
  }))!;
  assert.equal(last.texts[80], 'alice again');
  assert.equal(last.froms[80], last.froms[0], 'alice is the same sender after two reconnects');
  assert.deepEqual(browser.problems, []);
  await alice.close();
  await bob.close();
});

test('every transport forced in turn receives the same messages; a late joiner is told what it missed', async () => {
  const channel = 'live/cam2:chat';
  const pages = await Promise.all(['ws', 'sse', 'poll'].map((t) => openChat(channel, t)));
  // In two rounds: the history keeps 40, so a long-poller more than 40 messages behind would rightly be told of
  // a gap (it once was, when all 50 went out at once while its next poll was on its way).
  for (const [from, to] of [
    [1, 30],
    [31, 50],
  ]) {
    for (let i = from; i <= to; i++) {
      const r = await httpPublish(server.httpUrl, channel, { type: 'chat', data: { text: `m${i}` } });
      assert.equal(r.status, 201);
    }
    for (const [i, page] of pages.entries()) {
      const v = (await waitFor(`page ${i} to have ${to}`, async () => {
        const got = await view(page);
        return got.ids.length >= to ? got : null;
      }).catch(async (error) => {
        throw new Error(
          `${(error as Error).message}: ${JSON.stringify(await view(page))} ${browser.problems}`,
        );
      }))!;
      assert.deepEqual(v.ids, range(1, to), `${v.transport}`);
      assert.equal(v.duplicates, 0);
      assert.deepEqual(v.notices, [], `${v.transport}: no gap`);
    }
  }
  // The page resumes from 0 on arrival; 50 published, 40 kept: it says 10 are gone.
  const late = await openChat(channel, 'ws');
  const v = (await waitFor('late page history', async () => {
    const got = await view(late);
    return got.ids.length >= 40 ? got : null;
  }))!;
  assert.deepEqual(v.ids, range(11, 50));
  assert.deepEqual(v.notices, ['10 earlier messages not shown']);
  // The player page carries the stream's chat too (no stream is live here; the chat does not need one).
  const player = await browser.newPage();
  await player.goto(`${server.httpUrl}/play/live/cam2`);
  const chatOnPlayer = await waitFor('the player page chat to show the history', async () => {
    const got = await view(player);
    return got.ids.length >= 40 ? got : null;
  });
  assert.deepEqual(chatOnPlayer!.ids, range(11, 50));
  await player.fill('.compose input', 'from the player page');
  await player.click('.compose button');
  const echoed = await waitFor('the chat page to see it', async () => {
    const got = await view(late);
    return got.ids.length >= 41 ? got : null;
  });
  assert.equal(echoed!.texts.at(-1), 'from the player page');
  await player.close();
  for (const page of [...pages, late]) await page.close();
  assert.deepEqual(
    browser.problems.filter((p) => p.includes('/chat/')),
    [],
  );
});

test('auto transport: where WebSockets are cut after the upgrade, the client falls back to SSE and chats', async () => {
  const channel = 'live/cam3:chat';
  const page = await browser.newPage();
  // A proxy that accepts the upgrade and then drops the socket, before the server could say anything.
  await page.routeWebSocket(/\/ws\/channels\//, (ws) => ws.close({ code: 1011, reason: 'proxy cut' }));
  await page.goto(`${server.httpUrl}/chat/${channel}`);
  await waitFor('the page to connect over SSE', async () => {
    const v = await view(page);
    return v.state === 'open' && v.transport === 'sse';
  });
  const r = await httpPublish(server.httpUrl, channel, { type: 'chat', data: { text: 'over sse' } });
  assert.equal(r.status, 201);
  const v = (await waitFor('the message', async () => {
    const got = await view(page);
    return got.ids.length === 1 ? got : null;
  }))!;
  assert.deepEqual(v.texts, ['over sse']);
  assert.ok(v.reconnects >= 2, `two WebSocket attempts before SSE (${v.reconnects} reconnects)`);
  await page.fill('.compose input', 'sent over HTTP');
  await page.click('.compose button');
  await waitFor('its own message back', async () => (await view(page)).ids.length === 2);
  await page.close();
});

test('live auction: two viewers bid at once; both see the server`s order and the same winner', async () => {
  const path = 'live/auction1';
  const pages = await Promise.all(
    [0, 1].map(async () => {
      const page = await browser.newPage();
      await page.goto(`${server.httpUrl}/auction/${path}`);
      await waitFor('the auction channel', () =>
        page.evaluate(() => window.subsecondAuction?.channel.state === 'open'),
      );
      return page;
    }),
  );
  const [ann, bob] = pages;
  await ann.fill('#lot', 'signed <b>poster</b>');
  await ann.fill('#seconds', '3');
  await ann.click('#open button');
  await waitFor('bob sees the lot', async () => (await bob.textContent('#item')) === 'signed <b>poster</b>');
  // Both bid as fast as they can; each bid is one more than what that page last saw.
  const bidding = (page: Page) =>
    page.evaluate(async () => {
      const a = window.subsecondAuction!;
      for (let i = 0; i < 15; i++) {
        await a.channel.publish('bid', { amount: a.state().price + 1 }).catch(() => {});
        await new Promise((r) => setTimeout(r, 20 + Math.random() * 30));
      }
    });
  await Promise.all([bidding(ann), bidding(bob)]);
  await waitFor('the end', async () => (await ann.textContent('#countdown')) === 'ended', 10_000);
  // A bid after the end does not count, on any screen.
  await bob.evaluate(() => window.subsecondAuction!.channel.publish('bid', { amount: 1_000_000 }));
  await new Promise((r) => setTimeout(r, 300));
  const seen = await Promise.all(
    pages.map((page) =>
      page.evaluate(() => ({
        winner: window.subsecondAuction!.winner(),
        price: window.subsecondAuction!.state().price,
        bids: window.subsecondAuction!.state().bids.map((b) => `${b.id}:${b.accepted}`),
        line: document.getElementById('winner')?.textContent,
      })),
    ),
  );
  assert.deepEqual(seen[0], seen[1], 'both screens agree on every bid, the price and the winner');
  assert.ok(seen[0].winner, 'someone won');
  assert.ok(seen[0].price >= 11);
  assert.ok(seen[0].bids.at(-1)?.endsWith(':false'), 'the bid after the end was refused');
  assert.match(seen[0].line ?? '', new RegExp(`Sold to ${seen[0].winner} for ${seen[0].price}`));
  assert.equal(await ann.locator('#item b').count(), 0, 'the lot name is text, not markup');
  for (const page of pages) await page.close();
});
