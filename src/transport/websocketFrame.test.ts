import assert from 'node:assert/strict';
import type { EventEmitter } from 'node:events';
import { test } from 'node:test';
import * as ws from 'ws';
import { FramedOnce, frameMessage, Opcode } from './websocketFrame.ts';

// ws ships its frame parser but @types/ws does not declare it.
const { Receiver } = ws as unknown as {
  Receiver: new (options: {
    isServer: boolean;
    maxPayload: number;
  }) => EventEmitter & { write(b: Buffer): void };
};

test('text frames decode in ws as text with the same payload, at every length encoding', async () => {
  for (const size of [0, 125, 126, 65535, 65536]) {
    const payload = Buffer.alloc(size, 'a');
    const got = await new Promise<{ data: Buffer; isBinary: boolean }>((resolve, reject) => {
      const receiver = new Receiver({ isServer: false, maxPayload: 0 });
      receiver.on('message', (data: Buffer, isBinary: boolean) => resolve({ data, isBinary }));
      receiver.on('error', reject);
      receiver.write(frameMessage(Opcode.text, payload));
    });
    assert.equal(got.isBinary, false, `text at ${size}`);
    assert.ok(got.data.equals(payload), `payload of ${size} bytes`);
  }
});

test('an item is framed once however often it is asked for', () => {
  let calls = 0;
  const framed = new FramedOnce<{ n: number }>((item) => {
    calls++;
    return frameMessage(Opcode.binary, Buffer.from([item.n]));
  });
  const a = { n: 1 };
  const b = { n: 2 };
  assert.equal(framed.get(a), framed.get(a));
  framed.get(b);
  assert.equal(framed.get(a)[2], 1, 'an older item comes from the cache');
  assert.equal(calls, 2);
});
