import type { ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { EventStream } from '../../transport/EventStream.ts';
import { channelFromUrlPath, InvalidChannelError } from '../ChannelName.ts';
import type { Identity } from '../ChannelPolicy.ts';
import { ChannelSession, type ConnectionSink } from '../ChannelSession.ts';
import type { PresenceFrame, StoredMessage } from '../Message.ts';
import type { Messaging } from '../Messaging.ts';
import { MessagingError, parseSince, type ServerEvent } from '../protocol.ts';

const HEARTBEAT = Buffer.from(': heartbeat\n\n');

/** Control events as SSE blocks; each carries the id the client holds after it, so Last-Event-ID is right. */
function sseControl(event: ServerEvent, idLine: string): string | null {
  switch (event.event) {
    case 'subscribed':
      return `id: ${event.position}\nevent: subscribed\ndata: ${JSON.stringify(event)}\n\n`;
    case 'gap':
      return `id: ${event.resumeFrom}\nevent: gap\ndata: ${JSON.stringify(event)}\n\n`;
    case 'hello':
      return `${idLine}event: hello\ndata: ${JSON.stringify(event)}\n\n`;
    case 'error':
      // Not "error": EventSource fires that name for its own connection failures.
      return `${idLine}event: refused\ndata: ${JSON.stringify(event)}\n\n`;
    default:
      return null;
  }
}

class SseSink implements ConnectionSink {
  readonly transport = 'sse';
  readonly #stream: EventStream;
  /** The id this client holds (what its Last-Event-ID would be), for events that carry no id of their own. */
  #at: number | undefined;

  constructor(stream: EventStream, since: number | undefined) {
    this.#stream = stream;
    this.#at = since;
  }

  /** `id: N` for an event without its own id; nothing before the client holds any position. */
  #idLine(): string {
    return this.#at === undefined ? '' : `id: ${this.#at}\n`;
  }

  // A reader too slow is cut off by the EventStream; EventSource reconnects with Last-Event-ID and catches up
  // from the history.
  #write(chunk: Buffer | string): void {
    this.#stream.write(chunk);
  }

  message(message: StoredMessage): void {
    this.#at = message.id;
    this.#write(message.sseEvent);
  }

  presence(presence: PresenceFrame): void {
    this.#write(this.#idLine());
    this.#write(presence.sseEventBody);
  }

  event(event: ServerEvent): void {
    if (event.event === 'subscribed') this.#at = event.position;
    else if (event.event === 'gap') this.#at = event.resumeFrom;
    const text = sseControl(event, this.#idLine());
    if (text) this.#write(text);
  }

  heartbeat(): void {
    this.#write(HEARTBEAT);
  }

  /** EventSource reconnects after `retry:` with Last-Event-ID, which resumes the stream once the bus is back. */
  retryLater(_reason: string): void {
    this.#stream.end();
  }
}

/**
 * `GET /sse/channels/{name}` — Server-Sent Events (WHATWG HTML §9.2): `id:` on every event, `event:` names
 * (`subscribed`, `message`, `gap`, `presence`), `retry:`, resume from the `Last-Event-ID` header (what
 * EventSource sends when it reconnects by itself) or else `?since=`. Publishing is `POST
 * /api/v1/channels/{name}/messages`.
 */
export class SseChannelEndpoint {
  readonly #messaging: Messaging;
  readonly #corsOrigin: string;
  readonly #sinks = new Set<SseSink>();
  readonly #heartbeat: NodeJS.Timeout;
  readonly #open = new Set<ServerResponse>();

  constructor(messaging: Messaging, corsOrigin: string) {
    this.#messaging = messaging;
    this.#corsOrigin = corsOrigin;
    this.#heartbeat = setInterval(() => {
      for (const sink of this.#sinks) sink.heartbeat();
    }, messaging.config.sseHeartbeatMs);
    this.#heartbeat.unref();
  }

  get connections(): number {
    return this.#sinks.size;
  }

  /** `rawName` is what follows `/sse/channels/` in the URL path. */
  async handle(request: FastifyRequest, reply: FastifyReply, rawName: string): Promise<void> {
    const messaging = this.#messaging;
    const remoteAddress = request.socket.remoteAddress ?? '';
    const query = new URLSearchParams(request.url.split('?')[1] ?? '');
    let channel: string;
    let since: number | undefined;
    let release: () => void;
    let identity: Identity;
    try {
      channel = channelFromUrlPath(rawName);
      const lastEventId = request.headers['last-event-id'];
      // EventSource keeps the original URL on reconnect, so its Last-Event-ID must win over ?since=.
      since =
        lastEventId !== undefined && lastEventId !== ''
          ? parseSince(String(lastEventId).trim(), 'Last-Event-ID')
          : parseSince(query.get('since') ?? undefined, '?since=');
      const identified = await messaging.identities.identify({
        headers: request.headers,
        remoteAddress,
        query,
      });
      if ('refused' in identified) {
        reply.status(401).send({ error: identified.refused });
        return;
      }
      identity = identified;
      messaging.authorize(identity, channel, 'subscribe');
      release = messaging.admit(remoteAddress);
    } catch (err) {
      if (err instanceof InvalidChannelError) {
        reply.status(400).send({ error: err.message });
        return;
      }
      if (err instanceof MessagingError) {
        if (err.retryAfterMs) reply.header('retry-after', Math.ceil(err.retryAfterMs / 1000));
        reply.status(err.status).send({ error: err.message });
        return;
      }
      throw err;
    }
    reply.hijack();
    const res = reply.raw;
    const stream = new EventStream(res, messaging.config.maxBacklogBytes);
    stream.open({ 'access-control-allow-origin': this.#corsOrigin });
    stream.write(`retry: ${messaging.config.sseRetryMs}\n\n`);
    const sink = new SseSink(stream, since);
    const session = new ChannelSession(messaging, sink, identity, remoteAddress);
    this.#sinks.add(sink);
    this.#open.add(res);
    res.on('close', () => {
      session.close();
      this.#sinks.delete(sink);
      this.#open.delete(res);
      release();
    });
    await session.subscribe(channel, since);
  }

  close(): void {
    clearInterval(this.#heartbeat);
    for (const res of this.#open) res.end();
  }

  /** Ends every open stream (their EventSources reconnect with Last-Event-ID). */
  dropAll(): number {
    const n = this.#open.size;
    for (const res of this.#open) res.end();
    return n;
  }
}
