/**
 * End to end in headless Chromium: the player page plays a stream over WebRTC and carries the stream's chat
 * on its WHEP session's data channel; a second page chats over WebSocket. Both see each other's messages, in
 * the server's order.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { type RunningServer, startServer } from '../../src/server.ts';
import { type ChromiumSession, launchChromium } from '../helpers/browser.ts';
import { killAll, publishTestSource, stop, waitFor } from '../helpers/processes.ts';

const PATH = 'live/dc-e2e';

let server: RunningServer;
let browser: ChromiumSession;

before(async () => {
  execFileSync(process.execPath, [join(import.meta.dirname, '../../scripts/build-client.ts')], {
    stdio: 'inherit',
  });
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { host: '127.0.0.1', port: 0 },
    webrtc: { udpPort: 0 },
    hls: { enabled: false },
    log: { level: 'warn' },
  });
  browser = await launchChromium();
});

after(async () => {
  // The server first, while the browser still answers: libdatachannel cleaned up while peers whose remote had
  // vanished were still shutting down crashed the test process at exit (SIGSEGV/abort in ~1 of 2 runs).
  killAll();
  await server?.close();
  await browser?.close();
});

function texts(page: Page): Promise<{ ids: number[]; texts: string[] }> {
  return page.evaluate(() => {
    const items = [...document.querySelectorAll<HTMLLIElement>('.messages li[data-id]')];
    return {
      ids: items.map((li) => Number(li.dataset.id)),
      texts: items.map((li) => li.querySelector('.text')?.textContent ?? ''),
    };
  });
}

async function say(page: Page, text: string): Promise<void> {
  await page.fill('.compose input', text);
  await page.click('.compose button');
}

test('the WebRTC player page chats over its data channel with a WebSocket page', async () => {
  const ffmpeg = publishTestSource(`${server.rtmpUrl}/${PATH}`, {
    size: '320x240',
    rate: 30,
    gop: 30,
    audio: false,
  });
  try {
    await waitFor('the stream', () => server.registry.get(PATH)?.ready);
    const player = await browser.newPage();
    await player.goto(`${server.httpUrl}/play/${PATH}?transport=webrtc`);
    await waitFor(
      'the player chat on the data channel',
      () =>
        player.evaluate(
          () =>
            window.subsecondPlayer?.transport === 'webrtc' &&
            window.subsecondPlayerChat?.state === 'open' &&
            window.subsecondPlayerChat.transport === 'datachannel',
        ),
      20_000,
    );
    const other = await browser.newPage();
    await other.goto(`${server.httpUrl}/chat/${PATH}:chat?transport=ws`);
    await waitFor('the WebSocket page', () =>
      other.evaluate(() => window.subsecondChat?.state === 'open' && window.subsecondChat.transport === 'ws'),
    );

    await say(player, 'over the data channel');
    await waitFor('the WebSocket page to see it', async () => (await texts(other)).ids.length === 1);
    await say(other, 'over the WebSocket');
    await say(player, 'and back');
    const expected = { ids: [1, 2, 3], texts: ['over the data channel', 'over the WebSocket', 'and back'] };
    for (const page of [player, other]) {
      await waitFor('all three messages', async () => (await texts(page)).ids.length === 3);
      assert.deepEqual(await texts(page), expected);
    }
    // A channel lent a peer that never had a session falls back to WebSocket and gets the same history.
    const fallback = await other.evaluate(async (name) => {
      const bundle = '/static/subsecond.js';
      const sdk = (await import(bundle)) as typeof import('../../client/player/index.ts');
      const ch = sdk.channel(name, { peer: new sdk.MessagingPeer(), since: 0 });
      const ids: number[] = [];
      ch.on('message', (m) => ids.push(m.id));
      for (let i = 0; i < 100 && ids.length < 3; i++) await new Promise((r) => setTimeout(r, 100));
      return { transport: ch.transport, ids };
    }, `${PATH}:chat`);
    assert.deepEqual(fallback, { transport: 'ws', ids: [1, 2, 3] });
    // The server saw the player's chat arrive on the WHEP session's data channel, not a socket.
    assert.equal(server.messaging.ws.connections, 2, 'the player page holds no WebSocket');
    await player.close();
    await other.close();
  } finally {
    await stop(ffmpeg);
  }
});
