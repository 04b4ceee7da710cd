import { Amf0Error } from './errors.ts';

/**
 * AMF0 (Adobe "Action Message Format -- AMF 0", 2006): the encoding of RTMP commands and of onMetaData.
 * Objects decode to plain objects; ECMA arrays to Amf0EcmaArray so that they encode back as ECMA arrays.
 */
export type Amf0Value = number | boolean | string | null | undefined | Date | Amf0Object | Amf0Value[];

export interface Amf0Object {
  [key: string]: Amf0Value;
}

/** An ECMA array (associative array, marker 0x08), e.g. the body of ffmpeg's onMetaData. */
export class Amf0EcmaArray implements Amf0Object {
  [key: string]: Amf0Value;
}

const NUMBER = 0x00;
const BOOLEAN = 0x01;
const STRING = 0x02;
const OBJECT = 0x03;
const MOVIECLIP = 0x04;
const NULL = 0x05;
const UNDEFINED = 0x06;
const REFERENCE = 0x07;
const ECMA_ARRAY = 0x08;
const OBJECT_END = 0x09;
const STRICT_ARRAY = 0x0a;
const DATE = 0x0b;
const LONG_STRING = 0x0c;
const UNSUPPORTED = 0x0d;
const RECORDSET = 0x0e;
const XML_DOCUMENT = 0x0f;
const TYPED_OBJECT = 0x10;
const AVMPLUS = 0x11;

/** Nesting bound: a hostile command cannot exhaust the stack. */
const MAX_DEPTH = 64;

/**
 * How large decoded values may be once references are expanded (what encoding them again would write).
 * AMF0 §2.9 references let a few hundred bytes stand for gigabytes (each reference repeats a whole earlier
 * object); real commands and onMetaData are a few kilobytes.
 */
export const MAX_EXPANDED_BYTES = 256 * 1024;

/** Decodes one value at `offset`; returns it and the offset after it. */
export function decodeAmf0(
  data: Uint8Array,
  offset = 0,
  maxExpandedBytes = MAX_EXPANDED_BYTES,
): { value: Amf0Value; offset: number } {
  const reader = new Amf0Reader(data, offset, maxExpandedBytes);
  const value = reader.value(0);
  return { value, offset: reader.pos };
}

/** Decodes consecutive values from `offset` to the end (a command: name, transaction id, arguments...). */
export function decodeAmf0Sequence(
  data: Uint8Array,
  offset = 0,
  maxExpandedBytes = MAX_EXPANDED_BYTES,
): Amf0Value[] {
  const reader = new Amf0Reader(data, offset, maxExpandedBytes);
  const out: Amf0Value[] = [];
  while (reader.pos < data.length) out.push(reader.value(0));
  return out;
}

class Amf0Reader {
  readonly data: Uint8Array;
  readonly buf: Buffer;
  readonly view: DataView;
  pos: number;
  /** Complex values in decode order, for reference markers (AMF0 §2.9). */
  readonly refs: Amf0Value[] = [];
  /** Per entry of refs: its size with references expanded; undefined while it is still being decoded. */
  readonly #refSizes: (number | undefined)[] = [];
  readonly #start: number;
  readonly #maxExpandedBytes: number;
  /** Bytes references add beyond their 3 encoded ones, so far. */
  #expansion = 0;

  constructor(data: Uint8Array, offset: number, maxExpandedBytes: number) {
    this.#start = offset;
    this.#maxExpandedBytes = maxExpandedBytes;
    this.data = data;
    this.buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    this.pos = offset;
  }

  need(n: number, what: string): void {
    if (this.pos + n > this.data.length) {
      throw new Amf0Error(
        `truncated: ${what} needs ${n} bytes, ${Math.max(0, this.data.length - this.pos)} remain`,
        this.pos,
      );
    }
  }

  u8(what: string): number {
    this.need(1, what);
    return this.data[this.pos++];
  }

