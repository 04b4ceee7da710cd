import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import {
  compilePattern,
  granted,
  looksLikeJwt,
  TokenError,
  type TokenGrant,
  type TokenVerifier,
} from '../auth/Tokens.ts';

export { compilePattern };

/** Who is on the other end of a connection or request. */
export interface Identity {
  /** What messages carry as `from`: a user id from a token, or a server-assigned `anon-…` id. */
  readonly id: string;
  readonly anonymous: boolean;
  /** What a token grants: channel patterns and the actions allowed on them. Unused for anonymous users. */
  readonly grants?: readonly ChannelGrant[];
  /** When the token this identity came from expires (ms since the epoch); nothing is allowed after it. */
  readonly expiresAt?: number;
  /**
   * For anonymous identities: the token that proves this id on the client's next connection (sent back as
   * `?identity=` or the `x-subsecond-identity` header), so reconnecting does not make it someone else.
   */
  readonly token?: string;
}

export type ChannelAction = 'subscribe' | 'publish';

/** A token's grant (src/auth/Tokens.ts): a channel or stream path pattern and the actions it allows. */
export type ChannelGrant = TokenGrant;

export interface IdentityRequest {
  readonly headers: IncomingHttpHeaders;
  readonly remoteAddress: string;
  readonly query: URLSearchParams;
}

/** Turns a request into an identity, or a reason to refuse it (the transport answers 401 / closes 4401). */
export interface IdentityResolver {
  identify(
    request: IdentityRequest,
  ): Identity | { refused: string } | Promise<Identity | { refused: string }>;
}

/**
 * Every client is anonymous with a server-assigned id, kept across reconnects by a token the server signs:
 * `anon-<id>.<HMAC-SHA256(secret, id), 128 bits>`. A missing or forged token gets a fresh id, never the claimed
 * one. The secret is `messaging.identitySecret` (shared by a cluster's nodes) or random per process.
 */
export class AnonymousIdentities implements IdentityResolver {
  readonly #secret: Buffer;

  constructor(secret: string) {
    this.#secret = secret === '' ? randomBytes(32) : Buffer.from(secret);
  }

  #sign(id: string): string {
    return createHmac('sha256', this.#secret).update(id).digest().subarray(0, 16).toString('base64url');
  }

  /** The id a token proves, or null when it is not one this server signed. */
  verify(token: string): string | null {
    const dot = token.lastIndexOf('.');
    if (dot <= 0 || token.length > 100) return null;
    const id = token.slice(0, dot);
    if (!/^anon-[A-Za-z0-9_-]{8,16}$/.test(id)) return null;
    const given = Buffer.from(token.slice(dot + 1));
    const expected = Buffer.from(this.#sign(id));
    return given.length === expected.length && timingSafeEqual(given, expected) ? id : null;
  }

  identify(request: IdentityRequest): Identity {
    const header = request.headers['x-subsecond-identity'];
    const presented = request.query.get('identity') ?? (typeof header === 'string' ? header : null);
    const proven = presented ? this.verify(presented) : null;
    const id = proven ?? `anon-${randomBytes(6).toString('base64url')}`;
    return { id, anonymous: true, token: `${id}.${this.#sign(id)}` };
  }
}

/** Decides whether an identity may subscribe to or publish on a channel: null when allowed, else why not. */
export interface ChannelPolicy {
  authorize(identity: Identity, channel: string, action: ChannelAction): string | null;
}

/** A comma-separated list of patterns (what the config holds); empty matches nothing. */
export function compilePatternList(list: string): RegExp[] {
  return list
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '')
    .map(compilePattern);
}

/**
 * Anonymous identities may read and write the channels their pattern lists name; identified ones may do what
 * their grants say, and what anonymous users may.
 */
export class PatternChannelPolicy implements ChannelPolicy {
  readonly #read: RegExp[];
  readonly #write: RegExp[];

  constructor(options: { anonymousRead: string; anonymousWrite: string }) {
    this.#read = compilePatternList(options.anonymousRead);
    this.#write = compilePatternList(options.anonymousWrite);
  }

  authorize(identity: Identity, channel: string, action: ChannelAction): string | null {
    const anonymous = action === 'subscribe' ? this.#read : this.#write;
    if (identity.expiresAt !== undefined && Date.now() >= identity.expiresAt) {
      return `the token of ${identity.id} expired at ${new Date(identity.expiresAt).toISOString()}; reconnect with a fresh one`;
    }
    if (anonymous.some((p) => p.test(channel))) return null;
    if (granted(identity.grants ?? [], channel, action)) return null;
    const verb = action === 'subscribe' ? 'read' : 'publish on';
    return identity.anonymous
      ? `anonymous clients may not ${verb} channel "${channel}" (messaging.anonymous${action === 'subscribe' ? 'Read' : 'Write'})`
      : `${identity.id} may not ${verb} channel "${channel}"`;
  }
}

/**
 * Identities from signed tokens (src/auth/Tokens.ts), for clients that present one; everyone else is what
 * `fallback` makes them (anonymous). A token comes as `?token=` (EventSource and browser WebSockets cannot
 * set headers) or `Authorization: Bearer`. A bearer that is not JWT-shaped is not meant for messaging (a WHIP
 * publisher's stream key, say) and is passed over; anything presented as `?token=` must verify. With no
 * verifier (`auth.jwtSecret` empty) tokens are off and a presented one is refused, not ignored: a client
 * that sends one expects to be someone.
 */
export class TokenIdentities implements IdentityResolver {
  readonly #verifier: TokenVerifier | null;
  readonly #fallback: IdentityResolver;

  constructor(verifier: TokenVerifier | null, fallback: IdentityResolver) {
    this.#verifier = verifier;
    this.#fallback = fallback;
  }

  async identify(request: IdentityRequest): Promise<Identity | { refused: string }> {
    const authorization = request.headers.authorization;
    const bearer =
      typeof authorization === 'string' && /^Bearer /i.test(authorization)
        ? authorization.slice(7).trim()
        : undefined;
    const token =
      request.query.get('token') ?? (bearer !== undefined && looksLikeJwt(bearer) ? bearer : null);
    if (token === null) return this.#fallback.identify(request);
    if (!this.#verifier) {
      return { refused: 'tokens are not accepted: auth.jwtSecret is not configured (nor auth.jwksUrl)' };
    }
    try {
      const claims = await this.#verifier.verify(token);
      return {
        id: claims.sub,
        anonymous: false,
        grants: claims.grants,
        ...(claims.expiresAt === undefined ? {} : { expiresAt: claims.expiresAt }),
      };
    } catch (err) {
      if (err instanceof TokenError) return { refused: err.message };
      throw err;
    }
  }
}
