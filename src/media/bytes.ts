import { MediaParseError } from './errors.ts';

/**
 * Big-endian cursor over a byte array with a bounds check on every read, for the byte-aligned records
 * (avcC, hvcC, boxes …). A read past the end throws MediaParseError naming `what`, the field and the offset.
 */
export class ByteReader {
  readonly data: Uint8Array;
  readonly #what: string;
  #pos: number;
  readonly #end: number;

  constructor(data: Uint8Array, what: string, start = 0, end = data.length) {
    this.data = data;
    this.#what = what;
    this.#pos = start;
    this.#end = end;
  }

  get offset(): number {
    return this.#pos;
  }

  get remaining(): number {
    return this.#end - this.#pos;
  }

  u8(field: string): number {
    this.#need(1, field);
    return this.data[this.#pos++];
  }

  u16(field: string): number {
    this.#need(2, field);
    const d = this.data;
    const p = this.#pos;
    this.#pos += 2;
    return (d[p] << 8) | d[p + 1];
  }

  u24(field: string): number {
    this.#need(3, field);
    const d = this.data;
    const p = this.#pos;
    this.#pos += 3;
    return (d[p] << 16) | (d[p + 1] << 8) | d[p + 2];
  }

  u32(field: string): number {
    this.#need(4, field);
    const v = readU32(this.data, this.#pos);
    this.#pos += 4;
    return v;
  }

  i32(field: string): number {
    return this.u32(field) | 0;
  }

  /** 64-bit unsigned as a number; values beyond 2^53 cannot be represented and are rejected. */
  u64(field: string): number {
    const at = this.#pos;
    const hi = this.u32(field);
    const lo = this.u32(field);
    if (hi >= 0x200000)
      throw new MediaParseError(`${this.#what}: ${field} exceeds 2^53 (high word ${hi})`, at);
    return hi * 0x100000000 + lo;
  }

  /** A view (no copy) of the next `n` bytes. */
  bytes(n: number, field: string): Uint8Array {
    this.#need(n, field);
    const out = this.data.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return out;
  }

  skip(n: number, field: string): void {
    this.#need(n, field);
    this.#pos += n;
  }

  fail(message: string, at = this.#pos): never {
    throw new MediaParseError(`${this.#what}: ${message}`, at);
  }

  #need(n: number, field: string): void {
    if (n < 0 || this.#pos + n > this.#end) {
      throw new MediaParseError(
        `${this.#what}: truncated reading ${field}, needed ${n} bytes but ${this.#end - this.#pos} remain`,
        this.#pos,
      );
    }
  }
}

export function readU32(d: Uint8Array, p: number): number {
  return ((d[p] << 24) | (d[p + 1] << 16) | (d[p + 2] << 8) | d[p + 3]) >>> 0;
}

export function writeU16(d: Uint8Array, p: number, v: number): void {
  d[p] = v >>> 8;
  d[p + 1] = v;
}

export function writeU32(d: Uint8Array, p: number, v: number): void {
  d[p] = v >>> 24;
  d[p + 1] = v >>> 16;
  d[p + 2] = v >>> 8;
  d[p + 3] = v;
}

/** Writes an unsigned integer up to 2^53 as 64 bits without going through BigInt. */
export function writeU64(d: Uint8Array, p: number, v: number): void {
  writeU32(d, p, Math.floor(v / 0x100000000));
  writeU32(d, p + 4, v >>> 0);
}
