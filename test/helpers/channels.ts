/** Real-socket clients of the messaging endpoints for tests: a WebSocket client and an SSE reader. */
import { type ClientRequest, get, type IncomingMessage } from 'node:http';
import { WebSocket } from 'ws';
import { waitFor } from './processes.ts';

export interface ChannelMessageView {
  id: number;
  channel: string;
  time: number;
  from: string;
  type: string;
  data: unknown;
}

export type ServerFrame = { event: string } & Record<string, unknown>;

/** A WebSocket on /ws/channels/… that records every server frame. */
export class WsChannelClient {
  readonly ws: WebSocket;
  readonly frames: ServerFrame[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  #ref = 0;

  constructor(url: string, options: { autoPong?: boolean } = {}) {
    this.ws = new WebSocket(url, { autoPong: options.autoPong ?? true });
    this.ws.on('message', (data: Buffer) => this.frames.push(JSON.parse(data.toString()) as ServerFrame));
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    this.closed = new Promise((resolve) =>
      this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    this.closed.catch(() => {});
    this.opened.catch(() => {});
  }

  send(frame: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(frame));
  }

  publish(channel: string, type: string, data: unknown): string {
    const ref = `r${++this.#ref}`;
    this.send({ op: 'publish', channel, type, data, ref });
    return ref;
  }

  messages(channel?: string): ChannelMessageView[] {
    return this.frames
      .filter((f) => f.event === 'message')
      .map((f) => f.message as ChannelMessageView)
      .filter((m) => channel === undefined || m.channel === channel);
  }

  ids(channel?: string): number[] {
    return this.messages(channel).map((m) => m.id);
  }

  events(name: string): ServerFrame[] {
    return this.frames.filter((f) => f.event === name);
  }

  async waitForFrame(
    what: string,
    check: (f: ServerFrame) => boolean,
    timeoutMs = 10_000,
  ): Promise<ServerFrame> {
    return (await waitFor(what, () => this.frames.find(check), timeoutMs))!;
  }

  async waitForIds(channel: string, count: number, timeoutMs = 10_000): Promise<number[]> {
    await waitFor(`${count} messages on ${channel}`, () => this.messages(channel).length >= count, timeoutMs);
    return this.ids(channel);
  }

  close(): void {
    this.ws.close();
  }
}

export async function openWs(url: string): Promise<WsChannelClient> {
  const client = new WsChannelClient(url);
  await client.opened;
  return client;
}

export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/** An SSE reader over a raw HTTP GET, parsing per WHATWG HTML §9.2.6 (enough for our server's output). */
export class SseReader {
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  retry: number | null = null;
  /** The stream ended or failed (the server closed it, or its node died): EventSource would reconnect. */
  ended = false;
  readonly response: Promise<IncomingMessage>;
  readonly request: ClientRequest;
  #buffer = '';

  constructor(url: string, headers: Record<string, string> = {}) {
    this.request = get(url, { headers: { accept: 'text/event-stream', ...headers } });
    this.response = new Promise((resolve, reject) => {
      this.request.once('response', (res) => {
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => this.#feed(chunk));
        res.on('error', () => {});
        res.on('close', () => {
          this.ended = true;
        });
        resolve(res);
      });
      this.request.once('error', (err) => {
        this.ended = true;
        reject(err);
      });
    });
    this.response.catch(() => {});
  }

  #feed(chunk: string): void {
    this.#buffer += chunk;
    for (let end = this.#buffer.indexOf('\n\n'); end !== -1; end = this.#buffer.indexOf('\n\n')) {
      const block = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 2);
      const event: SseEvent = { event: 'message', data: '' };
      let hasData = false;
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) {
          this.comments.push(line.slice(1).trim());
          continue;
        }
        const colon = line.indexOf(':');
        const name = colon === -1 ? line : line.slice(0, colon);
        const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (name === 'id') event.id = value;
        else if (name === 'event') event.event = value;
        else if (name === 'retry') this.retry = Number(value);
        else if (name === 'data') {
          event.data += (hasData ? '\n' : '') + value;
          hasData = true;
        }
      }
      if (hasData) this.events.push(event);
    }
  }

  /** What EventSource would hold as lastEventId now. */
  get lastEventId(): string {
    let id = '';
    for (const e of this.events) if (e.id !== undefined) id = e.id;
    return id;
  }

  messages(): ChannelMessageView[] {
    return this.events
      .filter((e) => e.event === 'message')
      .map((e) => JSON.parse(e.data) as ChannelMessageView);
  }

  close(): void {
    this.request.destroy();
  }
}

/** POST /api/v1/channels/{name}/messages; the status and parsed body. */
export async function httpPublish(
  base: string,
  channel: string,
  body: unknown,
  query = '',
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(`${base}/api/v1/channels/${channel}/messages${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

export function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i <= to; i++) out.push(i);
  return out;
}
