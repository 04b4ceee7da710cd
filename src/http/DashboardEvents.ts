import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ControlAccess } from '../auth/ControlAccess.ts';
import type { ConnectionsPerIp } from '../core/ConnectionsPerIp.ts';
import type { StreamRegistry } from '../core/StreamRegistry.ts';
import { describeStream } from './describe.ts';
import { EventStream } from './EventStream.ts';

const KEEP_ALIVE = ': keep-alive\n\n';

/**
 * `GET /api/v1/events`, Server-Sent Events for the dashboard: the whole stream list whenever something
 * changes (at most every 250 ms) and every 2 s while streams are live, so bitrate and viewers stay current.
 * Each event is encoded once for every reader; a reader that stops reading is cut off at `maxBacklogBytes`
 * (EventStream), and each address may hold a bounded number of these streams.
 */
export class DashboardEvents {
  readonly #registry: StreamRegistry;
  readonly #maxBacklogBytes: number;
  readonly #perIp: ConnectionsPerIp;
  readonly #readers = new Set<EventStream>();
  /** Readers allowed the control API's view (publishers' addresses); the rest get the public one. */
  readonly #controlReaders = new WeakSet<EventStream>();
  readonly #control: ControlAccess;
  readonly #tick: NodeJS.Timeout;
  #pending: NodeJS.Timeout | null = null;
  /** Readers cut off for not reading. */
  cutOff = 0;
  readonly #schedule = () => {
    if (!this.#pending && this.#readers.size > 0) this.#pending = setTimeout(() => this.#broadcast(), 250);
  };

  constructor(options: {
    registry: StreamRegistry;
    control: ControlAccess;
    maxBacklogBytes: number;
    perIp: ConnectionsPerIp;
  }) {
    this.#registry = options.registry;
    this.#control = options.control;
    this.#maxBacklogBytes = options.maxBacklogBytes;
    this.#perIp = options.perIp;
    for (const name of ['published', 'unpublished', 'changed', 'removed'] as const)
      this.#registry.on(name, this.#schedule);
    this.#tick = setInterval(() => {
      if (this.#readers.size === 0) return;
      if (this.#registry.live().length > 0) this.#broadcast();
      else for (const reader of this.#readers) this.#write(reader, KEEP_ALIVE);
    }, 2000);
    this.#tick.unref();
  }

  get connections(): number {
    return this.#readers.size;
  }

  handle(request: FastifyRequest, reply: FastifyReply): void {
    const release = this.#perIp.admit(request.socket.remoteAddress ?? '');
    reply.hijack();
    const reader = new EventStream(reply.raw, this.#maxBacklogBytes);
    // Same-origin only (the dashboard page): no CORS header, as for the rest of the control API.
    reader.open({});
    this.#readers.add(reader);
    const withAddress = this.#control.allows(request);
    if (withAddress) this.#controlReaders.add(reader);
    reply.raw.on('close', () => {
      this.#readers.delete(reader);
      release();
    });
    this.#write(reader, `retry: 2000\n${this.#event(withAddress)}`);
  }

  close(): void {
    clearInterval(this.#tick);
    if (this.#pending) clearTimeout(this.#pending);
    for (const name of ['published', 'unpublished', 'changed', 'removed'] as const)
      this.#registry.off(name, this.#schedule);
    for (const reader of this.#readers) reader.end();
  }

  #event(withAddress: boolean): string {
    const streams = this.#registry.live().map((s) => describeStream(s, withAddress));
    return `event: streams\ndata: ${JSON.stringify({ streams })}\n\n`;
  }

  /** Each view encoded at most once per broadcast, whatever the number of readers. */
  #broadcast(): void {
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
  }

  #write(reader: EventStream, chunk: string): void {
    if (!reader.write(chunk) && reader.cutOff) {
      this.#readers.delete(reader);
      this.cutOff++;
    }
  }
}
