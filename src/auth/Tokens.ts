import { createHmac } from 'node:crypto';
import {
  createRemoteJWKSet,
  decodeProtectedHeader,
  type JWTPayload,
  type JWTVerifyGetKey,
  errors as jose,
  jwtVerify,
} from 'jose';

/**
 * Signed access tokens: JSON Web Tokens (RFC 7519) in the JWS compact serialization (RFC 7515 §7.1),
 * verified by `jose`. Keys: an HMAC secret (`auth.jwtSecret`, HS256/384/512) and/or a JSON Web Key Set
 * fetched from `auth.jwksUrl` (RS256, PS256, ES256, EdDSA, …), as Auth0, Keycloak or Cognito publish. Claims:
 *
 * - `sub` (required): who the bearer is; messages it publishes carry it as `from`.
 * - `exp`, `nbf` (optional, NumericDate seconds, RFC 7519 §4.1.4-5): refused outside them.
 * - `iss`, `aud`: must equal `auth.issuer` / include `auth.audience` when those are set.
 * - `grants` (required, may be empty): `[{ "pattern": "live/cam1:*", "actions": ["subscribe", "publish"] }]`.
 *   A pattern names channels (`live/cam1:chat`) or stream paths (`live/cam1`): `*` matches within one
 *   `/`-separated segment, `**` anything. Actions: `subscribe` and `publish` on channels, `publish` and
 *   `play` on streams.
 *
 * The algorithms accepted are the server's list (`auth.jwtAlgorithms`), never the token header's: `none`
 * is never accepted, an HS* token is only checked against the secret and an asymmetric one only against the
 * key set (jose also refuses a key of the wrong type), which closes RFC 8725 §2.1's algorithm confusion.
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

/** True when `text` has the shape of a JWS compact token (three base64url parts), whatever it says. */
export function looksLikeJwt(text: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(text);
}

/**
 * Signs claims as an HS256 JWT, synchronously: for operators' scripts and tests (`exp`/`nbf` in seconds, as
 * RFC 7519). Verification, where the security lies, is jose's; other algorithms are signed with jose's SignJWT.
 */
export function signToken(
  secret: string,
  claims: { sub: string; exp?: number; nbf?: number; grants: readonly TokenGrant[] } & Record<
    string,
    unknown
  >,
): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const signingInput = `${encode({ alg: 'HS256', typ: 'JWT' })}.${encode(claims)}`;
  return `${signingInput}.${createHmac('sha256', secret).update(signingInput).digest('base64url')}`;
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

