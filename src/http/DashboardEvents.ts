import type { FastifyReply, FastifyRequest } from 'fastify';
import type { StreamRegistry } from '../core/StreamRegistry.ts';
import type { ConnectionsPerIp } from './ConnectionsPerIp.ts';
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
  readonly #tick: NodeJS.Timeout;
  #pending: NodeJS.Timeout | null = null;
  /** Readers cut off for not reading. */
  cutOff = 0;
  readonly #schedule = () => {
    if (!this.#pending && this.#readers.size > 0) this.#pending = setTimeout(() => this.#broadcast(), 250);
  };

  constructor(options: { registry: StreamRegistry; maxBacklogBytes: number; perIp: ConnectionsPerIp }) {
    this.#registry = options.registry;
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
    reader.open({ 'access-control-allow-origin': '*' });
    this.#readers.add(reader);
    reply.raw.on('close', () => {
      this.#readers.delete(reader);
      release();
    });
    this.#write(reader, `retry: 2000\n${this.#event()}`);
  }

  close(): void {
    clearInterval(this.#tick);
    if (this.#pending) clearTimeout(this.#pending);
    for (const name of ['published', 'unpublished', 'changed', 'removed'] as const)
      this.#registry.off(name, this.#schedule);
    for (const reader of this.#readers) reader.end();
  }

  #event(): string {
    return `event: streams\ndata: ${JSON.stringify({ streams: this.#registry.live().map(describeStream) })}\n\n`;
  }

  #broadcast(): void {
    this.#pending = null;
    const event = this.#event();
    for (const reader of this.#readers) this.#write(reader, event);
  }

  #write(reader: EventStream, chunk: string): void {
    if (!reader.write(chunk) && reader.cutOff) {
      this.#readers.delete(reader);
      this.cutOff++;
    }
  }
}
