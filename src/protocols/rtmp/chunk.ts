import { RtmpProtocolError } from './errors.ts';
import { MessageType, type RtmpMessage } from './messages.ts';

/** RTMP 1.0 §5.4.1: every chunk stream starts at 128 bytes per chunk until Set Chunk Size says otherwise. */
export const DEFAULT_CHUNK_SIZE = 128;
/** Set Chunk Size is 31 bits (§5.4.1: the high bit must be zero). */
export const MAX_CHUNK_SIZE = 0x7fffffff;
/** 24-bit message length: nothing can be larger, so the default bound sits well below to refuse absurd ones. */
export const DEFAULT_MAX_MESSAGE_SIZE = 8 * 1024 * 1024;
const EXTENDED = 0xffffff;
const MAX_CSID = 65599;
const EMPTY = new Uint8Array(0);

/** Per chunk stream: the last message header (what type 1-3 headers inherit) and the message being assembled. */
interface ChunkStreamState {
  timestamp: number;
  /**
   * The last timestamp field: a delta for type 1/2 headers, and for type 0 the absolute timestamp, which a
   * following type 3 header re-applies as its delta (the reading of §5.3.1.2.4 ffmpeg, librtmp and SRS share).
   */
  delta: number;
  length: number;
  typeId: number;
  streamId: number;
  /** The last type 0-2 header used the extended timestamp, so type 3 chunks carry one as well (§5.3.1.3). */
  extended: boolean;
  payload: Uint8Array | null;
  received: number;
}

/**
 * Reassembly memory shared by every connection of a server: bytes of unfinished messages held, against a
 * limit. A connection that would pass it is refused (closed), not the server.
 */
export class ReassemblyBudget {
  readonly maxBytes: number;
  used = 0;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }
}

/** Unfinished messages start this large and double as their bytes arrive, up to their declared length. */
const FIRST_ALLOCATION = 64 * 1024;

export interface ChunkReaderOptions {
  /** Largest message accepted; a header announcing more is a protocol error. */
  readonly maxMessageSize?: number;
  /** The server-wide bound on unfinished messages' memory; none when absent. */
  readonly budget?: ReassemblyBudget;
  /** Called synchronously for every complete message, in order. */
  readonly onMessage: (message: RtmpMessage) => void;
}

/**
 * Reassembles RTMP messages from the chunk stream (RTMP 1.0 §5.3). Incremental: fed whatever the socket
 * delivers, it yields the same messages for any split. Only a partial chunk header (at most 18 bytes) is ever
 * buffered; payload bytes go straight into their message. It applies Set Chunk Size and Abort itself, since they
 * change how the very next bytes parse, and still hands them to `onMessage`.
 *
 * The reader may keep views into the arrays it is given: callers must not reuse them.
 */
export class ChunkReader {
  /** Changeable: a connection allows large messages only once its publish or play is authorized. */
  maxMessageSize: number;
  /** Said after the limit when a message passes it (why the limit is what it is). */
  maxMessageSizeReason = '';
  readonly #budget: ReassemblyBudget;
  #released = false;
  /** Bytes consumed so far, for acknowledgements (§5.4.3). */
  bytesRead = 0;
  readonly #onMessage: (message: RtmpMessage) => void;
  #chunkSize = DEFAULT_CHUNK_SIZE;
  readonly #streams = new Map<number, ChunkStreamState>();
  #pending: Uint8Array = EMPTY;
  /** The chunk stream whose chunk payload is being read, null while expecting a chunk header. */
  #current: ChunkStreamState | null = null;
  #currentCsid = 0;
  #chunkLeft = 0;
  /** Declared lengths of messages begun but not complete: bounds what interleaved chunk streams can hold. */
  #incompleteBytes = 0;

  constructor(options: ChunkReaderOptions) {
    this.maxMessageSize = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.#budget = options.budget ?? new ReassemblyBudget(Number.POSITIVE_INFINITY);
    this.#onMessage = options.onMessage;
  }

  get chunkSize(): number {
    return this.#chunkSize;
  }

