/**
 * Growable big-endian writer for ISO BMFF boxes (ISO/IEC 14496-12 §4.2) whose sizes are patched in once their
 * body is written. Meant for init segments and other once-per-stream structures, not for per-frame output.
 */
export class BoxWriter {
  #buf = new Uint8Array(512);
  #len = 0;

  get length(): number {
    return this.#len;
  }

  u8(v: number): this {
    this.#reserve(1);
    this.#buf[this.#len++] = v;
    return this;
  }

  u16(v: number): this {
    this.#reserve(2);
    const b = this.#buf;
    b[this.#len++] = v >>> 8;
    b[this.#len++] = v;
    return this;
  }

  u24(v: number): this {
    this.#reserve(3);
    const b = this.#buf;
    b[this.#len++] = v >>> 16;
    b[this.#len++] = v >>> 8;
    b[this.#len++] = v;
    return this;
  }

  u32(v: number): this {
    this.#reserve(4);
    const b = this.#buf;
    b[this.#len++] = v >>> 24;
    b[this.#len++] = v >>> 16;
    b[this.#len++] = v >>> 8;
    b[this.#len++] = v;
    return this;
  }

  bytes(data: Uint8Array): this {
    this.#reserve(data.length);
    this.#buf.set(data, this.#len);
    this.#len += data.length;
    return this;
  }

  zeros(n: number): this {
    this.#reserve(n);
    this.#buf.fill(0, this.#len, this.#len + n);
    this.#len += n;
    return this;
  }

  /** A four-character code or other ASCII text, without terminator. */
  ascii(s: string): this {
    this.#reserve(s.length);
    for (let i = 0; i < s.length; i++) this.#buf[this.#len++] = s.charCodeAt(i);
    return this;
  }

  box(type: string, body: () => void): this {
    if (type.length !== 4) throw new RangeError(`box type must be 4 characters, got "${type}"`);
    const start = this.#len;
    this.u32(0).ascii(type);
    body();
    this.#patchU32(start, this.#len - start);
    return this;
  }

  fullBox(type: string, version: number, flags: number, body: () => void): this {
    return this.box(type, () => {
      this.u8(version).u24(flags);
      body();
    });
  }

  /** The bytes written, copied into an exactly-sized array. */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }

  #patchU32(at: number, v: number): void {
    const b = this.#buf;
    b[at] = v >>> 24;
    b[at + 1] = v >>> 16;
    b[at + 2] = v >>> 8;
    b[at + 3] = v;
  }

  #reserve(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let cap = this.#buf.length * 2;
    while (cap < this.#len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }
}
