import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { decodeAmf0Sequence, encodeAmf0 } from './amf0.ts';
import { ChunkReader, ChunkWriter, encodeChunks } from './chunk.ts';
import { RtmpProtocolError } from './errors.ts';
import { MessageType, type RtmpMessage, setChunkSizeMessage } from './messages.ts';

interface Plain {
  csid: number;
  timestamp: number;
  typeId: number;
  streamId: number;
  payload: string;
}

function plain(m: RtmpMessage): Plain {
  return { ...m, payload: Buffer.from(m.payload).toString('hex') };
}

function parse(pieces: readonly Uint8Array[]): Plain[] {
  const out: Plain[] = [];
  const reader = new ChunkReader({ onMessage: (m) => out.push(plain(m)) });
  for (const piece of pieces) reader.push(piece);
  return out;
}

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/** Asserts the same messages come out whether `stream` arrives whole, split at any one offset, or byte by byte. */
function assertSplitInvariant(stream: Uint8Array, expected: Plain[]): void {
  assert.deepStrictEqual(parse([stream]), expected, 'whole');
  for (let cut = 0; cut <= stream.length; cut++) {
    const got = parse([stream.subarray(0, cut), stream.subarray(cut)]);
    if (got.length !== expected.length) assert.fail(`split at ${cut}: ${got.length} messages`);
    assert.deepStrictEqual(got, expected, `split at ${cut}`);
  }
  const single: Uint8Array[] = [];
  for (let i = 0; i < stream.length; i++) single.push(stream.subarray(i, i + 1));
  assert.deepStrictEqual(parse(single), expected, 'byte by byte');
}

/**
 * A stream exercising the reader: every header type, 1/2/3-byte basic headers, extended timestamps (on type 3
 * continuation chunks too), a chunk size change, a zero-length message and two interleaved messages.
 */
function buildMixedStream(): { stream: Uint8Array; messages: RtmpMessage[]; fmts: Set<number> } {
  const writer = new ChunkWriter({ compressHeaders: true });
  const messages: RtmpMessage[] = [];
  const parts: Uint8Array[] = [];
  const fmts = new Set<number>();
  const add = (m: RtmpMessage) => {
    const encoded = writer.encode(m);
    fmts.add(encoded[0] >> 6);
    parts.push(encoded);
    messages.push(m);
  };
  add({ csid: 3, timestamp: 0, typeId: 20, streamId: 0, payload: encodeAmf0('connect', 1, { app: 'live' }) });
  // Same length, same delta: type 2, then type 3 headers for whole new messages.
  for (let i = 0; i < 5; i++)
    add({ csid: 4, timestamp: 100 + 23 * i, typeId: 8, streamId: 1, payload: bytes(7, i) });
  // Changing lengths: type 1. Larger than 128: continuation chunks.
  for (let i = 0; i < 3; i++)
    add({ csid: 6, timestamp: 100 + 33 * i, typeId: 9, streamId: 1, payload: bytes(300 + 50 * i, i) });
  add(setChunkSizeMessage(1000));
  add({ csid: 6, timestamp: 300, typeId: 9, streamId: 1, payload: bytes(2500, 9) });
  // Extended timestamps: absolute (type 0 on a new chunk stream), then an extended delta (type 2).
  add({ csid: 7, timestamp: 0x1234567, typeId: 9, streamId: 1, payload: bytes(2200, 3) });
  add({ csid: 7, timestamp: 0x1234567 + 0x1000000, typeId: 9, streamId: 1, payload: bytes(2200, 4) });
  add({ csid: 7, timestamp: 0x1234567 + 0x2000000, typeId: 9, streamId: 1, payload: bytes(2200, 5) });
  add({ csid: 8, timestamp: 0xffffffff, typeId: 8, streamId: 1, payload: bytes(10, 1) });
  // Two- and three-byte basic headers.
  add({
    csid: 64,
    timestamp: 5,
    typeId: 18,
    streamId: 1,
    payload: encodeAmf0('@setDataFrame', 'onMetaData'),
  });
  add({ csid: 319, timestamp: 6, typeId: 18, streamId: 1, payload: bytes(1500, 6) });
  add({ csid: 320, timestamp: 7, typeId: 18, streamId: 1, payload: bytes(3, 7) });
  add({ csid: 65599, timestamp: 8, typeId: 18, streamId: 1, payload: bytes(1001, 8) });
  add({ csid: 5, timestamp: 9, typeId: 20, streamId: 1, payload: new Uint8Array(0) });
  add(setChunkSizeMessage(64));
  // Interleaved: the first chunk of a long video message, a whole audio message, the rest of the video.
  const video: RtmpMessage = { csid: 6, timestamp: 400, typeId: 9, streamId: 1, payload: bytes(150, 11) };
  const audio: RtmpMessage = { csid: 4, timestamp: 401, typeId: 8, streamId: 1, payload: bytes(20, 12) };
  const v = encodeChunks(video, [video.payload], 64);
  const a = encodeChunks(audio, [audio.payload], 64);
  const firstChunk = 1 + 11 + 64;
  parts.push(v.subarray(0, firstChunk), a, v.subarray(firstChunk));
  messages.push(audio, video);
  return { stream: Buffer.concat(parts), messages, fmts };
}

test('the chunk writer uses every header type and the reader restores every message', () => {
  const { stream, messages, fmts } = buildMixedStream();
  assert.deepStrictEqual([...fmts].sort(), [0, 1, 2, 3]);
  const expected = messages.map(plain);
  assert.deepStrictEqual(parse([stream]), expected);
  // Timestamps past 2^24 went through extended fields, including on continuation chunks.
  assert.ok(expected.some((m) => m.timestamp === 0x3234567));
});

