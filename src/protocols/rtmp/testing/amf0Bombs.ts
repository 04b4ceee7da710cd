/**
 * Hostile AMF0 for tests (and fuzz seeds): values whose references (AMF0 §2.9) expand far beyond their bytes,
 * and values that refer to themselves.
 */

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

const reference = (index: number) => Buffer.concat([Buffer.from([0x07]), u16(index)]);

/**
 * A strict array whose element k+1 holds two references to element k: `levels` levels expand a 100-byte
 * string 2^levels-fold (the top array is complex value `base`, its elements base + 1, …; `base` counts the
 * complex values decoded before it, 1 inside onMetaData's ECMA array). About 11 bytes per level.
 */
export function referenceBomb(levels: number, base = 0): Buffer {
  const parts: Buffer[] = [Buffer.from([0x0a]), u32(levels + 1)];
  parts.push(Buffer.from([0x0a]), u32(1), Buffer.from([0x02]), u16(100), Buffer.alloc(100, 0x78));
  for (let k = 1; k <= levels; k++)
    parts.push(Buffer.from([0x0a]), u32(2), reference(base + k), reference(base + k));
  return Buffer.concat(parts);
}

/** An object with a property referring to the object itself (complex value `index`). */
export function selfReference(index = 0): Buffer {
  return Buffer.concat([
    Buffer.from([0x03]),
    u16(4),
    Buffer.from('self'),
    reference(index),
    u16(0),
    Buffer.from([0x09]),
  ]);
}

/** `onMetaData` with an ECMA array whose `bomb` property is `value` (encoded AMF0), as a data message body. */
export function metadataWith(value: Buffer): Buffer {
  const name = Buffer.from('onMetaData');
  return Buffer.concat([
    Buffer.from([0x02]),
    u16(name.length),
    name,
    Buffer.from([0x08]),
    u32(2),
    u16(8),
    Buffer.from('hasVideo'),
    Buffer.from([0x01, 0x01]),
    u16(4),
    Buffer.from('bomb'),
    value,
    u16(0),
    Buffer.from([0x09]),
  ]);
}
