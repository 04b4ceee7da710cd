import type { IncomingMessage, ServerResponse } from 'node:http';
import { describeStream } from '../core/describe.ts';
import type { Stream } from '../core/Stream.ts';
import type { StreamRegistry } from '../core/StreamRegistry.ts';
import { EventStream } from '../transport/EventStream.ts';

const REGISTRY_EVENTS = ['published', 'unpublished', 'changed', 'removed'] as const;
/** Changes closer together than this are sent as one list. */
const COALESCE_MS = 250;
/** While streams are live the list is resent this often, so bitrate and viewers stay current. */
const REFRESH_MS = 2000;
const KEEP_ALIVE = ': keep-alive\n\n';

/**
 * The dashboard's Server-Sent Events feed (`GET /api/v1/events`): the whole stream list whenever something
 * changes and every 2 s while streams are live. Each view (public, or with publishers' addresses for control-API
 * callers) is encoded once per broadcast for every reader; a reader that stops reading is cut off at
 * `maxBacklogBytes` (EventStream). The refresh timer runs only while a dashboard is connected.
 */
export class StreamListEvents {
  readonly #registry: StreamRegistry;
  readonly #describe: (stream: Stream, withAddresses: boolean) => object;
  readonly #maxBacklogBytes: number;
  readonly #readers = new Set<EventStream>();
  /** Readers allowed the control API's view (publishers' addresses); the rest get the public one. */
  readonly #controlReaders = new WeakSet<EventStream>();
  #pending: NodeJS.Timeout | null = null;
  #refresh: NodeJS.Timeout | null = null;
  #closed = false;
  /** Readers cut off for not reading. */
  cutOff = 0;
  readonly #schedule = () => {
    if (!this.#pending && this.#readers.size > 0) this.#pending = setTimeout(this.#broadcast, COALESCE_MS);
  };
  readonly #broadcast = () => {
    this.#pending = null;
    let publicEvent: string | null = null;
    let controlEvent: string | null = null;
    for (const reader of this.#readers) {
      if (this.#controlReaders.has(reader)) {
        controlEvent ??= this.#event(true);
        this.#write(reader, controlEvent);
      } else {
        publicEvent ??= this.#event(false);
        this.#write(reader, publicEvent);
      }
    }
  };

  constructor(
    registry: StreamRegistry,
    options: {
      maxBacklogBytes: number;
      /** How a stream is shown (the control API's shape; a cluster adds its viewers on every node). */
      describe?: (stream: Stream, withAddresses: boolean) => object;
    },
  ) {
    this.#registry = registry;
    this.#describe = options.describe ?? describeStream;
    this.#maxBacklogBytes = options.maxBacklogBytes;
    for (const name of REGISTRY_EVENTS) registry.on(name, this.#schedule);
  }

  get clients(): number {
    return this.#readers.size;
  }

  /**
   * Takes over `response` and keeps it open as an event stream until the client goes away or close().
   * `withAddresses`: the reader may see publishers' addresses (a control-API caller). `onEnd` runs once when it
   * goes (a per-IP admission's release).
   */
  serve(
    request: IncomingMessage,
    response: ServerResponse,
    options: { withAddresses?: boolean; onEnd?: () => void } = {},
  ): void {
    if (this.#closed) {
      options.onEnd?.();
      response.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"server is closing"}');
      return;
    }
    const reader = new EventStream(response, this.#maxBacklogBytes);
    // Same-origin only (the dashboard page): no CORS header, as for the rest of the control API.
    reader.open({});
    this.#readers.add(reader);
    const withAddresses = options.withAddresses ?? false;
    if (withAddresses) this.#controlReaders.add(reader);
    this.#write(reader, `retry: ${REFRESH_MS}\n${this.#event(withAddresses)}`);
    this.#refresh ??= setInterval(() => {
      if (this.#registry.live().length > 0) this.#broadcast();
      else for (const r of this.#readers) this.#write(r, KEEP_ALIVE);
    }, REFRESH_MS);
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      this.#drop(reader);
      options.onEnd?.();
    };
    request.on('close', end);
    response.on('close', end);
  }

  /** Ends every dashboard's stream and stops listening to the registry. Safe to call more than once. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const name of REGISTRY_EVENTS) this.#registry.off(name, this.#schedule);
    for (const reader of [...this.#readers]) {
      this.#drop(reader);
      reader.end();
    }
  }

  #drop(reader: EventStream): void {
    this.#readers.delete(reader);
    if (this.#readers.size > 0) return;
    if (this.#refresh) clearInterval(this.#refresh);
    if (this.#pending) clearTimeout(this.#pending);
    this.#refresh = null;
    this.#pending = null;
  }

  #event(withAddresses: boolean): string {
    const streams = this.#registry.live().map((s) => this.#describe(s, withAddresses));
    return `event: streams\ndata: ${JSON.stringify({ streams })}\n\n`;
  }

  #write(reader: EventStream, chunk: string): void {
    if (!reader.write(chunk) && reader.cutOff) {
      this.cutOff++;
      this.#drop(reader);
    }
  }
}
