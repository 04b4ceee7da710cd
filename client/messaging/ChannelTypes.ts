/** Public types of the Subsecond messaging client (the server side is src/messaging; wire format in docs). */
import type { MessagingPeer } from '../webrtc/MessagingPeer.ts';

/** Transports a channel can use, best first. `datachannel` rides the page's WebRTC session (`peer` option). */
export type ChannelTransportKind = 'datachannel' | 'ws' | 'sse' | 'poll';

export interface ChannelMessage<T = unknown> {
  readonly id: number;
  readonly channel: string;
  /** Server time the message was accepted, ms since the epoch. */
  readonly time: number;
  /** The sender's identity, set by the server. */
  readonly from: string;
  readonly type: string;
  readonly data: T;
}

/** Messages this client will never receive: it was further behind than the channel's history. */
export interface ChannelGap {
  readonly channel: string;
  readonly since: number;
  readonly missed: number;
  readonly resumeFrom: number;
  readonly reason: 'evicted' | 'reset';
}

export interface ChannelPresence {
  readonly channel: string;
  readonly connections: number;
  readonly transports: Readonly<Record<string, number>>;
  readonly viewers?: number;
}

export interface ChannelOptions {
  /** Origin of the Subsecond server. Default: the page's origin. */
  server?: string;
  /** 'auto' tries the transports best first and falls back. Default 'auto'. */
  transport?: 'auto' | ChannelTransportKind;
  /** Resume after this message id (e.g. one stored from an earlier visit). Default: from now. */
  since?: number;
  /** Reconnect back-off: first delay ceiling and maximum, ms. Defaults 250 and 10,000. */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** WebSocket only: the client pings this often and drops a socket silent for two intervals. Default 15 s. */
  heartbeatMs?: number;
  /** Long-poll hold the client asks for, ms (the server caps it). Default: the server's. */
  pollTimeoutMs?: number;
  /**
   * An identity token from an earlier visit (`channel.identityToken`), to keep the same anonymous id. By
   * default every channel of a page to one server shares the token the server handed out first.
   */
  identity?: string;
  /**
   * A signed access token (the server's `auth.jwtSecret`): its `sub` becomes this client's name, the `from`
   * of what it publishes, and its grants what it may read and publish. Sent as `?token=` on every transport
   * but the data channel, which speaks as the WHEP/WHIP session's identity.
   */
  token?: string;
  /**
   * A WebRTC session lent to messaging (give the same MessagingPeer to the player's or the WhipPublisher's
   * `messaging` option): the channel then rides its data channel first, falling back to WebSocket.
   */
  peer?: MessagingPeer;
  /**
   * Data channel only: an unordered channel without retransmissions (`ordered: false, maxRetransmits: 0`),
   * for ephemeral events (reactions, cursors) where a late message is worth less than none. Ids still rise;
   * a lost one is not resent.
   */
  ephemeral?: boolean;
}

export type ChannelState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface ChannelStateChange {
  readonly state: ChannelState;
  readonly transport: ChannelTransportKind | null;
  /** For 'reconnecting': the delay before the next attempt, and why the last connection ended. */
  readonly retryInMs?: number;
  readonly reason?: string;
}

export interface ChannelErrorInfo {
  /** The server's error code (`rate_limited`, `too_large`, `forbidden`…) or `transport`. */
  readonly code: string;
  readonly message: string;
  /** True when the channel gave up. */
  readonly fatal: boolean;
}

export const ChannelEvent = {
  Message: 'message',
  Gap: 'gap',
  Presence: 'presence',
  State: 'state',
  Error: 'error',
} as const;

export type ChannelEvents = {
  message: ChannelMessage;
  gap: ChannelGap;
  presence: ChannelPresence;
  state: ChannelStateChange;
  error: ChannelErrorInfo;
};

/** A refused publish: the server's code and message. */
export class PublishError extends Error {
  readonly code: string;
  readonly retryAfterMs?: number;
  constructor(code: string, message: string, retryAfterMs?: number) {
    super(message);
    this.name = 'PublishError';
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
}