  push(data: Uint8Array): void {
    this.bytesRead += data.length;
    let buf = data;
    if (this.#pending.length > 0) {
      buf = Buffer.concat([this.#pending, data]);
      this.#pending = EMPTY;
    }
    let pos = 0;
    while (pos < buf.length && !this.#released) {
      if (this.#current === null) {
        const next = this.#readHeader(buf, pos);
        if (next < 0) {
          // Copied: a partial header is a handful of bytes, and keeping a view would pin the whole socket read.
          this.#pending = Uint8Array.prototype.slice.call(buf, pos);
          return;
        }
        pos = next;
        continue;
      }
      const state = this.#current;
      const take = Math.min(this.#chunkLeft, buf.length - pos);
      if (state.received + take > state.payload!.length) this.#grow(state, state.received + take);
      state.payload!.set(buf.subarray(pos, pos + take), state.received);
      state.received += take;
      this.#chunkLeft -= take;
      pos += take;
      if (this.#chunkLeft === 0) {
        this.#current = null;
        if (state.received === state.length) this.#complete(this.#currentCsid, state, state.payload!);
      }
    }
  }

  /** Parses one chunk header at `pos`; returns the offset after it, or -1 when more bytes are needed. */
  #readHeader(buf: Uint8Array, pos: number): number {
    const b0 = buf[pos];
    const fmt = b0 >> 6;
    let csid = b0 & 0x3f;
    let p = pos + 1;
    if (csid === 0) {
      if (buf.length < p + 1) return -1;
      csid = 64 + buf[p];
      p += 1;
    } else if (csid === 1) {
      if (buf.length < p + 2) return -1;
      csid = 64 + buf[p] + buf[p + 1] * 256;
      p += 2;
    }
    const headerLength = fmt === 0 ? 11 : fmt === 1 ? 7 : fmt === 2 ? 3 : 0;
    if (buf.length < p + headerLength) return -1;
    let state = this.#streams.get(csid);
    if (fmt !== 0 && state === undefined) {
      throw new RtmpProtocolError(
        `chunk stream ${csid} starts with a type ${fmt} chunk header; the first chunk of a stream must be type 0`,
      );
    }
    const field = fmt <= 2 ? (buf[p] << 16) | (buf[p + 1] << 8) | buf[p + 2] : 0;
    const extended = fmt === 3 ? state!.extended : field === EXTENDED;
    const afterHeader = p + headerLength + (extended ? 4 : 0);
    if (buf.length < afterHeader) return -1;
    const ext = extended ? readU32(buf, p + headerLength) : 0;

    if (fmt === 3 && state!.payload !== null) {
      // Continuation of the message in progress: the header carries nothing new (the extended timestamp,
      // when present, repeats the message's).
      this.#startChunk(csid, state!);
      return afterHeader;
    }
    if (state?.payload) {
      throw new RtmpProtocolError(
        `type ${fmt} chunk header on chunk stream ${csid} while its ${state.length}-byte message is ` +
          `${state.length - state.received} bytes short`,
      );
    }
    if (fmt === 0) {
      const length = (buf[p + 3] << 16) | (buf[p + 4] << 8) | buf[p + 5];
      const typeId = buf[p + 6];
      const streamId = (buf[p + 7] | (buf[p + 8] << 8) | (buf[p + 9] << 16) | (buf[p + 10] << 24)) >>> 0;
      const timestamp = extended ? ext : field;
      if (state === undefined) {
        state = {
          timestamp,
          delta: timestamp,
          length,
          typeId,
          streamId,
          extended,
          payload: null,
          received: 0,
        };
        this.#streams.set(csid, state);
      } else {
        Object.assign(state, { timestamp, delta: timestamp, length, typeId, streamId, extended });
      }
    } else {
      const s = state!;
      if (fmt === 1) {
        s.length = (buf[p + 3] << 16) | (buf[p + 4] << 8) | buf[p + 5];
        s.typeId = buf[p + 6];
      }
      if (fmt !== 3) {
        s.delta = extended ? ext : field;
        s.extended = extended;
      } else if (extended) {
        s.delta = ext;
      }
      s.timestamp = (s.timestamp + s.delta) >>> 0;
    }
    const s = state!;
    if (s.length > this.maxMessageSize) {
      throw new RtmpProtocolError(
        `message of ${s.length} bytes (type ${s.typeId}) on chunk stream ${csid} exceeds the ` +
          `${this.maxMessageSize}-byte limit${this.maxMessageSizeReason}`,
      );
    }
    if (s.length === 0) {
      this.#complete(csid, s, EMPTY);
      return afterHeader;
    }
    if (s.length <= this.#chunkSize && buf.length - afterHeader >= s.length) {
      // The whole message is in this read: hand out a view instead of copying it.
      this.#complete(csid, s, buf.subarray(afterHeader, afterHeader + s.length));
      return afterHeader + s.length;
    }
    if (this.#incompleteBytes + s.length > 2 * this.maxMessageSize) {
      throw new RtmpProtocolError(
        `${this.#incompleteBytes + s.length} bytes of incomplete messages across chunk streams exceed ` +
          `the ${2 * this.maxMessageSize}-byte limit`,
      );
    }
    this.#incompleteBytes += s.length;
    // Memory follows the bytes that arrive, not the length a header claims: a client announcing big messages
    // and sending nothing holds almost nothing.
    s.payload = EMPTY;
    s.received = 0;
    this.#grow(s, Math.min(s.length, FIRST_ALLOCATION));
    this.#startChunk(csid, s);
    return afterHeader;
  }

  #startChunk(csid: number, state: ChunkStreamState): void {
    this.#current = state;
    this.#currentCsid = csid;
    this.#chunkLeft = Math.min(this.#chunkSize, state.length - state.received);
  }

  /** The unfinished message's buffer, to at least `needed` bytes (doubling, at most its declared length). */
  #grow(state: ChunkStreamState, needed: number): void {
    const old = state.payload ?? EMPTY;
    const size = Math.min(state.length, Math.max(needed, old.length * 2));
    const budget = this.#budget;
    if (budget.used + size - old.length > budget.maxBytes) {
      throw new RtmpProtocolError(
        `unfinished messages of all connections would hold more than ${budget.maxBytes} bytes (rtmp.maxReassemblyBytes); this connection's ${state.length}-byte message is refused`,
      );
    }
    const next = new Uint8Array(size);
    next.set(old.subarray(0, state.received));
    budget.used += size - old.length;
    state.payload = next;
  }

