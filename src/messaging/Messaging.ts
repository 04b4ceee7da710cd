import { randomBytes } from 'node:crypto';
import { TokenVerifier } from '../auth/Tokens.ts';
import type { MessagingConfig } from '../config/schema.ts';
import { ConnectionsPerIp, TooManyConnectionsError } from '../core/ConnectionsPerIp.ts';
import type { Logger } from '../core/log.ts';
import { ChannelHub } from './ChannelHub.ts';
import { InvalidChannelError, parseChannelName } from './ChannelName.ts';
import {
  AnonymousIdentities,
  type ChannelAction,
  type ChannelPolicy,
  type Identity,
  type IdentityResolver,
  PatternChannelPolicy,
  TokenIdentities,
} from './ChannelPolicy.ts';
import { InMemoryBus } from './InMemoryBus.ts';
import type { MessageDraft, StoredMessage } from './Message.ts';
import { ChannelLimitError, type MessageBus } from './MessageBus.ts';
import { MessagingError } from './protocol.ts';
import { TokenBucket } from './TokenBucket.ts';

/** A message `type`: what the application calls it (`chat`, `reaction`, `bid`). */
const MESSAGE_TYPE = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * The messaging layer of one node: the bus, this node's hub, the policy and the limits every transport
 * shares. Transports (ws/, sse/, poll/, datachannel/) hold a reference and call in; they never
 * talk to each other.
 */
export class Messaging {
  readonly config: MessagingConfig;
  readonly bus: MessageBus;
  readonly hub: ChannelHub;
  readonly policy: ChannelPolicy;
  readonly identities: IdentityResolver;
  readonly log: Logger;
  /** Distinguishes this process's presence reports on a shared bus. */
  readonly node = randomBytes(4).toString('hex');
  readonly #connectionsPerIp: ConnectionsPerIp;
  readonly #httpBuckets = new Map<string, TokenBucket>();
  readonly #prune: NodeJS.Timeout;

  constructor(options: {
    config: MessagingConfig;
    log: Logger;
    bus?: MessageBus;
    policy?: ChannelPolicy;
    identities?: IdentityResolver;
    /** `auth.jwtSecret`, for the default identities: tokens when set, else everyone is anonymous. */
    jwtSecret?: string;
    /** The server's token verifier (auth.jwtSecret, auth.jwksUrl); wins over `jwtSecret`. */
    tokens?: TokenVerifier | null;
    /** Viewers of a stream across media protocols, for presence on its channels. */
    viewersOf?: (streamPath: string) => number | undefined;
  }) {
    const { config } = options;
    this.config = config;
    this.#connectionsPerIp = new ConnectionsPerIp(
      () => this.config.maxConnectionsPerIp,
      'messaging connections',
      'messaging.maxConnectionsPerIp',
    );
    this.log = options.log.child({ component: 'messaging' });
    this.bus =
      options.bus ??
      new InMemoryBus({
        maxMessages: config.historyMaxMessages,
        maxAgeMs: config.historyMaxAgeMs,
        maxBytes: config.historyMaxBytes,
        maxBytesTotal: config.maxHistoryBytesTotal,
        maxChannels: config.maxChannels,
      });
    this.policy = options.policy ?? new PatternChannelPolicy(config);
    this.identities =
      options.identities ??
      new TokenIdentities(
        options.tokens !== undefined
          ? options.tokens
          : options.jwtSecret
            ? new TokenVerifier(options.jwtSecret)
            : null,
        new AnonymousIdentities(config.identitySecret),
      );
    const viewersOf = options.viewersOf;
    this.hub = new ChannelHub({
      bus: this.bus,
      node: this.node,
      presenceIntervalMs: config.presenceIntervalMs,
      viewersOf: viewersOf
        ? (channel) => {
            const colon = channel.indexOf(':');
            return colon > 0 ? viewersOf(channel.slice(0, colon)) : undefined;
          }
        : undefined,
      log: this.log,
    });
    // Full buckets carry no state worth keeping; forgetting them bounds the map by recent publishers.
    this.#prune = setInterval(() => {
      for (const [ip, bucket] of this.#httpBuckets) if (bucket.full) this.#httpBuckets.delete(ip);
    }, 10_000);
    this.#prune.unref();
  }

  /** Validates the name and checks the policy; returns the channel name or throws MessagingError. */
  authorize(identity: Identity, rawChannel: string, action: ChannelAction): string {
    let channel: string;
    try {
      channel = parseChannelName(rawChannel);
    } catch (err) {
      if (err instanceof InvalidChannelError) throw new MessagingError('invalid_channel', err.message);
      throw err;
    }
    const refusal = this.policy.authorize(identity, channel, action);
    if (refusal) throw new MessagingError('forbidden', refusal, { channel });
    return channel;
  }

  /** The one publish path (WebSocket, HTTP, data channel): checks, then the bus assigns id and time. */
  async publish(identity: Identity, rawChannel: string, draft: MessageDraft): Promise<StoredMessage> {
    const channel = this.authorize(identity, rawChannel, 'publish');
    if (typeof draft.type !== 'string' || !MESSAGE_TYPE.test(draft.type)) {
      throw new MessagingError(
        'invalid_message',
        `message type ${JSON.stringify(draft.type)?.slice(0, 80)} must be 1-64 characters of A-Z a-z 0-9 _ . : -`,
        { channel },
      );
    }
    const data = draft.data === undefined ? null : draft.data;
    const size = Buffer.byteLength(JSON.stringify(data));
    if (size > this.config.maxMessageBytes) {
      throw new MessagingError(
        'too_large',
        `message data is ${size} bytes; the limit is ${this.config.maxMessageBytes} (messaging.maxMessageBytes)`,
        { channel },
      );
    }
    try {
      return await this.bus.publish(channel, identity.id, { type: draft.type, data });
    } catch (err) {
      if (err instanceof ChannelLimitError) throw new MessagingError('unavailable', err.message, { channel });
      throw err;
    }
  }

  /** HTTP publishes have no connection; their rate limit is per client IP. Returns ms to wait, or 0. */
  takeHttpPublishToken(remoteAddress: string): number {
    return this.takeAddressPublishToken(remoteAddress);
  }

  /** The publish rate one address shares (HTTP publishes, and anonymous remote clients on any transport). */
  takeAddressPublishToken(remoteAddress: string): number {
    let bucket = this.#httpBuckets.get(remoteAddress);
    if (!bucket) {
      bucket = new TokenBucket(this.config.publishRatePerSecond, this.config.publishBurst);
      this.#httpBuckets.set(remoteAddress, bucket);
    }
    return bucket.take();
  }

  /**
   * Counts an open connection against the per-IP limit: a release function, or throws MessagingError when
   * the address already has `maxConnectionsPerIp`.
   */
  admit(remoteAddress: string): () => void {
    try {
      return this.#connectionsPerIp.admit(remoteAddress);
    } catch (err) {
      if (err instanceof TooManyConnectionsError) throw new MessagingError('rate_limited', err.message);
      throw err;
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#prune);
    this.hub.close();
    await this.bus.close();
  }
}
