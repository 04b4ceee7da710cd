import type { Writable } from 'node:stream';
import type { FeedKind } from '../RtpFeed.ts';

/*
 * The media path from the main process to a WHEP worker: every RTP packet of a watched feed crosses once per
 * worker (never per viewer) as a record on a Unix socket pair (an extra stdio pipe of the forked worker).
 * Records of one event-loop turn go out in one write: bench/whep-workers/channel.ts measured this cheaper than
 * the IPC channel with `serialization: 'advanced'`, and one write per packet costs up to twice as much.
 *
 * Record: u16 packet length, u16 feed id, u8 flags (1 = video, 2 = starts a keyframe), u8 zero,
 * u16 source sequence number, u32 source timestamp, u32 source SSRC, then the packet. The source header
 * fields travel apart from the packet because a listener before this one may have rewritten the shared
 * packet's header for its own viewer.
 */

export const RECORD_HEADER_BYTES = 16;
const FLAG_VIDEO = 1;
const FLAG_KEYFRAME = 2;
/** A batch larger than this is written at once rather than at the end of the turn. */
const BATCH_BYTES = 64 * 1024;
/** RTP header size: a record announcing less is not an RTP packet and the stream is out of step. */
const MIN_PACKET_BYTES = 12;

export class RtpChannelError extends Error {}

export type RtpRecordHandler = (
  feedId: number,
  kind: FeedKind,
  packet: Buffer,
  sequence: number,
  timestamp: number,
  ssrc: number,
  keyframeStart: boolean,
) => void;

/** Main-process side: appends records to the current turn's batch and writes it when the turn ends. */
export class RtpBatchWriter {
  readonly #socket: Writable;
  readonly #maxBacklogBytes: number;
  #batch = Buffer.allocUnsafe(BATCH_BYTES);
  #used = 0;
  #scheduled = false;
  records = 0;
  batches = 0;
  /** Packets not sent because the worker stopped reading (its backlog passed the limit). */
  dropped = 0;

  constructor(socket: Writable, maxBacklogBytes: number) {
    this.#socket = socket;
    this.#maxBacklogBytes = maxBacklogBytes;
  }

  push(
    feedId: number,
    kind: FeedKind,
    packet: Uint8Array,
    sequence: number,
    timestamp: number,
    ssrc: number,
    keyframeStart: boolean,
  ): void {
    const size = RECORD_HEADER_BYTES + packet.length;
    if (packet.length > 0xffff || size > BATCH_BYTES || this.#socket.writableLength > this.#maxBacklogBytes) {
      this.dropped++;
      return;
    }
    if (this.#used + size > BATCH_BYTES) this.flush();
    const b = this.#batch;
    let at = this.#used;
    b.writeUInt16BE(packet.length, at);
    b.writeUInt16BE(feedId, at + 2);
    b[at + 4] = (kind === 'video' ? FLAG_VIDEO : 0) | (keyframeStart ? FLAG_KEYFRAME : 0);
    b[at + 5] = 0;
    b.writeUInt16BE(sequence & 0xffff, at + 6);
    b.writeUInt32BE(timestamp >>> 0, at + 8);
    b.writeUInt32BE(ssrc >>> 0, at + 12);
    at += RECORD_HEADER_BYTES;
    b.set(packet, at);
    this.#used = at + packet.length;
    this.records++;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#endOfTurn);
    }
  }

  /** Writes what the batch holds (a copy: the batch buffer is reused while the socket may still hold it). */
  flush(): void {
    if (this.#used === 0) return;
    const out = Buffer.allocUnsafe(this.#used);
    this.#batch.copy(out, 0, 0, this.#used);
    this.#used = 0;
    this.batches++;
    this.#socket.write(out);
  }

  readonly #endOfTurn = () => {
    this.#scheduled = false;
    this.flush();
  };
}

/**
 * Worker side: splits the byte stream back into records. A packet handed on is a view of the received chunk
 * (no copy); listeners may patch its header as they do in the main process.
 */
export class RtpBatchReader {
  readonly #onRecord: RtpRecordHandler;
  #pending: Buffer | null = null;
  records = 0;

  constructor(onRecord: RtpRecordHandler) {
    this.#onRecord = onRecord;
  }

  /** Throws RtpChannelError when a record header is impossible: the channel is out of step for good. */
  read(chunk: Buffer): void {
    const data = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk;
    this.#pending = null;
    let at = 0;
    while (at + RECORD_HEADER_BYTES <= data.length) {
      const length = data.readUInt16BE(at);
      if (length < MIN_PACKET_BYTES || data[at + 5] !== 0) {
        throw new RtpChannelError(`RTP channel record at byte ${at} is malformed (packet length ${length})`);
      }
      const end = at + RECORD_HEADER_BYTES + length;
      if (end > data.length) break;
      const flags = data[at + 4];
      this.records++;
      this.#onRecord(
        data.readUInt16BE(at + 2),
        flags & FLAG_VIDEO ? 'video' : 'audio',
        data.subarray(at + RECORD_HEADER_BYTES, end),
        data.readUInt16BE(at + 6),
        data.readUInt32BE(at + 8),
        data.readUInt32BE(at + 12),
        (flags & FLAG_KEYFRAME) !== 0,
      );
      at = end;
    }
    if (at < data.length) this.#pending = data.subarray(at);
  }
}
