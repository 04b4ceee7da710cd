import { ByteReader } from '../bytes.ts';

/** FLV tag types (FLV v10.1 §E.4.1). */
export const FlvTagType = {
  Audio: 8,
  Video: 9,
  Script: 18,
} as const;

/** One tag of an FLV file or of an RTMP aggregate message: the 11-byte header and a view of its body. */
export interface FlvTag {
  readonly type: number;
  /** Milliseconds, 32 bits (TimestampExtended is the high byte). */
  readonly timestamp: number;
  readonly body: Uint8Array;
}

/**
 * Splits consecutive FLV tags, each followed by its 4-byte PreviousTagSize (FLV v10.1 §E.3): the body of an
 * RTMP aggregate message (type 22). Bodies are views, not copies. A DataSize that runs past the end throws
 * MediaParseError naming it.
 */
export function parseFlvTags(data: Uint8Array): FlvTag[] {
  const r = new ByteReader(data, 'FLV tags');
  const tags: FlvTag[] = [];
  while (r.remaining > 0) {
    const type = r.u8('TagType') & 0x1f;
    const size = r.u24('DataSize');
    const low = r.u24('Timestamp');
    const high = r.u8('TimestampExtended');
    r.skip(3, 'StreamID');
    const body = r.bytes(size, `tag body (DataSize ${size})`);
    // PreviousTagSize is absent after the last tag of some aggregates; it carries nothing we need.
    if (r.remaining >= 4) r.skip(4, 'PreviousTagSize');
    else if (r.remaining > 0) r.fail(`${r.remaining} stray bytes after a tag, PreviousTagSize needs 4`);
    tags.push({ type, timestamp: ((high << 24) | low) >>> 0, body });
  }
  return tags;
}
