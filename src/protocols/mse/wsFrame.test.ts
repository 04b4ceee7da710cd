import assert from 'node:assert/strict';
import type { EventEmitter } from 'node:events';
import { test } from 'node:test';
import * as ws from 'ws';
import { frameBinary } from './wsFrame.ts';

// ws ships its frame parser but @types/ws does not declare it.
const { Receiver } = ws as unknown as {
  Receiver: new (options: {
    isServer: boolean;
    maxPayload: number;
  }) => EventEmitter & { write(b: Buffer): void };
};

/** ws's own receiver (the one browsers' peers are tested against) must read our frames back byte for byte. */
function parse(frame: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const receiver = new Receiver({ isServer: false, maxPayload: 0 });
    receiver.on('message', (data: Buffer, isBinary: boolean) => {
      assert.equal(isBinary, true);
      resolve(data);
    });
    receiver.on('error', reject);
    receiver.write(frame);
  });
}

test('binary frames with 7-, 16- and 64-bit lengths decode to the same payload', async () => {
  for (const size of [0, 1, 125, 126, 65535, 65536, 300_000]) {
    const payload = Buffer.alloc(size, size % 251);
    const frame = frameBinary(payload);
    assert.equal(frame.length - size, size < 126 ? 2 : size < 65536 ? 4 : 10, `header size for ${size}`);
    assert.ok((await parse(frame)).equals(payload), `payload of ${size} bytes`);
  }
});

test('a write batch uncorks every session once, after the current turn', async () => {
  const { WriteBatch } = await import('./wsFrame.ts');
  const batch = new WriteBatch();
  const uncorked: string[] = [];
  const a = { uncork: () => uncorked.push('a') };
  const b = { uncork: () => uncorked.push('b') };
  batch.add(a);
  batch.add(b);
  assert.deepEqual(uncorked, [], 'nothing is flushed during the turn');
  await new Promise((r) => process.nextTick(r));
  assert.deepEqual(uncorked, ['a', 'b']);
  batch.add(a);
  await new Promise((r) => process.nextTick(r));
  assert.deepEqual(uncorked, ['a', 'b', 'a'], 'a later turn schedules a new flush');
});
