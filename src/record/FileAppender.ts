import { type FileHandle, mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Bytes queued but not yet written past which a file is given up (the disk stopped keeping up). */
const MAX_QUEUED_BYTES = 32 * 1024 * 1024;

export class AppendError extends Error {
  readonly file: string;
  /** The errno code (ENOSPC, EIO, EACCES …), or EBACKLOG when writes stopped keeping up. */
  readonly code: string;
  constructor(file: string, code: string, message: string) {
    super(message);
    this.file = file;
    this.code = code;
  }
}

/**
 * Appends chunks to a new file in order, off the media path: `append` only queues, one writev at a time
 * drains the queue, so the publisher's input never waits on the disk. A chunk is written whole or the file
 * is given up at it; what reached the file before stays a valid prefix.
 */
export class FileAppender {
  readonly file: string;
  /** Bytes the file holds (written and acknowledged). */
  written = 0;
  #handle: FileHandle | null = null;
  #opening: Promise<void>;
  #queue: Uint8Array[] = [];
  #queuedBytes = 0;
  #flushing: Promise<void> | null = null;
  #failed: AppendError | null = null;
  readonly #onError: (error: AppendError) => void;
  readonly #onWritten: (bytes: number) => void;

  constructor(file: string, onError: (error: AppendError) => void, onWritten: (bytes: number) => void) {
    this.file = file;
    this.#onError = onError;
    this.#onWritten = onWritten;
    // wx: a file of that name is never overwritten.
    this.#opening = mkdir(dirname(file), { recursive: true })
      .then(() => open(file, 'wx'))
      .then(
        (handle) => {
          this.#handle = handle;
          this.#kick();
        },
        (err: NodeJS.ErrnoException) => this.#fail(err),
      );
  }

  get failed(): boolean {
    return this.#failed !== null;
  }

  append(chunk: Uint8Array): void {
    if (this.#failed) return;
    this.#queue.push(chunk);
    this.#queuedBytes += chunk.byteLength;
    if (this.#queuedBytes > MAX_QUEUED_BYTES) {
      this.#fail(
        Object.assign(new Error(`${this.#queuedBytes} bytes waiting to be written`), { code: 'EBACKLOG' }),
      );
      return;
    }
    this.#kick();
  }

  /** Writes what is queued, then `patch` bytes at `position` (the finished duration), flushes and closes. */
  async close(patch?: { position: number; bytes: Uint8Array }): Promise<void> {
    await this.#opening;
    while (this.#flushing) await this.#flushing;
    const handle = this.#handle;
    this.#handle = null;
    if (!handle) return;
    try {
      if (!this.#failed && patch) await handle.write(patch.bytes, 0, patch.bytes.byteLength, patch.position);
      if (!this.#failed) await handle.sync();
    } catch (err) {
      this.#fail(err as NodeJS.ErrnoException);
    } finally {
      await handle.close().catch(() => {});
    }
  }

  #kick(): void {
    if (this.#flushing || !this.#handle || this.#queue.length === 0 || this.#failed) return;
    this.#flushing = this.#drain().finally(() => {
      this.#flushing = null;
      this.#kick();
    });
  }

  async #drain(): Promise<void> {
    const handle = this.#handle;
    if (!handle) return;
    const batch = this.#queue;
    const bytes = this.#queuedBytes;
    this.#queue = [];
    this.#queuedBytes = 0;
    try {
      let done = 0;
      let pending = batch;
      // writev may write less than asked (a full disk, a signal); the rest is written after what was.
      while (done < bytes) {
        const { bytesWritten } = await handle.writev(pending, this.written);
        if (bytesWritten === 0) throw Object.assign(new Error('wrote 0 bytes'), { code: 'EIO' });
        this.written += bytesWritten;
        done += bytesWritten;
        this.#onWritten(bytesWritten);
        pending = rest(pending, bytesWritten);
      }
    } catch (err) {
      this.#fail(err as NodeJS.ErrnoException);
    }
  }

  #fail(err: NodeJS.ErrnoException): void {
    if (this.#failed) return;
    this.#failed = new AppendError(this.file, err.code ?? 'EIO', err.message);
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#onError(this.#failed);
  }
}

function rest(chunks: Uint8Array[], skip: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const c of chunks) {
    if (skip >= c.byteLength) {
      skip -= c.byteLength;
      continue;
    }
    out.push(skip > 0 ? c.subarray(skip) : c);
    skip = 0;
  }
  return out;
}