const HMAC_ALGORITHMS = new Set(['HS256', 'HS384', 'HS512']);
/** What `auth.jwtAlgorithms` may name: what jose verifies in Node, `none` never. */
export const TOKEN_ALGORITHMS = [
  'HS256',
  'HS384',
  'HS512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;

export interface TokenVerifierOptions {
  /** `auth.jwtSecret`: the HMAC key of HS* tokens. */
  readonly secret?: string;
  /** `auth.jwksUrl`: where the public keys of asymmetric tokens are fetched (RFC 7517 JWK Set). */
  readonly jwksUrl?: string;
  /** `auth.jwtAlgorithms`: the algorithms accepted, whatever a token's header says. */
  readonly algorithms?: readonly string[];
  /** `auth.issuer` / `auth.audience`: required `iss` / `aud` when non-empty. */
  readonly issuer?: string;
  readonly audience?: string;
  /** `auth.jwksTimeoutMs`: a key-set fetch that takes longer fails (and the token is refused). */
  readonly jwksTimeoutMs?: number;
  /** `auth.jwksCooldownMs`: an unknown `kid` refetches the key set at most this often. */
  readonly jwksCooldownMs?: number;
  /** `auth.jwksCacheMaxAgeMs`: the key set is refetched when older than this. */
  readonly jwksCacheMaxAgeMs?: number;
}

/** Verifies tokens against the configured secret and key set. */
export class TokenVerifier {
  readonly #secret: Uint8Array | null;
  readonly #jwks: JWTVerifyGetKey | null;
  readonly #jwksUrl: string;
  readonly #algorithms: readonly string[];
  readonly #issuer: string;
  readonly #audience: string;

  constructor(options: string | TokenVerifierOptions) {
    const o = typeof options === 'string' ? { secret: options } : options;
    if (!o.secret && !o.jwksUrl) {
      throw new Error('TokenVerifier needs a secret (auth.jwtSecret) or a key set (auth.jwksUrl)');
    }
    this.#secret = o.secret ? new TextEncoder().encode(o.secret) : null;
    this.#jwksUrl = o.jwksUrl ?? '';
    this.#jwks = o.jwksUrl
      ? createRemoteJWKSet(new URL(o.jwksUrl), {
          timeoutDuration: o.jwksTimeoutMs ?? 5000,
          cooldownDuration: o.jwksCooldownMs ?? 30_000,
          cacheMaxAge: o.jwksCacheMaxAgeMs ?? 600_000,
        })
      : null;
    this.#algorithms = o.algorithms ?? ['HS256', 'RS256', 'PS256', 'ES256', 'EdDSA'];
    this.#issuer = o.issuer ?? '';
    this.#audience = o.audience ?? '';
  }

  /** The token's claims, or rejects with a TokenError saying why it is refused. */
  async verify(token: string, now = Date.now()): Promise<TokenClaims> {
    if (token.length > MAX_TOKEN_LENGTH) {
      throw new TokenError(`token is ${token.length} characters; at most ${MAX_TOKEN_LENGTH}`);
    }
    if (!looksLikeJwt(token)) throw new TokenError('token is not a JWT (header.payload.signature)');
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw new TokenError('token header is not base64url-encoded JSON');
    }
    const shown = JSON.stringify(alg)?.slice(0, 20);
    if (typeof alg !== 'string' || !this.#algorithms.includes(alg)) {
      throw new TokenError(
        `token algorithm ${shown} is not accepted; accepted: ${this.#algorithms.join(', ')} (auth.jwtAlgorithms)`,
      );
    }
    const hmac = HMAC_ALGORITHMS.has(alg);
    if (hmac && !this.#secret) {
      throw new TokenError(`token algorithm ${shown} needs auth.jwtSecret, which is not configured`);
    }
    if (!hmac && !this.#jwks) {
      throw new TokenError(`token algorithm ${shown} needs auth.jwksUrl, which is not configured`);
    }
    // RFC 7515 §2 / RFC 4648 §3.5: one spelling per value. Unused low bits of the last character would give
    // every token 4 to 16 spellings that all verify (a malleable signature); jose decodes them leniently.
    for (const part of token.split('.')) {
      if (Buffer.from(part, 'base64url').toString('base64url') !== part) {
        throw new TokenError('token is not canonical base64url (unused bits set in a part)');
      }
    }
    let payload: JWTPayload;
    try {
      const options = {
        algorithms: [alg],
        currentDate: new Date(now),
        ...(this.#issuer ? { issuer: this.#issuer } : {}),
        ...(this.#audience ? { audience: this.#audience } : {}),
      };
      payload = (
        hmac
          ? await jwtVerify(token, this.#secret as Uint8Array, options)
          : await jwtVerify(token, this.#jwks as JWTVerifyGetKey, options)
      ).payload;
    } catch (err) {
      throw this.#explain(err);
    }
    const { sub } = payload;
    if (typeof sub !== 'string' || !SUBJECT.test(sub)) {
      throw new TokenError('token claim "sub" must be 1-128 characters of A-Z a-z 0-9 _ . : @ | + -');
    }
    if (sub.startsWith('anon-'))
      throw new TokenError('token claim "sub" may not start with "anon-" (reserved)');
    const expiresAt = typeof payload.exp === 'number' ? payload.exp * 1000 : undefined;
    return { sub, ...(expiresAt === undefined ? {} : { expiresAt }), grants: parseGrants(payload.grants) };
  }

  /** jose's error as a refusal a user can act on; never the key. */
  #explain(err: unknown): Error {
    if (err instanceof jose.JWTExpired) {
      const exp = Number(err.payload.exp) * 1000;
      return new TokenError(`token expired at ${new Date(exp).toISOString()}`);
    }
    if (err instanceof jose.JWTClaimValidationFailed) {
      if ((err.claim === 'exp' || err.claim === 'nbf') && err.reason === 'invalid') {
        return new TokenError(`token claim "${err.claim}" must be a NumericDate (seconds since the epoch)`);
      }
      if (err.claim === 'nbf') {
        const nbf = Number(err.payload.nbf) * 1000;
        return new TokenError(`token not valid before ${new Date(nbf).toISOString()}`);
      }
      if (err.claim === 'iss') {
        return new TokenError(
          `token issuer ${JSON.stringify(err.payload.iss)?.slice(0, 80)} is not auth.issuer ${JSON.stringify(this.#issuer)}`,
        );
      }
      if (err.claim === 'aud') {
        return new TokenError(
          `token audience ${JSON.stringify(err.payload.aud)?.slice(0, 80)} does not include auth.audience ${JSON.stringify(this.#audience)}`,
        );
      }
      return new TokenError(`token claim "${err.claim}" is invalid: ${err.message}`);
    }
    if (err instanceof jose.JWSSignatureVerificationFailed) {
      return new TokenError('token signature does not verify (wrong secret or altered token)');
    }
    if (err instanceof jose.JWKSNoMatchingKey) {
      return new TokenError(`no key of the key set ${this.#jwksUrl} matches the token (its kid and alg)`);
    }
    if (err instanceof jose.JWKSTimeout) {
      return new TokenError(
        `the key set ${this.#jwksUrl} did not answer in time, so the token cannot be checked`,
      );
    }
    if (err instanceof jose.JWKSInvalid || err instanceof jose.JWKSMultipleMatchingKeys) {
      return new TokenError(`the key set ${this.#jwksUrl} is unusable: ${err.message}`);
    }
    if (
      err instanceof jose.JWTInvalid ||
      err instanceof jose.JWSInvalid ||
      err instanceof jose.JOSENotSupported
    ) {
      return new TokenError(`token is not a valid JWT: ${err.message}`);
    }
    if (err instanceof jose.JOSEError || err instanceof TypeError) {
      // Key-set fetch failures (connection refused, not 200, not JSON) arrive as these.
      const cause = (err as { cause?: { message?: string } }).cause?.message;
      return new TokenError(
        `cannot fetch the key set ${this.#jwksUrl}: ${err.message}${cause ? ` (${cause})` : ''}; the token cannot be checked`,
      );
    }
    return err as Error;
  }
}

/** The verifier the auth settings describe, or null when tokens are off (no secret, no key set). */
export function createTokenVerifier(auth: {
  jwtSecret: string;
  jwksUrl?: string;
  jwtAlgorithms?: readonly string[];
  issuer?: string;
  audience?: string;
  jwksTimeoutMs?: number;
  jwksCooldownMs?: number;
  jwksCacheMaxAgeMs?: number;
}): TokenVerifier | null {
  if (!auth.jwtSecret && !auth.jwksUrl) return null;
  return new TokenVerifier({
    secret: auth.jwtSecret,
    jwksUrl: auth.jwksUrl,
    algorithms: auth.jwtAlgorithms,
    issuer: auth.issuer,
    audience: auth.audience,
    jwksTimeoutMs: auth.jwksTimeoutMs,
    jwksCooldownMs: auth.jwksCooldownMs,
    jwksCacheMaxAgeMs: auth.jwksCacheMaxAgeMs,
  });
}