  u16(what: string): number {
    this.need(2, what);
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  double(what: string): number {
    this.need(8, what);
    const v = this.view.getFloat64(this.pos);
    this.pos += 8;
    return v;
  }

  utf8(length: number, what: string): string {
    this.need(length, what);
    const s = this.buf.toString('utf8', this.pos, this.pos + length);
    this.pos += length;
    return s;
  }

  value(depth: number): Amf0Value {
    const at = this.pos;
    const marker = this.u8('type marker');
    switch (marker) {
      case NUMBER:
        return this.double('number');
      case BOOLEAN:
        return this.u8('boolean') !== 0;
      case STRING:
        return this.utf8(this.u16('string length'), 'string');
      case LONG_STRING:
      case XML_DOCUMENT:
        return this.utf8(this.u32('long string length'), 'long string');
      case NULL:
        return null;
      case UNDEFINED:
      case UNSUPPORTED:
        return undefined;
      case OBJECT:
        return this.properties({}, depth, at);
      case TYPED_OBJECT:
        this.utf8(this.u16('class name length'), 'class name');
        return this.properties({}, depth, at);
      case ECMA_ARRAY:
        // The count is advisory (encoders get it wrong); the object-end marker terminates.
        this.u32('ECMA array count');
        return this.properties(new Amf0EcmaArray(), depth, at);
      case STRICT_ARRAY: {
        const count = this.u32('strict array count');
        // Each element takes at least one byte: a count beyond the input is a lie, not an allocation.
        if (count > this.data.length - this.pos) {
          throw new Amf0Error(
            `truncated: strict array claims ${count} elements, only ${this.data.length - this.pos} bytes remain`,
            at,
          );
        }
        this.enter(depth, at);
        const out: Amf0Value[] = [];
        const done = this.#opened(out, at);
        for (let i = 0; i < count; i++) out.push(this.value(depth + 1));
        done();
        return out;
      }
      case DATE: {
        const ms = this.double('date');
        this.u16('date time zone'); // reserved, should be 0 (AMF0 §2.13)
        return new Date(ms);
      }
      case REFERENCE: {
        const index = this.u16('reference index');
        if (index >= this.refs.length) {
          throw new Amf0Error(
            `reference ${index} points past the ${this.refs.length} complex values decoded`,
            at,
          );
        }
        const size = this.#refSizes[index];
        // A value referring to itself or to one that encloses it is a cycle: it cannot be encoded again.
        if (size === undefined)
          throw new Amf0Error(`reference ${index} points to an enclosing value (a cycle)`, at);
        this.#expansion += size - 3;
        this.#checkExpansion(at);
        return this.refs[index];
      }
      case OBJECT_END:
        throw new Amf0Error('unexpected object-end marker outside an object', at);
      case AVMPLUS:
        throw new Amf0Error('AMF3 value (avmplus-object marker 0x11) is not supported', at);
      case MOVIECLIP:
      case RECORDSET:
        throw new Amf0Error(`reserved marker 0x${hex(marker)}`, at);
      default:
        throw new Amf0Error(`unknown type marker 0x${hex(marker)}`, at);
    }
  }

  /** Registers a complex value for references; the returned function records its size once it is complete. */
  #opened(value: Amf0Value, at: number): () => void {
    const index = this.refs.length;
    this.refs.push(value);
    this.#refSizes.push(undefined);
    const expansionBefore = this.#expansion;
    return () => {
      this.#refSizes[index] = this.pos - at + (this.#expansion - expansionBefore);
    };
  }

