import type { MessagingPeer } from '../../webrtc/MessagingPeer.ts';
import type { ChannelGap, ChannelMessage, ChannelPresence, ChannelTransportKind } from '../ChannelTypes.ts';

/** What a transport needs to follow one channel. */
export interface ChannelTransportContext {
  /** Server origin, e.g. `https://live.example.com`. */
  readonly server: string;
  readonly channel: string;
  readonly heartbeatMs: number;
  readonly pollTimeoutMs?: number;
  /** The page's WebRTC session lent to messaging (the data channel transport needs it). */
  readonly peer?: MessagingPeer;
  /** Data channel only: unordered, no retransmissions. */
  readonly ephemeral?: boolean;
  /** The identity token the server gave this client, if any: presented on every request. */
  identity(): string | undefined;
  /** A signed access token (`ChannelOptions.token`), presented as `?token=`. */
  readonly accessToken?: string;
}

/** `?since=…&identity=…&token=…` (each may be absent), with the leading `?` when not empty. */
export function channelQuery(context: ChannelTransportContext, since: number | undefined): string {
  const query = new URLSearchParams();
  if (since !== undefined) query.set('since', String(since));
  const identity = context.identity();
  if (identity) query.set('identity', identity);
  if (context.accessToken) query.set('token', context.accessToken);
  const text = query.toString();
  return text ? `?${text}` : '';
}

/** How a transport reports to its channel. Calls after `close()` are ignored by the channel. */
export interface ChannelTransportObserver {
  /** The server accepted the subscription; messages with ids above `position` follow. */
  onSubscribed(position: number): void;
  /** The server named this client; `token` keeps that identity on the next connection. */
  onIdentity(token: string): void;
  onMessage(message: ChannelMessage): void;
  onGap(gap: ChannelGap): void;
  onPresence(presence: ChannelPresence): void;
  /** A refusal the connection survives (e.g. a rate-limited publish without a pending promise). */
  onError(code: string, message: string): void;
  /**
   * The connection ended without `close()`. `opened`: it had worked (reconnect with it); `fatal`: retrying
   * cannot help (refused by policy).
   */
  onClosed(reason: string, opened: boolean, fatal: boolean): void;
}

/** One way of carrying a channel: WebSocket, SSE + HTTP POST, long-polling, or a WebRTC data channel. */
export interface ChannelTransport {
  readonly kind: ChannelTransportKind;
  /** Connects and subscribes, resuming after `since` (undefined: from now). */
  open(since: number | undefined): void;
  publish(type: string, data: unknown): Promise<{ id: number; channel: string }>;
  close(): void;
}

export interface ChannelTransportFactory {
  readonly kind: ChannelTransportKind;
  /** False when this browser (or page) cannot use it at all. */
  available(): boolean;
  create(context: ChannelTransportContext, observer: ChannelTransportObserver): ChannelTransport;
}
