import type { CmafFragment } from '../../core/CmafFeed.ts';

/**
 * A complete server-to-client WebSocket binary message (RFC 6455 §5.2: FIN, opcode 2, unmasked, 7/16/64-bit
 * length) around `payload`, built once so every viewer's socket is handed the same bytes.
 */
export function frameBinary(payload: Uint8Array): Buffer {
  const n = payload.byteLength;
  const headerSize = n < 126 ? 2 : n < 0x10000 ? 4 : 10;
  const out = Buffer.allocUnsafe(headerSize + n);
  out[0] = 0x82;
  if (n < 126) {
    out[1] = n;
  } else if (n < 0x10000) {
    out[1] = 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = 127;
    out.writeUInt32BE(Math.floor(n / 0x100000000), 2);
    out.writeUInt32BE(n >>> 0, 6);
  }
  out.set(payload, headerSize);
  return out;
}

/**
 * Each fragment framed once for all viewers. The newest fragment is what every live viewer asks for in turn;
 * the WeakMap serves GOP replays to joining viewers and lets framings go with their fragments.
 */
export class FramedFragments {
  #last: CmafFragment | null = null;
  #lastFramed: Buffer = Buffer.alloc(0);
  readonly #framed = new WeakMap<CmafFragment, Buffer>();

  get(fragment: CmafFragment): Buffer {
    if (fragment === this.#last) return this.#lastFramed;
    let framed = this.#framed.get(fragment);
    if (!framed) {
      framed = frameBinary(fragment.bytes);
      this.#framed.set(fragment, framed);
    }
    this.#last = fragment;
    this.#lastFramed = framed;
    return framed;
  }
}

export interface Corkable {
  uncork(): void;
}

/**
 * Coalesces each viewer's writes within one event-loop turn into one writev: a publisher's socket read often
 * holds several frames (audio and video), and one syscall per viewer per turn instead of per fragment is the
 * largest single saving at a thousand viewers. Uncorking happens on the next tick, so nothing waits longer than
 * the work already under way.
 */
export class WriteBatch {
  #corked: Corkable[] = [];
  #scheduled = false;

  /** Registers a session that just corked its socket. */
  add(session: Corkable): void {
    this.#corked.push(session);
    if (!this.#scheduled) {
      this.#scheduled = true;
      process.nextTick(this.#flush);
    }
  }

  #flush = (): void => {
    const corked = this.#corked;
    this.#corked = [];
    this.#scheduled = false;
    for (const session of corked) session.uncork();
  };
}
