type Operation =
  | { kind: 'append'; data: ArrayBuffer }
  | { kind: 'remove'; start: number; end: number }
  | { kind: 'changeType'; mimeType: string };

export interface SourceBufferQueueHooks {
  /** The queue cannot go on (append rejected, decode error, overflow); it is disposed already. */
  onError(message: string): void;
  /** The browser's buffer is full: return a range to remove before retrying, or null if nothing can go. */
  onQuotaExceeded(): { start: number; end: number } | null;
}

/** More than this much media waiting for the SourceBuffer means the browser cannot keep up. */
const MAX_QUEUED_BYTES = 32 * 1024 * 1024;
const MAX_QUOTA_RETRIES = 3;

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/**
 * Serialises work on one SourceBuffer: a SourceBuffer accepts one append or remove at a time, so operations
 * wait in order and the next starts on `updateend`.
 */
export class SourceBufferQueue {
  readonly sourceBuffer: SourceBuffer;
  readonly #hooks: SourceBufferQueueHooks;
  #operations: Operation[] = [];
  #queuedBytes = 0;
  #quotaRetries = 0;
  #disposed = false;

  constructor(sourceBuffer: SourceBuffer, hooks: SourceBufferQueueHooks) {
    this.sourceBuffer = sourceBuffer;
    this.#hooks = hooks;
    sourceBuffer.addEventListener('updateend', this.#pump);
    sourceBuffer.addEventListener('error', this.#onError);
  }

  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  get removing(): boolean {
    return this.#operations.some((op) => op.kind === 'remove');
  }

  append(data: ArrayBuffer): void {
    if (this.#disposed) return;
    this.#queuedBytes += data.byteLength;
    if (this.#queuedBytes > MAX_QUEUED_BYTES) {
      this.#fail(`the browser fell behind appending media (${this.#queuedBytes} bytes queued)`);
      return;
    }
    this.#operations.push({ kind: 'append', data });
    this.#pump();
  }

  /** Switches the SourceBuffer to another codec configuration (MSE §3.2 changeType) before what follows. */
  changeType(mimeType: string): void {
    if (this.#disposed) return;
    this.#operations.push({ kind: 'changeType', mimeType });
    this.#pump();
  }

  remove(start: number, end: number): void {
    if (this.#disposed || !(end > start)) return;
    this.#operations.push({ kind: 'remove', start, end });
    this.#pump();
  }

  dispose(): void {
    this.#disposed = true;
    this.#operations = [];
    this.#queuedBytes = 0;
    this.sourceBuffer.removeEventListener('updateend', this.#pump);
    this.sourceBuffer.removeEventListener('error', this.#onError);
  }

  #pump = (): void => {
    if (this.#disposed || this.sourceBuffer.updating) return;
    const op = this.#operations[0];
    if (!op) return;
    try {
      if (op.kind === 'append') this.sourceBuffer.appendBuffer(op.data);
      else if (op.kind === 'remove') this.sourceBuffer.remove(op.start, op.end);
      else this.sourceBuffer.changeType(op.mimeType);
    } catch (error) {
      if (op.kind === 'append' && error instanceof DOMException && error.name === 'QuotaExceededError') {
        const range = this.#quotaRetries < MAX_QUOTA_RETRIES ? this.#hooks.onQuotaExceeded() : null;
        if (range && range.end > range.start) {
          this.#quotaRetries++;
          this.#operations.unshift({ kind: 'remove', start: range.start, end: range.end });
          this.#pump();
          return;
        }
      }
      this.#fail(`${op.kind === 'append' ? 'appendBuffer' : op.kind} failed: ${describe(error)}`);
      return;
    }
    this.#operations.shift();
    if (op.kind === 'append') {
      this.#queuedBytes -= op.data.byteLength;
      this.#quotaRetries = 0;
    }
    // changeType is synchronous and fires no updateend: go on to what follows it.
    if (op.kind === 'changeType') this.#pump();
  };

  #onError = (): void => {
    // The media could not be parsed or decoded; the MediaSource has ended itself (MSE §3.5.7 append error).
    this.#fail('the browser could not parse or decode the appended media');
  };

  #fail(message: string): void {
    if (this.#disposed) return;
    this.dispose();
    this.#hooks.onError(message);
  }
}
