import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  Amf0EcmaArray,
  type Amf0Value,
  decodeAmf0,
  decodeAmf0Sequence,
  encodeAmf0,
  MAX_EXPANDED_BYTES,
} from './amf0.ts';
import { Amf0Error } from './errors.ts';
import { metadataWith, referenceBomb, selfReference } from './testing/amf0Bombs.ts';

function roundTrip(value: Amf0Value): Amf0Value {
  const bytes = encodeAmf0(value);
  const { value: decoded, offset } = decodeAmf0(bytes);
  assert.equal(offset, bytes.length, 'decoder consumed every byte');
  return decoded;
}

test('AMF0 round trips every type', () => {
  const ecma = new Amf0EcmaArray();
  ecma.duration = 0;
  ecma.width = 640;
  ecma.encoder = 'Lavf59';
  const values: Amf0Value[] = [
    0,
    -1.5,
    2 ** 53,
    Number.POSITIVE_INFINITY,
    true,
    false,
    '',
    'connect',
    'ünïcødé ✓ 🎥',
    'x'.repeat(70_000), // long string (marker 0x0c)
    null,
    undefined,
    { app: 'live', tcUrl: 'rtmp://127.0.0.1/live', nested: { deep: [1, 'two', null] } },
    {},
    ecma,
    new Amf0EcmaArray(),
    [1, 'a', true, null, undefined, { k: 'v' }, [2, [3]]],
    [],
    new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6)),
  ];
  for (const v of values) assert.deepStrictEqual(roundTrip(v), v);
  assert.ok(Number.isNaN(roundTrip(Number.NaN)));
});

test('AMF0 picks the wire markers the spec assigns', () => {
  assert.equal(encodeAmf0(1)[0], 0x00);
  assert.equal(encodeAmf0(true)[0], 0x01);
  assert.equal(encodeAmf0('s')[0], 0x02);
  assert.equal(encodeAmf0({})[0], 0x03);
  assert.equal(encodeAmf0(null)[0], 0x05);
  assert.equal(encodeAmf0(undefined)[0], 0x06);
  assert.equal(encodeAmf0(new Amf0EcmaArray())[0], 0x08);
  assert.equal(encodeAmf0([])[0], 0x0a);
  assert.equal(encodeAmf0(new Date(0))[0], 0x0b);
  assert.equal(encodeAmf0('y'.repeat(0x10000))[0], 0x0c);
  // An empty object is its marker then the object-end sequence 00 00 09.
  assert.deepStrictEqual([...encodeAmf0({})], [0x03, 0x00, 0x00, 0x09]);
});

test('a command decodes as a sequence of values', () => {
  const bytes = encodeAmf0('connect', 1, { app: 'live', objectEncoding: 0 }, null);
  assert.deepStrictEqual(decodeAmf0Sequence(bytes), ['connect', 1, { app: 'live', objectEncoding: 0 }, null]);
});

test('a "__proto__" property is data, not a prototype change', () => {
  // 03 | 00 09 "__proto__" | 03 00 01 "x" 00 <1.0> 00 00 09 | 00 00 09
  const inner = encodeAmf0({ x: 1 });
  const key = Buffer.from('__proto__');
  const bytes = Buffer.concat([Buffer.from([0x03, 0x00, key.length]), key, inner, Buffer.from([0, 0, 9])]);
  const decoded = decodeAmf0(bytes).value as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(decoded), Object.prototype);
  assert.deepStrictEqual(Object.keys(decoded), ['__proto__']);
  assert.equal((decoded as { x?: number }).x, undefined);
});

test('references resolve to the complex value decoded earlier', () => {
  // strict array of two: an object, then a reference to complex value #1 (the object; #0 is the array).
  const obj = encodeAmf0({ a: 1 });
  const bytes = Buffer.concat([Buffer.from([0x0a, 0, 0, 0, 2]), obj, Buffer.from([0x07, 0x00, 0x01])]);
  const decoded = decodeAmf0(bytes).value as Amf0Value[];
  assert.deepStrictEqual(decoded[0], { a: 1 });
  assert.equal(decoded[1], decoded[0]);
  assert.throws(
    () => decodeAmf0(Buffer.from([0x07, 0x00, 0x05])),
    /reference 5 points past the 0 complex values/,
  );
});

