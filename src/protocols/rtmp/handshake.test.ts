import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { RtmpProtocolError } from './errors.ts';
import { HANDSHAKE_SIZE, ServerHandshake } from './handshake.ts';

test('C0+C1 get S0+S1+S2 with S2 echoing C1; C2 completes; pipelined bytes are handed on', () => {
  const c1 = randomBytes(HANDSHAKE_SIZE);
  const c2 = randomBytes(HANDSHAKE_SIZE);
  const after = Buffer.from([0x03, 0, 0, 0, 0, 0, 0x10, 0x14, 0, 0, 0, 0]);
  const input = Buffer.concat([Buffer.from([3]), c1, c2, after]);
  // Fed byte by byte: the reply comes exactly once, when C1 is complete.
  const hs = new ServerHandshake();
  const replies: Uint8Array[] = [];
  let rest: Uint8Array | null = null;
  for (let i = 0; i < input.length && rest === null; i++) {
    const p = hs.push(input.subarray(i, i + 1));
    if (p.reply) {
      assert.equal(i, HANDSHAKE_SIZE, 'reply once C0+C1 are in');
      replies.push(p.reply);
    }
    if (p.done) {
      assert.equal(i, 2 * HANDSHAKE_SIZE, 'done once C2 is in');
      rest = Buffer.concat([p.rest, input.subarray(i + 1)]);
    }
  }
  assert.equal(replies.length, 1);
  const reply = replies[0];
  assert.equal(reply.length, 1 + 2 * HANDSHAKE_SIZE);
  assert.equal(reply[0], 3);
  assert.deepStrictEqual([...reply.subarray(5, 9)], [0, 0, 0, 0], 'S1 zero field: simple handshake');
  assert.deepStrictEqual(Buffer.from(reply.subarray(1 + HANDSHAKE_SIZE)), c1, 'S2 echoes C1');
  assert.deepStrictEqual(Buffer.from(rest!), after);

  // Fed at once, the leftover arrives as `rest`.
  const whole = new ServerHandshake().push(input);
  assert.ok(whole.reply && whole.done);
  assert.deepStrictEqual(Buffer.from(whole.rest), after);
});

test('a version byte other than 3 is refused at once, naming it', () => {
  for (const [byte, hex] of [
    [0x47, '47'], // "GET / HTTP/1.1"
    [0x06, '06'], // RTMPE
    [0x16, '16'], // a TLS ClientHello (rtmps to a plain port)
  ] as const) {
    assert.throws(
      () => new ServerHandshake().push(Buffer.from([byte, 1, 2, 3])),
      (err: unknown) =>
        err instanceof RtmpProtocolError &&
        err.message === `handshake refused: version byte 0x${hex} is not RTMP 3`,
    );
  }
});