  #free(state: ChunkStreamState): void {
    if (state.payload === null) return;
    this.#incompleteBytes -= state.length;
    this.#budget.used -= state.payload.length;
    state.payload = null;
    state.received = 0;
  }

  /** Gives back what unfinished messages hold (the connection is closing); nothing is read after it. */
  release(): void {
    this.#released = true;
    for (const state of this.#streams.values()) this.#free(state);
  }

  #complete(csid: number, state: ChunkStreamState, payload: Uint8Array): void {
    this.#free(state);
    const message: RtmpMessage = {
      csid,
      timestamp: state.timestamp,
      typeId: state.typeId,
      streamId: state.streamId,
      payload,
    };
    if (message.typeId === MessageType.SetChunkSize) this.#setChunkSize(payload);
    else if (message.typeId === MessageType.Abort) this.#abort(payload);
    this.#onMessage(message);
  }

  #setChunkSize(payload: Uint8Array): void {
    if (payload.length < 4) {
      throw new RtmpProtocolError(`Set Chunk Size message of ${payload.length} bytes, 4 expected`);
    }
    const size = readU32(payload, 0);
    if (size === 0 || size > MAX_CHUNK_SIZE) {
      throw new RtmpProtocolError(`Set Chunk Size ${size} is out of range (1 to ${MAX_CHUNK_SIZE})`);
    }
    this.#chunkSize = size;
  }

  /** §5.4.2: drop the partly received message of the named chunk stream. */
  #abort(payload: Uint8Array): void {
    if (payload.length < 4)
      throw new RtmpProtocolError(`Abort message of ${payload.length} bytes, 4 expected`);
    const state = this.#streams.get(readU32(payload, 0));
    if (state) this.#free(state);
  }
}

function readU32(b: Uint8Array, p: number): number {
  return ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
}

function basicHeaderLength(csid: number): number {
  if (csid < 2 || csid > MAX_CSID)
    throw new RangeError(`chunk stream id ${csid} is out of range 2..${MAX_CSID}`);
  return csid < 64 ? 1 : csid < 320 ? 2 : 3;
}

function writeBasicHeader(out: Uint8Array, p: number, fmt: number, csid: number): number {
  if (csid < 64) {
    out[p] = (fmt << 6) | csid;
    return p + 1;
  }
  if (csid < 320) {
    out[p] = fmt << 6;
    out[p + 1] = csid - 64;
    return p + 2;
  }
  out[p] = (fmt << 6) | 1;
  out[p + 1] = (csid - 64) & 0xff;
  out[p + 2] = (csid - 64) >> 8;
  return p + 3;
}