test('truncated input fails at every cut with a typed error naming the offset', () => {
  const ecma = new Amf0EcmaArray();
  ecma.a = 'b';
  const bytes = encodeAmf0(
    'publish',
    5,
    null,
    'cam1',
    { x: [1, 'y'], d: new Date(0) },
    ecma,
    'z'.repeat(300),
  );
  const values = decodeAmf0Sequence(bytes);
  for (let cut = 1; cut < bytes.length; cut++) {
    let decoded: Amf0Value[] | null = null;
    try {
      decoded = decodeAmf0Sequence(bytes.subarray(0, cut));
    } catch (err) {
      assert.ok(err instanceof Amf0Error, `cut ${cut}: ${err}`);
      assert.ok(err.offset >= 0 && err.offset <= cut, `cut ${cut}: offset ${err.offset}`);
      assert.match(
        err.message,
        /^AMF0 truncated: .* (needs \d+ bytes, \d+|only \d+ bytes) remain at offset \d+$/,
      );
      continue;
    }
    // A cut that falls between two values decodes the values before it.
    assert.deepStrictEqual(decoded, values.slice(0, decoded.length), `cut ${cut}`);
  }
  assert.throws(
    () => decodeAmf0(Buffer.from([0x02, 0x00, 0x05, 0x61])),
    (err: unknown) =>
      err instanceof Amf0Error && err.offset === 3 && /string needs 5 bytes, 1 remain/.test(err.message),
  );
});

test('unknown, reserved and AMF3 markers are refused with their offset', () => {
  const prefix = encodeAmf0('ok');
  const cases: [number, RegExp][] = [
    [0x14, /unknown type marker 0x14 at offset 5$/],
    [0xff, /unknown type marker 0xff at offset 5$/],
    [0x04, /reserved marker 0x04 at offset 5$/],
    [0x11, /AMF3 value .* not supported at offset 5$/],
    [0x09, /unexpected object-end marker outside an object at offset 5$/],
  ];
  for (const [marker, message] of cases) {
    const bytes = Buffer.concat([prefix, Buffer.from([marker, 0, 0, 0, 0])]);
    assert.throws(
      () => decodeAmf0Sequence(bytes),
      (err: unknown) => err instanceof Amf0Error && message.test(err.message),
    );
  }
});

test('hostile sizes and nesting are refused, not allocated or recursed into', () => {
  assert.throws(
    () => decodeAmf0(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x05])),
    /strict array claims 4294967295/,
  );
  // 100 objects, each the value of key "a" in the one before.
  const nested = Buffer.concat(Array.from({ length: 100 }, () => Buffer.from([0x03, 0x00, 0x01, 0x61])));
  assert.throws(() => decodeAmf0(nested), /nesting deeper than 64 levels/);
});

test('AMF0 references expanding past MAX_EXPANDED_BYTES are refused while decoding, with the sizes', () => {
  const bomb = referenceBomb(20); // 333 bytes standing for 100 MB
  assert.equal(bomb.length, 333);
  const started = performance.now();
  assert.throws(
    () => decodeAmf0(bomb),
    (err: Error) =>
      err instanceof Amf0Error &&
      new RegExp(`references expand the value past ${MAX_EXPANDED_BYTES} bytes`).test(err.message),
  );
  assert.ok(performance.now() - started < 100, 'refused at once, not after expanding');
  // A few levels stay well inside the bound and decode to shared objects.
  const small = decodeAmf0(referenceBomb(4)).value as Amf0Value[][];
  assert.equal(small.length, 5);
  assert.ok(encodeAmf0(small).length < 4000);
});

test('AMF0 self and enclosing references (cycles) are refused', () => {
  assert.throws(() => decodeAmf0(selfReference(0)), /reference 0 points to an enclosing value \(a cycle\)/);
  // onMetaData's ECMA array is value 0, the object inside it value 1: both are open at the reference.
  assert.throws(() => decodeAmf0Sequence(metadataWith(selfReference(0))), /a cycle/);
  assert.throws(() => decodeAmf0Sequence(metadataWith(selfReference(1))), /a cycle/);
});
