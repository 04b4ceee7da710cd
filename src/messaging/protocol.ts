/**
 * The socket protocol shared by WebSocket and WebRTC data-channel clients: one JSON object per text message.
 * Client frames carry `op`, server frames `event` (a message's own `type` is the application's).
 * Specified in docs/protocols/messaging.md.
 */
import type { ChannelMessage, GapEvent, PresenceEvent } from './Message.ts';

export type ClientFrame =
  | { readonly op: 'subscribe'; readonly channel: string; readonly since?: number }
  | { readonly op: 'unsubscribe'; readonly channel: string }
  | {
      readonly op: 'publish';
      readonly channel: string;
      readonly type: string;
      readonly data: unknown;
      readonly ref?: string;
    }
  | { readonly op: 'ping'; readonly ref?: string };

export type ErrorCode =
  | 'bad_frame'
  | 'unknown_op'
  | 'invalid_channel'
  | 'invalid_message'
  | 'forbidden'
  | 'too_large'
  | 'rate_limited'
  | 'too_many_channels'
  | 'not_subscribed'
  /** A data channel read too slowly: its unsent backlog passed messaging.maxBacklogBytes; it is closed next. */
  | 'too_slow'
  | 'unavailable';

export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  bad_frame: 400,
  unknown_op: 400,
  invalid_channel: 400,
  invalid_message: 400,
  forbidden: 403,
  too_large: 413,
  rate_limited: 429,
  too_many_channels: 429,
  not_subscribed: 400,
  too_slow: 408,
  unavailable: 503,
};

/** A refusal a connection survives: the client is told what and why, and carries on. */
export interface ChannelErrorEvent {
  readonly event: 'error';
  readonly code: ErrorCode;
  readonly message: string;
  readonly channel?: string;
  /** The `ref` of the publish or ping that caused it. */
  readonly ref?: string;
  readonly retryAfterMs?: number;
}

export type ServerEvent =
  | {
      /** First on every socket and event stream: who the server takes this client to be. */
      readonly event: 'hello';
      readonly identity: string;
      /** Present this (`?identity=` or `x-subsecond-identity`) to stay the same anonymous identity. */
      readonly token?: string;
    }
  | {
      readonly event: 'subscribed';
      readonly channel: string;
      /** The id after which this subscription continues: messages with greater ids follow. */
      readonly position: number;
      /** The channel's newest id when the subscription was made. */
      readonly lastId: number;
    }
  | { readonly event: 'unsubscribed'; readonly channel: string }
  | ({ readonly event: 'gap' } & GapEvent)
  | { readonly event: 'ack'; readonly ref?: string; readonly channel: string; readonly id: number }
  | { readonly event: 'pong'; readonly ref?: string }
  | ChannelErrorEvent
  | { readonly event: 'message'; readonly message: ChannelMessage }
  | { readonly event: 'presence'; readonly presence: PresenceEvent };

export class MessagingError extends Error {
  readonly code: ErrorCode;
  readonly channel?: string;
  readonly retryAfterMs?: number;
  constructor(code: ErrorCode, message: string, extra: { channel?: string; retryAfterMs?: number } = {}) {
    super(message);
    this.code = code;
    this.channel = extra.channel;
    this.retryAfterMs = extra.retryAfterMs;
  }

  get status(): number {
    return HTTP_STATUS[this.code];
  }

  toEvent(ref?: string): ChannelErrorEvent {
    return {
      event: 'error',
      code: this.code,
      message: this.message,
      ...(this.channel === undefined ? {} : { channel: this.channel }),
      ...(ref === undefined ? {} : { ref }),
      ...(this.retryAfterMs === undefined ? {} : { retryAfterMs: this.retryAfterMs }),
    };
  }
}

/** `since` as a client sends it (query string, header or frame): a non-negative safe integer, or undefined. */
export function parseSince(raw: unknown, what: string): number | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined;
  const n =
    typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d{1,16}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new MessagingError(
      'bad_frame',
      `${what} must be a message id (a non-negative integer), got ${JSON.stringify(raw).slice(0, 40)}`,
    );
  }
  return n;
}

function field(frame: Record<string, unknown>, name: string, op: string): string {
  const value = frame[name];
  if (typeof value !== 'string') {
    throw new MessagingError(
      'bad_frame',
      `"${op}" needs "${name}" as a string, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function ref(frame: Record<string, unknown>): string | undefined {
  const value = frame.ref;
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length > 64) {
    throw new MessagingError('bad_frame', `"ref" must be a string of at most 64 characters`);
  }
  return value;
}

/** Parses one client text frame; throws MessagingError (bad_frame / unknown_op) naming the problem. */
export function parseClientFrame(text: string): ClientFrame {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new MessagingError('bad_frame', `frame is not JSON: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new MessagingError('bad_frame', 'frame must be a JSON object with an "op"');
  }
  const frame = value as Record<string, unknown>;
  switch (frame.op) {
    case 'subscribe':
      return {
        op: 'subscribe',
        channel: field(frame, 'channel', 'subscribe'),
        since: parseSince(frame.since, '"since"'),
      };
    case 'unsubscribe':
      return { op: 'unsubscribe', channel: field(frame, 'channel', 'unsubscribe') };
    case 'publish':
      return {
        op: 'publish',
        channel: field(frame, 'channel', 'publish'),
        type: field(frame, 'type', 'publish'),
        data: frame.data ?? null,
        ref: ref(frame),
      };
    case 'ping':
      return { op: 'ping', ref: ref(frame) };
    default:
      throw new MessagingError(
        'unknown_op',
        `unknown op ${JSON.stringify(frame.op)}: use subscribe, unsubscribe, publish or ping`,
      );
  }
}
