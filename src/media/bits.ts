import { MediaParseError } from './errors.ts';

/**
 * MSB-first bit reader over a byte array, with the Exp-Golomb codes of ITU-T H.264 §9.1 / H.265 §9.2.
 * Reading past the end throws MediaParseError instead of inventing zero bits, so a truncated parameter set
 * is reported rather than parsed into nonsense.
 */
export class BitReader {
  readonly #data: Uint8Array;
  readonly #totalBits: number;
  #pos = 0;
  readonly #what: string;

  /** `what` names the structure being read, for error messages (e.g. "H.264 SPS"). */
  constructor(data: Uint8Array, what = 'bitstream') {
    this.#data = data;
    this.#totalBits = data.length * 8;
    this.#what = what;
  }

  /** Position in bits from the start. */
  get position(): number {
    return this.#pos;
  }

  get bitsLeft(): number {
    return this.#totalBits - this.#pos;
  }

  /** Reads `n` (0..32) bits as an unsigned integer. */
  readBits(n: number): number {
    if (n < 0 || n > 32 || !Number.isInteger(n)) throw new RangeError(`readBits: n must be 0..32, got ${n}`);
    this.#need(n);
    let value = 0;
    let pos = this.#pos;
    let left = n;
    while (left > 0) {
      const byte = this.#data[pos >>> 3];
      const bitInByte = pos & 7;
      const take = Math.min(8 - bitInByte, left);
      const chunk = (byte >>> (8 - bitInByte - take)) & ((1 << take) - 1);
      // Multiplication rather than << keeps 32-bit reads unsigned.
      value = value * (1 << take) + chunk;
      pos += take;
      left -= take;
    }
    this.#pos = pos;
    return value;
  }

  readBit(): number {
    this.#need(1);
    const bit = (this.#data[this.#pos >>> 3] >>> (7 - (this.#pos & 7))) & 1;
    this.#pos++;
    return bit;
  }

  readFlag(): boolean {
    return this.readBit() === 1;
  }

  skipBits(n: number): void {
    this.#need(n);
    this.#pos += n;
  }

  /** ue(v), H.264 §9.1. Codes longer than 32 bits (values ≥ 2^32 - 1) are rejected as malformed. */
  readUE(): number {
    const start = this.#pos;
    let leadingZeros = 0;
    while (this.readBit() === 0) {
      leadingZeros++;
      if (leadingZeros > 31) {
        throw new MediaParseError(
          `${this.#what}: Exp-Golomb code with more than 31 leading zero bits at bit ${start}`,
          start >>> 3,
        );
      }
    }
    if (leadingZeros === 0) return 0;
    return 2 ** leadingZeros - 1 + this.readBits(leadingZeros);
  }

  /** se(v), H.264 §9.1.1: 1, 2, 3, 4 … map to 1, −1, 2, −2 … */
  readSE(): number {
    const k = this.readUE();
    if (k === 0) return 0;
    return k % 2 === 1 ? (k + 1) / 2 : -(k / 2);
  }

  #need(n: number): void {
    if (this.#pos + n > this.#totalBits) {
      throw new MediaParseError(
        `${this.#what}: truncated, needed ${n} more bits at bit ${this.#pos} of ${this.#totalBits}`,
        this.#pos >>> 3,
      );
    }
  }
}

/** MSB-first bit writer into a fixed-size buffer, for the few small structures we build bit by bit. */
export class BitWriter {
  readonly #data: Uint8Array;
  #pos = 0;

  constructor(byteLength: number) {
    this.#data = new Uint8Array(byteLength);
  }

  writeBits(n: number, value: number): void {
    if (n < 0 || n > 32) throw new RangeError(`writeBits: n must be 0..32, got ${n}`);
    if (value < 0 || value >= 2 ** n) throw new RangeError(`writeBits: ${value} does not fit in ${n} bits`);
    if (this.#pos + n > this.#data.length * 8) throw new RangeError('writeBits: buffer full');
    for (let i = n - 1; i >= 0; i--) {
      const bit = Math.floor(value / 2 ** i) & 1;
      if (bit) this.#data[this.#pos >>> 3] |= 0x80 >>> (this.#pos & 7);
      this.#pos++;
    }
  }

  writeBit(bit: number): void {
    this.writeBits(1, bit ? 1 : 0);
  }

  /** ue(v), H.264 §9.1. */
  writeUE(value: number): void {
    if (!Number.isInteger(value) || value < 0 || value > 0xfffffffe)
      throw new RangeError(`writeUE: ${value}`);
    const codeNum = value + 1;
    const len = Math.floor(Math.log2(codeNum));
    this.writeBits(len, 0);
    this.writeBits(len + 1, codeNum);
  }

  /** se(v), H.264 §9.1.1. */
  writeSE(value: number): void {
    this.writeUE(value > 0 ? 2 * value - 1 : -2 * value);
  }

  get position(): number {
    return this.#pos;
  }

  /** The bytes written so far, the last one zero-padded. */
  finish(): Uint8Array {
    return this.#data.subarray(0, (this.#pos + 7) >>> 3);
  }
}

/**
 * Strips emulation_prevention_three_byte (H.264 §7.4.1, H.265 §7.4.2): every 0x03 that follows two zero bytes
 * inside a NAL unit, turning the NAL payload into its RBSP. Returns the input itself when it holds none, so
 * the common case copies nothing.
 */
export function removeEmulationPrevention(nal: Uint8Array): Uint8Array {
  let first = -1;
  for (let i = 2; i < nal.length; i++) {
    if (nal[i] === 3 && nal[i - 1] === 0 && nal[i - 2] === 0) {
      first = i;
      break;
    }
  }
  if (first < 0) return nal;
  const out = new Uint8Array(nal.length - 1);
  out.set(nal.subarray(0, first));
  let o = first;
  let zeros = 0;
  for (let i = first + 1; i < nal.length; i++) {
    const b = nal[i];
    if (zeros >= 2 && b === 3) {
      zeros = 0;
      continue;
    }
    out[o++] = b;
    zeros = b === 0 ? zeros + 1 : 0;
  }
  return out.subarray(0, o);
}

/**
 * Inserts emulation_prevention_three_byte wherever an RBSP would otherwise contain 0x000000–0x000003
 * (H.264 §7.4.1), turning it into a NAL unit payload. Returns the input itself when nothing needs escaping.
 */
export function addEmulationPrevention(rbsp: Uint8Array): Uint8Array {
  let needed = 0;
  let zeros = 0;
  for (const b of rbsp) {
    if (zeros >= 2 && b <= 3) {
      needed++;
      zeros = 0;
    }
    zeros = b === 0 ? zeros + 1 : 0;
  }
  if (needed === 0) return rbsp;
  const out = new Uint8Array(rbsp.length + needed);
  let o = 0;
  zeros = 0;
  for (const b of rbsp) {
    if (zeros >= 2 && b <= 3) {
      out[o++] = 3;
      zeros = 0;
    }
    out[o++] = b;
    zeros = b === 0 ? zeros + 1 : 0;
  }
  return out;
}