/** The header fields of one message to chunk; `payloadLength` is the sum of the parts. */
export interface ChunkHeader {
  readonly csid: number;
  readonly timestamp: number;
  readonly typeId: number;
  readonly streamId: number;
}

/**
 * Chunks one message whose payload is the concatenation of `parts`, copying each part once. `fmt` and
 * `field` (the timestamp, or the delta for types 1-3) come from the caller's header compression; the stateless
 * default is a type 0 header with the absolute timestamp.
 */
export function encodeChunks(
  header: ChunkHeader,
  parts: readonly Uint8Array[],
  chunkSize: number,
  fmt = 0,
  field = header.timestamp >>> 0,
): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  if (length > 0xffffff) throw new RangeError(`RTMP message of ${length} bytes exceeds the 24-bit length`);
  const basic = basicHeaderLength(header.csid);
  const ext = field >= EXTENDED ? 4 : 0;
  const headerLength = fmt === 0 ? 11 : fmt === 1 ? 7 : fmt === 2 ? 3 : 0;
  const chunks = Math.max(1, Math.ceil(length / chunkSize));
  const out = new Uint8Array(basic + headerLength + ext + length + (chunks - 1) * (basic + ext));
  let p = writeBasicHeader(out, 0, fmt, header.csid);
  if (fmt <= 2) {
    const ts = Math.min(field, EXTENDED);
    out[p] = ts >>> 16;
    out[p + 1] = ts >>> 8;
    out[p + 2] = ts;
    p += 3;
  }
  if (fmt <= 1) {
    out[p] = length >>> 16;
    out[p + 1] = length >>> 8;
    out[p + 2] = length;
    out[p + 3] = header.typeId;
    p += 4;
  }
  if (fmt === 0) {
    const id = header.streamId >>> 0;
    out[p] = id;
    out[p + 1] = id >>> 8;
    out[p + 2] = id >>> 16;
    out[p + 3] = id >>> 24;
    p += 4;
  }
  if (ext) p = writeU32(out, p, field);
  let inChunk = 0;
  for (const part of parts) {
    let q = 0;
    while (q < part.length) {
      if (inChunk === chunkSize) {
        p = writeBasicHeader(out, p, 3, header.csid);
        if (ext) p = writeU32(out, p, field);
        inChunk = 0;
      }
      const take = Math.min(chunkSize - inChunk, part.length - q);
      out.set(part.subarray(q, q + take), p);
      p += take;
      q += take;
      inChunk += take;
    }
  }
  return out;
}

function writeU32(out: Uint8Array, p: number, v: number): number {
  out[p] = v >>> 24;
  out[p + 1] = v >>> 16;
  out[p + 2] = v >>> 8;
  out[p + 3] = v;
  return p + 4;
}

interface WrittenHeader {
  timestamp: number;
  delta: number;
  length: number;
  typeId: number;
  streamId: number;
}

/**
 * Messages to chunks. With `compressHeaders` it picks the smallest header type the previous message on the same
 * chunk stream allows (types 1-3); without, every message starts with a type 0 header, so its bytes do not
 * depend on what was sent before and can be shared between connections. Writing a Set Chunk Size message
 * switches the writer to that size for what follows.
 */
export class ChunkWriter {
  chunkSize: number;
  readonly compressHeaders: boolean;
  readonly #previous = new Map<number, WrittenHeader>();

  constructor(options: { chunkSize?: number; compressHeaders?: boolean } = {}) {
    this.chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    this.compressHeaders = options.compressHeaders ?? false;
  }

  encode(message: RtmpMessage): Uint8Array {
    const timestamp = message.timestamp >>> 0;
    const length = message.payload.length;
    let fmt = 0;
    let field = timestamp;
    if (this.compressHeaders) {
      const prev = this.#previous.get(message.csid);
      if (prev && prev.streamId === message.streamId && timestamp >= prev.timestamp) {
        field = timestamp - prev.timestamp;
        if (prev.typeId === message.typeId && prev.length === length) fmt = field === prev.delta ? 3 : 2;
        else fmt = 1;
      }
      this.#previous.set(message.csid, {
        timestamp,
        delta: field,
        length,
        typeId: message.typeId,
        streamId: message.streamId,
      });
    }
    const bytes = encodeChunks(message, [message.payload], this.chunkSize, fmt, field);
    if (message.typeId === MessageType.SetChunkSize && length >= 4) {
      this.chunkSize = readU32(message.payload, 0);
    }
    return bytes;
  }
}
