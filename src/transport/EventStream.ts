import type { ServerResponse } from 'node:http';

/**
 * One Server-Sent Events response (WHATWG HTML §9.2) with a bounded backlog: every server-push path writes
 * through it. A reader whose unsent bytes pass `maxBacklogBytes` is cut off (the response destroyed, not
 * ended: an end would queue behind the backlog), as media viewers are; EventSource then reconnects on its own
 * and the stream restarts from the current state (or, for channels, from Last-Event-ID).
 */
export class EventStream {
  readonly res: ServerResponse;
  readonly #maxBacklogBytes: number;
  #cutOff = false;

  constructor(res: ServerResponse, maxBacklogBytes: number) {
    this.res = res;
    this.#maxBacklogBytes = maxBacklogBytes;
  }

  /** Sends the SSE headers (plus `headers`: CORS, …) and keeps the socket from delaying small events. */
  open(headers: Record<string, string>): void {
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      // nginx buffers proxied responses unless told not to, which would hold events back.
      'x-accel-buffering': 'no',
      ...headers,
    });
    this.res.socket?.setNoDelay(true);
  }

  /** Whether this reader was cut off for being too slow. */
  get cutOff(): boolean {
    return this.#cutOff;
  }

  get closed(): boolean {
    return this.res.writableEnded || this.res.destroyed;
  }

  /** Writes `chunk`, or cuts the reader off when its backlog is past the bound; false when nothing was written. */
  write(chunk: Buffer | string): boolean {
    if (this.closed) return false;
    if (this.res.writableLength > this.#maxBacklogBytes) {
      this.#cutOff = true;
      this.res.destroy();
      return false;
    }
    this.res.write(chunk);
    return true;
  }

  end(): void {
    if (!this.closed) this.res.end();
  }
}