  #checkExpansion(at: number): void {
    const expanded = this.pos - this.#start + this.#expansion;
    if (expanded > this.#maxExpandedBytes) {
      throw new Amf0Error(
        `references expand the value past ${this.#maxExpandedBytes} bytes (${expanded} so far from ${this.pos - this.#start} bytes of input)`,
        at,
      );
    }
  }

  properties<T extends Amf0Object>(target: T, depth: number, at: number): T {
    this.enter(depth, at);
    const done = this.#opened(target, at);
    for (;;) {
      const key = this.utf8(this.u16('property name length'), 'property name');
      if (key === '') {
        this.need(1, 'type marker');
        if (this.data[this.pos] === OBJECT_END) {
          this.pos++;
          done();
          return target;
        }
      }
      const value = this.value(depth + 1);
      if (key === '__proto__') {
        Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
      } else {
        (target as Amf0Object)[key] = value;
      }
    }
  }

  enter(depth: number, at: number): void {
    if (depth >= MAX_DEPTH) throw new Amf0Error(`nesting deeper than ${MAX_DEPTH} levels`, at);
  }
}

function hex(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** Encodes values back to back: `encodeAmf0('_result', 1, props, info)`. */
export function encodeAmf0(...values: Amf0Value[]): Uint8Array {
  const w = new Amf0Writer();
  for (const v of values) w.value(v, 0);
  return w.finish();
}

class Amf0Writer {
  #buf = Buffer.allocUnsafe(256);
  #pos = 0;

  finish(): Uint8Array {
    return this.#buf.subarray(0, this.#pos);
  }

  #room(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#pos + n));
    this.#buf.copy(next, 0, 0, this.#pos);
    this.#buf = next;
  }

  #u8(v: number): void {
    this.#room(1);
    this.#buf[this.#pos++] = v;
  }

  #u16(v: number): void {
    this.#room(2);
    this.#buf.writeUInt16BE(v, this.#pos);
    this.#pos += 2;
  }

  #u32(v: number): void {
    this.#room(4);
    this.#buf.writeUInt32BE(v, this.#pos);
    this.#pos += 4;
  }

  #double(v: number): void {
    this.#room(8);
    this.#buf.writeDoubleBE(v, this.#pos);
    this.#pos += 8;
  }

  #utf8(s: string, length: number): void {
    this.#room(length);
    this.#buf.write(s, this.#pos, length, 'utf8');
    this.#pos += length;
  }

  #key(key: string): void {
    const length = Buffer.byteLength(key, 'utf8');
    if (length > 0xffff) throw new RangeError(`AMF0 property name of ${length} bytes exceeds 65535`);
    this.#u16(length);
    this.#utf8(key, length);
  }

  value(v: Amf0Value, depth: number): void {
    if (depth >= MAX_DEPTH) throw new RangeError(`AMF0 value nested deeper than ${MAX_DEPTH} levels`);
    if (v === null) {
      this.#u8(NULL);
    } else if (v === undefined) {
      this.#u8(UNDEFINED);
    } else if (typeof v === 'number') {
      this.#u8(NUMBER);
      this.#double(v);
    } else if (typeof v === 'boolean') {
      this.#u8(BOOLEAN);
      this.#u8(v ? 1 : 0);
    } else if (typeof v === 'string') {
      const length = Buffer.byteLength(v, 'utf8');
      if (length > 0xffff) {
        this.#u8(LONG_STRING);
        this.#u32(length);
      } else {
        this.#u8(STRING);
        this.#u16(length);
      }
      this.#utf8(v, length);
    } else if (v instanceof Date) {
      this.#u8(DATE);
      this.#double(v.getTime());
      this.#u16(0);
    } else if (Array.isArray(v)) {
      this.#u8(STRICT_ARRAY);
      this.#u32(v.length);
      for (const item of v) this.value(item, depth + 1);
    } else {
      if (v instanceof Amf0EcmaArray) {
        this.#u8(ECMA_ARRAY);
        this.#u32(Object.keys(v).length);
      } else {
        this.#u8(OBJECT);
      }
      for (const [key, item] of Object.entries(v)) {
        this.#key(key);
        this.value(item, depth + 1);
      }
      this.#u16(0);
      this.#u8(OBJECT_END);
    }
  }
}
