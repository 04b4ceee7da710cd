import type { IncomingMessage, ServerResponse } from 'node:http';
import { describeStream } from '../core/describe.ts';
import type { StreamRegistry } from '../core/StreamRegistry.ts';

const REGISTRY_EVENTS = ['published', 'unpublished', 'changed', 'removed'] as const;
/** Changes closer together than this are sent as one list. */
const COALESCE_MS = 250;
/** While streams are live the list is resent this often, so bitrate and viewers stay current. */
const REFRESH_MS = 2000;

/**
 * The dashboard's Server-Sent Events feed (`GET /api/v1/events`): the whole stream list whenever something
 * changes and every 2 s while streams are live. The refresh timer runs only while a dashboard is connected.
 */
export class StreamListEvents {
  readonly #registry: StreamRegistry;
  readonly #clients = new Set<ServerResponse>();
  #pending: NodeJS.Timeout | null = null;
  #refresh: NodeJS.Timeout | null = null;
  #closed = false;
  readonly #schedule = () => {
    if (!this.#pending && this.#clients.size > 0) this.#pending = setTimeout(this.#broadcast, COALESCE_MS);
  };
  readonly #broadcast = () => {
    this.#pending = null;
    const event = this.#event();
    for (const client of this.#clients) client.write(event);
  };

  constructor(registry: StreamRegistry) {
    this.#registry = registry;
    for (const name of REGISTRY_EVENTS) registry.on(name, this.#schedule);
  }

  get clients(): number {
    return this.#clients.size;
  }

  /** Takes over `response` and keeps it open as an event stream until the client goes away or close(). */
  serve(request: IncomingMessage, response: ServerResponse): void {
    if (this.#closed) {
      response.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"server is closing"}');
      return;
    }
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      'access-control-allow-origin': '*',
    });
    response.write(`retry: ${REFRESH_MS}\n${this.#event()}`);
    this.#clients.add(response);
    this.#refresh ??= setInterval(() => {
      if (this.#registry.live().length > 0) this.#broadcast();
      else for (const client of this.#clients) client.write(': keep-alive\n\n');
    }, REFRESH_MS);
    request.on('close', () => this.#drop(response));
  }

  /** Ends every dashboard's stream and stops listening to the registry. Safe to call more than once. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const name of REGISTRY_EVENTS) this.#registry.off(name, this.#schedule);
    for (const client of [...this.#clients]) {
      this.#drop(client);
      client.end();
    }
  }

  #drop(client: ServerResponse): void {
    this.#clients.delete(client);
    if (this.#clients.size > 0) return;
    if (this.#refresh) clearInterval(this.#refresh);
    if (this.#pending) clearTimeout(this.#pending);
    this.#refresh = null;
    this.#pending = null;
  }

  #event(): string {
    return `event: streams\ndata: ${JSON.stringify({ streams: this.#registry.live().map(describeStream) })}\n\n`;
  }
}
