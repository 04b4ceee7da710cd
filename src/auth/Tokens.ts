import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Signed access tokens: JSON Web Tokens (RFC 7519) in the JWS compact serialization (RFC 7515 §7.1), HMAC
 * SHA-256 only (`alg: HS256`, RFC 7518 §3.2), with the secret `auth.jwtSecret`. Claims:
 *
 * - `sub` (required): who the bearer is; messages it publishes carry it as `from`.
 * - `exp`, `nbf` (optional, NumericDate seconds, RFC 7519 §4.1.4-5): refused outside them.
 * - `grants` (required, may be empty): `[{ "pattern": "live/cam1:*", "actions": ["subscribe", "publish"] }]`.
 *   A pattern names channels (`live/cam1:chat`) or stream paths (`live/cam1`): `*` matches within one
 *   `/`-separated segment, `**` anything. Actions: `subscribe` and `publish` on channels, `publish` (and
 *   `play`, reserved) on streams.
 *
 * The algorithm is fixed by the server, never taken from the token's header: a token saying `none` or
 * `RS256` is refused, which closes RFC 8725 §2.1's algorithm-confusion attacks.
 */

export type TokenAction = 'subscribe' | 'publish' | 'play';
const ACTIONS: readonly TokenAction[] = ['subscribe', 'publish', 'play'];

export interface TokenGrant {
  readonly pattern: string;
  readonly actions: readonly TokenAction[];
}

export interface TokenClaims {
  readonly sub: string;
  /** Expiry, ms since the epoch (the claim is in seconds); undefined when the token has none. */
  readonly expiresAt?: number;
  readonly grants: readonly TokenGrant[];
}

/** Why a token was refused; the message names the problem (never the secret). */
export class TokenError extends Error {
  override name = 'TokenError';
}

/** What a `sub` may be: it becomes a message's `from`; `anon-` is reserved for the server's anonymous ids. */
const SUBJECT = /^[A-Za-z0-9_.:@|+-]{1,128}$/;
const MAX_TOKEN_LENGTH = 8192;
const MAX_GRANTS = 64;

/**
 * A channel or stream path pattern: `*` matches within one `/`-separated segment, `**` matches anything,
 * everything else is literal. `live/*:chat` matches `live/cam1:chat`, not `live/a/b:chat`.
 */
export function compilePattern(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*' && pattern[i + 1] === '*') {
      source += '.*';
      i++;
    } else if (c === '*') {
      source += '[^/]*';
    } else {
      source += c.replace(/[.+?^${}()|[\]\\-]/g, '\\$&');
    }
  }
  return new RegExp(`^${source}$`);
}

/** True when one of the grants allows `action` on `name` (a channel or a stream path). */
export function granted(grants: readonly TokenGrant[], name: string, action: TokenAction): boolean {
  return grants.some((g) => g.actions.includes(action) && compilePattern(g.pattern).test(name));
}

function base64url(text: string | Buffer): string {
  return Buffer.from(text).toString('base64url');
}

/** True when `text` has the shape of a JWS compact token (three base64url parts), whatever it says. */
export function looksLikeJwt(text: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(text);
}

/** Signs claims as an HS256 JWT: for operators' tools and tests (`exp`/`nbf` in seconds, as RFC 7519). */
export function signToken(
  secret: string,
  claims: { sub: string; exp?: number; nbf?: number; grants: readonly TokenGrant[] } & Record<
    string,
    unknown
  >,
): string {
  const signingInput = `${base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${base64url(JSON.stringify(claims))}`;
  return `${signingInput}.${createHmac('sha256', secret).update(signingInput).digest('base64url')}`;
}

function parsePart(part: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw new TokenError(`token ${what} is not base64url-encoded JSON`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TokenError(`token ${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

function parseGrants(value: unknown): TokenGrant[] {
  if (!Array.isArray(value)) throw new TokenError('token claim "grants" must be an array');
  if (value.length > MAX_GRANTS)
    throw new TokenError(`token has ${value.length} grants; at most ${MAX_GRANTS}`);
  return value.map((grant, i) => {
    const { pattern, actions } = (grant ?? {}) as { pattern?: unknown; actions?: unknown };
    if (typeof pattern !== 'string' || pattern === '' || pattern.length > 256) {
      throw new TokenError(`token grant ${i}: "pattern" must be a string of 1-256 characters`);
    }
    if (!Array.isArray(actions)) throw new TokenError(`token grant ${i}: "actions" must be an array`);
    for (const action of actions) {
      if (!ACTIONS.includes(action)) {
        throw new TokenError(
          `token grant ${i}: unknown action ${JSON.stringify(action)?.slice(0, 40)} (known: ${ACTIONS.join(', ')})`,
        );
      }
    }
    return { pattern, actions: actions as TokenAction[] };
  });
}

function numericDate(payload: Record<string, unknown>, claim: 'exp' | 'nbf'): number | undefined {
  const value = payload[claim];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new TokenError(`token claim "${claim}" must be a NumericDate (seconds since the epoch)`);
  }
  return value * 1000;
}

/** Verifies tokens signed with one secret. */
export class TokenVerifier {
  readonly #secret: Buffer;

  constructor(secret: string) {
    if (secret === '') throw new Error('TokenVerifier needs a secret (auth.jwtSecret)');
    this.#secret = Buffer.from(secret);
  }

  /** The token's claims, or throws TokenError saying why it is refused. */
  verify(token: string, now = Date.now()): TokenClaims {
    if (token.length > MAX_TOKEN_LENGTH) {
      throw new TokenError(`token is ${token.length} characters; at most ${MAX_TOKEN_LENGTH}`);
    }
    if (!looksLikeJwt(token)) throw new TokenError('token is not a JWT (header.payload.signature)');
    const [headerPart, payloadPart, signaturePart] = token.split('.');
    // RFC 7515 §2 / RFC 4648 §3.5: one spelling per value. Unused low bits of the last character would give
    // every token 4 to 16 spellings that all verify (a malleable signature).
    for (const part of [headerPart, payloadPart, signaturePart]) {
      if (Buffer.from(part, 'base64url').toString('base64url') !== part) {
        throw new TokenError('token is not canonical base64url (unused bits set in a part)');
      }
    }
    const header = parsePart(headerPart, 'header');
    if (header.alg !== 'HS256') {
      throw new TokenError(
        `token algorithm ${JSON.stringify(header.alg)?.slice(0, 20)} is not accepted; only HS256`,
      );
    }
    const expected = createHmac('sha256', this.#secret).update(`${headerPart}.${payloadPart}`).digest();
    const given = Buffer.from(signaturePart, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new TokenError('token signature does not verify (wrong secret or altered token)');
    }
    const payload = parsePart(payloadPart, 'payload');
    const expiresAt = numericDate(payload, 'exp');
    if (expiresAt !== undefined && now >= expiresAt) {
      throw new TokenError(`token expired at ${new Date(expiresAt).toISOString()}`);
    }
    const notBefore = numericDate(payload, 'nbf');
    if (notBefore !== undefined && now < notBefore) {
      throw new TokenError(`token not valid before ${new Date(notBefore).toISOString()}`);
    }
    const { sub } = payload;
    if (typeof sub !== 'string' || !SUBJECT.test(sub)) {
      throw new TokenError('token claim "sub" must be 1-128 characters of A-Z a-z 0-9 _ . : @ | + -');
    }
    if (sub.startsWith('anon-'))
      throw new TokenError('token claim "sub" may not start with "anon-" (reserved)');
    return { sub, ...(expiresAt === undefined ? {} : { expiresAt }), grants: parseGrants(payload.grants) };
  }
}