test('the reader gives identical messages for every split of a written stream', () => {
  const { stream, messages } = buildMixedStream();
  assertSplitInvariant(stream, messages.map(plain));
});

test('the reader gives identical messages for every split of a real ffmpeg publish', () => {
  const capture = readFileSync(new URL('./testdata/ffmpeg-publish.bin', import.meta.url));
  const messages = parse([capture]);
  const commands = messages
    .filter((m) => m.typeId === MessageType.CommandAmf0)
    .map((m) => decodeAmf0Sequence(Buffer.from(m.payload, 'hex'))[0]);
  assert.deepStrictEqual(commands.slice(0, 5), [
    'connect',
    'releaseStream',
    'FCPublish',
    'createStream',
    'publish',
  ]);
  assert.ok(
    messages.some((m) => m.typeId === MessageType.SetChunkSize),
    'ffmpeg raises its chunk size',
  );
  const video = messages.filter((m) => m.typeId === MessageType.Video);
  const audio = messages.filter((m) => m.typeId === MessageType.Audio);
  assert.ok(video.length >= 5, `${video.length} video messages`);
  assert.ok(audio.length >= 5, `${audio.length} audio messages`);
  assert.equal(video[0].payload.slice(0, 4), '1700', 'first video message is the AVC sequence header');
  assertSplitInvariant(capture, messages);
});

function header(
  fmt: number,
  csid: number,
  timestamp: number,
  length: number,
  typeId: number,
  streamId = 0,
): Buffer {
  const b = Buffer.alloc(12);
  b[0] = (fmt << 6) | csid;
  b.writeUIntBE(timestamp, 1, 3);
  b.writeUIntBE(length, 4, 3);
  b[7] = typeId;
  b.writeUInt32LE(streamId, 8);
  return b;
}

test('Set Chunk Size 0 and 2^31 are protocol errors naming the value', () => {
  for (const [value, shown] of [
    [0, '0'],
    [0x80000000, '2147483648'],
    [0xffffffff, '4294967295'],
  ] as const) {
    const payload = Buffer.alloc(4);
    payload.writeUInt32BE(value);
    const reader = new ChunkReader({ onMessage: () => {} });
    assert.throws(
      () => reader.push(Buffer.concat([header(0, 2, 0, 4, MessageType.SetChunkSize), payload])),
      (err: unknown) =>
        err instanceof RtmpProtocolError &&
        err.message === `Set Chunk Size ${shown} is out of range (1 to 2147483647)`,
    );
  }
  // The largest legal value is accepted.
  const ok = new ChunkReader({ onMessage: () => {} });
  ok.push(
    Buffer.concat([header(0, 2, 0, 4, MessageType.SetChunkSize), Buffer.from([0x7f, 0xff, 0xff, 0xff])]),
  );
  assert.equal(ok.chunkSize, 0x7fffffff);
});

test('a message longer than the bound is refused from its header, before any payload', () => {
  const reader = new ChunkReader({ maxMessageSize: 1024 * 1024, onMessage: () => {} });
  assert.throws(
    () => reader.push(header(0, 6, 0, 0xffffff, MessageType.Video, 1)),
    /message of 16777215 bytes \(type 9\) on chunk stream 6 exceeds the 1048576-byte limit/,
  );
});

test('many partial messages across chunk streams cannot exceed the buffering bound', () => {
  const reader = new ChunkReader({ maxMessageSize: 1000, onMessage: () => {} });
  const chunks: Buffer[] = [];
  for (let csid = 3; csid < 10; csid++)
    chunks.push(header(0, csid, 0, 1000, MessageType.Video, 1), Buffer.alloc(128));
  assert.throws(() => reader.push(Buffer.concat(chunks)), /incomplete messages across chunk streams exceed/);
});

test('a chunk stream cannot start with a compressed header', () => {
  const reader = new ChunkReader({ onMessage: () => {} });
  assert.throws(
    () => reader.push(Buffer.from([(1 << 6) | 9, 0, 0, 0, 0, 0, 4, 9])),
    /chunk stream 9 starts with a type 1/,
  );
});

test('Abort drops the partial message of its chunk stream', () => {
  const got: Plain[] = [];
  const reader = new ChunkReader({ onMessage: (m) => got.push(plain(m)) });
  const abort = Buffer.concat([header(0, 2, 0, 4, MessageType.Abort), Buffer.from([0, 0, 0, 6])]);
  reader.push(Buffer.concat([header(0, 6, 10, 300, MessageType.Video, 1), Buffer.alloc(128, 1), abort]));
  // A fresh message on the same chunk stream parses cleanly after the abort.
  reader.push(Buffer.concat([header(0, 6, 20, 3, MessageType.Video, 1), Buffer.from([7, 8, 9])]));
  assert.deepStrictEqual(
    got.map((m) => [m.typeId, m.timestamp, m.payload]),
    [
      [MessageType.Abort, 0, '00000006'],
      [MessageType.Video, 20, '070809'],
    ],
  );
});

test('counts bytes for acknowledgements', () => {
  const reader = new ChunkReader({ onMessage: () => {} });
  reader.push(header(0, 3, 0, 1, 20).subarray(0, 5));
  reader.push(Buffer.concat([header(0, 3, 0, 1, 20).subarray(5), Buffer.from([5])]));
  assert.equal(reader.bytesRead, 13);
});
