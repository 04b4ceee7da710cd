/**
 * Server-to-client WebSocket messages built once and written as the same bytes to every receiver's socket,
 * bypassing ws's per-send framing (the fan-out's hot path: MSE fragments, messaging events).
 */

/** RFC 6455 §5.2 opcodes of the data frames the server sends. */
export const Opcode = { text: 0x1, binary: 0x2 } as const;
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

/** A complete, final, unmasked frame (FIN set, 7/16/64-bit length) around `payload` (RFC 6455 §5.2). */
export function frameMessage(opcode: Opcode, payload: Uint8Array): Buffer {
  const n = payload.byteLength;
  const headerSize = n < 126 ? 2 : n < 0x10000 ? 4 : 10;
  const out = Buffer.allocUnsafe(headerSize + n);
  out[0] = 0x80 | opcode;
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
 * Each item framed once for all receivers. The newest item is what every live receiver asks for in turn; the
 * WeakMap serves replays (a GOP, a channel's history) and lets framings go with their items.
 */
export class FramedOnce<T extends object> {
  readonly #frame: (item: T) => Buffer;
  #last: T | null = null;
  #lastFramed: Buffer = Buffer.alloc(0);
  readonly #framed = new WeakMap<T, Buffer>();

  constructor(frame: (item: T) => Buffer) {
    this.#frame = frame;
  }

  get(item: T): Buffer {
    if (item === this.#last) return this.#lastFramed;
    let framed = this.#framed.get(item);
    if (!framed) {
      framed = this.#frame(item);
      this.#framed.set(item, framed);
    }
    this.#last = item;
    this.#lastFramed = framed;
    return framed;
  }
}
