import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { writeRtpPacket } from '../../../media/rtp/packet.ts';
import { RtpBatchReader, RtpBatchWriter, RtpChannelError } from './RtpChannel.ts';

function packet(sequence: number, size: number): Buffer {
  const payload = Buffer.alloc(size, sequence & 0xff);
  const bytes = writeRtpPacket({ payloadType: 96, sequenceNumber: sequence, timestamp: 0, ssrc: 1 }, payload);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

type Got = [number, string, number, number, number, number, boolean];

function collect(): { reader: RtpBatchReader; got: Got[] } {
  const got: Got[] = [];
  const reader = new RtpBatchReader((feedId, kind, p, sequence, timestamp, ssrc, keyframe) =>
    got.push([feedId, kind, p.length, sequence, timestamp, ssrc, keyframe]),
  );
  return { reader, got };
}

test('records of one turn go out as one write and come back whole, however the bytes are split', async () => {
  const socket = new PassThrough();
  const writes: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => writes.push(chunk));
  const writer = new RtpBatchWriter(socket, 1 << 20);
  const sent: Got[] = [];
  for (let i = 0; i < 40; i++) {
    const p = packet(i, 100 + i * 30);
    // The source fields travel apart from the packet: a listener before this one may have rewritten them.
    const record: Got = [
      7 + (i % 2),
      i % 3 ? 'video' : 'audio',
      p.length,
      65530 + i,
      0xfffffff0 + i,
      0xabcdef01,
      i === 0,
    ];
    writer.push(record[0], record[1] as 'video', p, record[3], record[4], record[5], record[6]);
    sent.push([record[0], record[1], record[2], record[3] & 0xffff, record[4] >>> 0, record[5], record[6]]);
  }
  assert.equal(writes.length, 0, 'nothing written before the end of the turn');
  await new Promise((r) => setImmediate(r));
  assert.equal(writer.batches, 1);
  const bytes = Buffer.concat(writes);
  // Every split point a stream socket may produce, from one byte at a time to the whole batch.
  for (const step of [1, 7, 16, 17, 1000, bytes.length]) {
    const { reader, got } = collect();
    for (let at = 0; at < bytes.length; at += step) reader.read(bytes.subarray(at, at + step));
    assert.deepEqual(got, sent, `split every ${step} bytes`);
  }
});

test('a full batch is written at once; a worker that stops reading loses packets, not main memory', async () => {
  const socket = new PassThrough({ highWaterMark: 1024 });
  const writer = new RtpBatchWriter(socket, 200_000);
  for (let i = 0; i < 400; i++) writer.push(1, 'video', packet(i, 1100), i, 0, 1, false);
  await new Promise((r) => setImmediate(r));
  assert.ok(writer.batches >= 3, `batches of at most 64 KiB: ${writer.batches}`);
  assert.ok(writer.dropped > 0, 'packets past the backlog limit are dropped');
  assert.ok(socket.writableLength <= 200_000 + 64 * 1024, `backlog bounded: ${socket.writableLength}`);
  assert.equal(writer.records + writer.dropped, 400);
});

test('a record header that cannot be a packet stops the reader with a clear error', () => {
  const { reader } = collect();
  const bad = Buffer.alloc(32);
  bad.writeUInt16BE(4, 0);
  assert.throws(() => reader.read(bad), RtpChannelError);
  assert.throws(() => reader.read(bad), /record at byte 0 is malformed \(packet length 4\)/);
});
