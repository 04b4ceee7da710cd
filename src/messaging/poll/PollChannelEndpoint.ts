import type { FastifyReply, FastifyRequest } from 'fastify';
import type { HubSubscriber } from '../ChannelHub.ts';
import { channelFromUrlPath, InvalidChannelError } from '../ChannelName.ts';
import type { GapEvent, PresenceFrame, StoredMessage } from '../Message.ts';
import type { Messaging } from '../Messaging.ts';
import { MessagingError, parseSince } from '../protocol.ts';

/**
 * The answer body: `{"channel":…,"last":N,"gap":…,"messages":[…]}` built from each message's JSON text, so
 * nothing is serialized again. `last` is the `since` of the next poll.
 */
function answerBody(
  channel: string,
  last: number,
  gap: GapEvent | null,
  messages: readonly StoredMessage[],
): string {
  let body = `{"channel":${JSON.stringify(channel)},"last":${last}`;
  if (gap) body += `,"gap":${JSON.stringify(gap)}`;
  body += ',"messages":[';
  for (let i = 0; i < messages.length; i++) body += (i ? ',' : '') + messages[i].json;
  return `${body}]}`;
}

/** The common answer — one new message to every poller that was waiting right before it — built once. */
const singleAnswers = new WeakMap<StoredMessage, string>();
function singleAnswer(message: StoredMessage): string {
  let body = singleAnswers.get(message);
  if (!body) {
    body = answerBody(message.channel, message.id, null, [message]);
    singleAnswers.set(message, body);
  }
  return body;
}

/** A held poll, waiting for the channel's next message. */
class PollWaiter implements HubSubscriber {
  readonly channel: string;
  readonly transport = 'poll';
  /** Presence counts the polling client (PollChannelEndpoint.#markPresent), not each of its requests. */
  readonly counted = false;
  readonly received: StoredMessage[] = [];
  /** Called once, on the turn after the first message (so a burst goes out in one answer). */
  onMessage: (() => void) | null = null;
  #scheduled = false;

  constructor(channel: string) {
    this.channel = channel;
  }

  offer(message: StoredMessage): void {
    this.received.push(message);
    if (this.#scheduled || !this.onMessage) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.onMessage?.();
    });
  }

  offerPresence(_presence: PresenceFrame): void {}

  /** The bus lost ids up to `gap.resumeFrom`: the held poll answers with the gap. */
  gap: GapEvent | null = null;

  offerGap(gap: GapEvent): void {
    this.gap = gap;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.onMessage?.();
    });
  }
}

/**
 * `GET /poll/channels/{name}?since=N[&timeout=ms]`: answers at once with what is newer than N (or a gap),
 * else holds the request up to messaging.pollTimeoutMs and answers with the next messages or an empty list.
 * Without `since` it waits for the next message. For clients where nothing else gets through.
 */
/** A long-polling client as presence sees it: present while it keeps polling. */
interface PollPresence {
  readonly member: HubSubscriber;
  readonly timer: NodeJS.Timeout;
}

/** Bounds the presence bookkeeping whatever clients do (e.g. poll without their identity token). */
const MAX_PRESENT_POLLERS = 10_000;

export class PollChannelEndpoint {
  readonly #messaging: Messaging;
  readonly #held = new Set<() => void>();
  readonly #present = new Map<string, PollPresence>();

  constructor(messaging: Messaging) {
    this.#messaging = messaging;
  }

  get held(): number {
    return this.#held.size;
  }

