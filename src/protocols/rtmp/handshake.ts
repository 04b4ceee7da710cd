import { randomFillSync } from 'node:crypto';
import { RtmpProtocolError } from './errors.ts';

export const RTMP_VERSION = 3;
/** C1/S1/C2/S2 are 1536 bytes each (RTMP 1.0 §5.2.3). */
export const HANDSHAKE_SIZE = 1536;

export interface HandshakeProgress {
  /** S0+S1+S2 to send, once C0+C1 are in; null otherwise. */
  readonly reply: Uint8Array | null;
  /** True once C2 has arrived: what follows is the chunk stream. */
  readonly done: boolean;
  /** Bytes after C2 (the client may pipeline its first chunks), empty until done. */
  readonly rest: Uint8Array;
}

const EMPTY = new Uint8Array(0);

/**
 * The server side of the simple handshake (RTMP 1.0 §5.2): C0+C1 in, S0+S1+S2 out at once, C2 in. S1 carries a
 * zero version field, which tells ffmpeg, OBS and librtmp clients not to expect the digest ("complex") scheme,
 * and S2 echoes C1 as §5.2.4 asks. C2 is not checked: clients differ in what they echo and nothing depends on it.
 */
export class ServerHandshake {
  #received = EMPTY as Uint8Array;
  #replied = false;
  #done = false;

  get done(): boolean {
    return this.#done;
  }

  push(data: Uint8Array): HandshakeProgress {
    if (this.#done) throw new Error('handshake already complete');
    this.#received = this.#received.length === 0 ? data : Buffer.concat([this.#received, data]);
    const got = this.#received;
    if (got.length >= 1 && got[0] !== RTMP_VERSION) {
      throw new RtmpProtocolError(
        `handshake refused: version byte 0x${got[0].toString(16).padStart(2, '0')} is not RTMP 3`,
      );
    }
    let reply: Uint8Array | null = null;
    if (!this.#replied && got.length >= 1 + HANDSHAKE_SIZE) {
      reply = buildReply(got.subarray(1, 1 + HANDSHAKE_SIZE));
      this.#replied = true;
    }
    const total = 1 + 2 * HANDSHAKE_SIZE;
    if (got.length < total) return { reply, done: false, rest: EMPTY };
    this.#done = true;
    this.#received = EMPTY;
    return { reply, done: true, rest: got.subarray(total) };
  }
}

function buildReply(c1: Uint8Array): Uint8Array {
  const out = Buffer.allocUnsafe(1 + 2 * HANDSHAKE_SIZE);
  out[0] = RTMP_VERSION;
  // S1: time (4), zero (4), random (1528).
  out.writeUInt32BE(0, 1);
  out.writeUInt32BE(0, 5);
  randomFillSync(out, 9, HANDSHAKE_SIZE - 8);
  // S2: the client's C1 echoed back.
  out.set(c1, 1 + HANDSHAKE_SIZE);
  return out;
}
