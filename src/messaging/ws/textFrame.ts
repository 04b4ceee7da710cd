import type { PresenceFrame, StoredMessage } from '../Message.ts';

/**
 * A complete server-to-client WebSocket text message (RFC 6455 §5.2: FIN, opcode 1, unmasked, 7/16/64-bit
 * length) around `payload`, so every subscriber's socket is handed the same bytes.
 */
export function frameText(payload: Buffer): Buffer {
  const n = payload.byteLength;
  const headerSize = n < 126 ? 2 : n < 0x10000 ? 4 : 10;
  const out = Buffer.allocUnsafe(headerSize + n);
  out[0] = 0x81;
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
 * Each message and presence event framed once for all subscribers. The newest is what every live subscriber
 * asks for in turn; the WeakMap serves replays and lets framings go with their messages.
 */
export class FramedEvents {
  #last: object | null = null;
  #lastFramed: Buffer = Buffer.alloc(0);
  readonly #framed = new WeakMap<object, Buffer>();

  get(event: StoredMessage | PresenceFrame): Buffer {
    if (event === this.#last) return this.#lastFramed;
    let framed = this.#framed.get(event);
    if (!framed) {
      framed = frameText(Buffer.from(event.frame));
      this.#framed.set(event, framed);
    }
    this.#last = event;
    this.#lastFramed = framed;
    return framed;
  }
}