  async handle(request: FastifyRequest, reply: FastifyReply, rawName: string): Promise<FastifyReply> {
    const messaging = this.#messaging;
    const remoteAddress = request.socket.remoteAddress ?? '';
    const query = new URLSearchParams(request.url.split('?')[1] ?? '');
    reply.header('cache-control', 'no-store').header('content-type', 'application/json; charset=utf-8');
    let channel: string;
    let since: number | undefined;
    let timeoutMs = messaging.config.pollTimeoutMs;
    try {
      channel = channelFromUrlPath(rawName);
      since = parseSince(query.get('since') ?? undefined, '?since=');
      const timeout = parseSince(query.get('timeout') ?? undefined, '?timeout=');
      if (timeout !== undefined) timeoutMs = Math.min(timeout, timeoutMs);
      const identity = await messaging.identities.identify({
        headers: request.headers,
        remoteAddress,
        query,
      });
      if ('refused' in identity) return reply.status(401).send({ error: identity.refused });
      if (identity.token) {
        reply.header('x-subsecond-identity', identity.token);
        reply.header('access-control-expose-headers', 'x-subsecond-identity');
      }
      messaging.authorize(identity, channel, 'subscribe');
      this.#markPresent(channel, identity.id);
    } catch (err) {
      if (err instanceof InvalidChannelError) return reply.status(400).send({ error: err.message });
      if (err instanceof MessagingError) return reply.status(err.status).send({ error: err.message });
      throw err;
    }

    // Listen before looking at the history so that nothing published in between is missed.
    const waiter = new PollWaiter(channel);
    try {
      messaging.hub.add(waiter);
    } catch (err) {
      if (err instanceof MessagingError) return reply.status(err.status).send({ error: err.message });
      throw err;
    }
    let release: (() => void) | null = null;
    try {
      const replay = await messaging.bus.replay(channel, since);
      const position = replay.gap ? replay.gap.resumeFrom : (since ?? replay.lastId);
      const fresh = waiter.received.filter((m) => m.id > replay.lastId);
      if (replay.messages.length > 0 || replay.gap || fresh.length > 0) {
        const messages = [...replay.messages, ...fresh];
        const last = messages.length ? messages[messages.length - 1].id : position;
        return reply.send(answerBody(channel, last, replay.gap, messages));
      }
      try {
        release = messaging.admit(remoteAddress);
      } catch (err) {
        const refusal = err as MessagingError;
        return reply.status(refusal.status).send({ error: refusal.message });
      }
      const body = await new Promise<string | null>((resolve) => {
        const finish = (value: string | null) => {
          clearTimeout(timer);
          this.#held.delete(cancel);
          waiter.onMessage = null;
          reply.raw.off('close', onClose);
          resolve(value);
        };
        const cancel = () => finish(answerBody(channel, position, null, []));
        const onClose = () => finish(null);
        const timer = setTimeout(cancel, timeoutMs);
        this.#held.add(cancel);
        // The client gave up (or the socket died): stop holding, nothing to answer. The response's close, not
        // the request's: a request stream may close as soon as its (empty) body is read.
        reply.raw.on('close', onClose);
        waiter.onMessage = () => {
          const gap = waiter.gap;
          if (gap && gap.resumeFrom > position) {
            const messages = waiter.received.filter((m) => m.id > gap.resumeFrom);
            const missed = gap.reason === 'reset' ? 0 : gap.resumeFrom - position;
            const last = messages.at(-1)?.id ?? gap.resumeFrom;
            finish(answerBody(channel, last, { ...gap, since: position, missed }, messages));
            return;
          }
          const messages = waiter.received.filter((m) => m.id > position);
          if (messages.length === 0) return;
          finish(
            messages.length === 1 && messages[0].id === position + 1
              ? singleAnswer(messages[0])
              : answerBody(channel, messages[messages.length - 1].id, null, messages),
          );
        };
      });
      if (body === null) return reply;
      return reply.send(body);
    } catch (err) {
      if (!(err instanceof MessagingError)) throw err;
      if (err.retryAfterMs) reply.header('retry-after', String(Math.ceil(err.retryAfterMs / 1000)));
      return reply.status(err.status).send({ error: err.message, code: err.code });
    } finally {
      messaging.hub.remove(waiter);
      release?.();
    }
  }

  /**
   * Counts the client in the channel's presence until it has not polled for a whole hold time and then
   * some, so presence does not flap between one poll and the next.
   */
  #markPresent(channel: string, identity: string): void {
    const key = `${channel}\n${identity}`;
    const known = this.#present.get(key);
    if (known) {
      known.timer.refresh();
      return;
    }
    if (this.#present.size >= MAX_PRESENT_POLLERS) return;
    const hub = this.#messaging.hub;
    const member: HubSubscriber = { channel, transport: 'poll', offer() {}, offerPresence() {} };
    hub.add(member);
    const timer = setTimeout(() => {
      this.#present.delete(key);
      hub.remove(member);
    }, this.#messaging.config.pollTimeoutMs + 5000);
    timer.unref();
    this.#present.set(key, { member, timer });
  }

  /** Answers every held poll with an empty list (server shutdown). */
  close(): void {
    for (const cancel of [...this.#held]) cancel();
    for (const { member, timer } of this.#present.values()) {
      clearTimeout(timer);
      this.#messaging.hub.remove(member);
    }
    this.#present.clear();
  }
}
