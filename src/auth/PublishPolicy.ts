import { timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { AuthConfig } from '../config/schema.ts';
import { createTokenVerifier, granted, looksLikeJwt, TokenError, type TokenVerifier } from './Tokens.ts';

export interface PublishRequest {
  readonly protocol: string;
  readonly path: string;
  readonly remoteAddress: string;
  /** The stream key or bearer token the client presented, if any. */
  readonly key?: string;
}

/** Resolves to null when the publish is allowed, else the reason it is refused (shown to the client and logged). */
export type PublishPolicy = (request: PublishRequest) => string | null | Promise<string | null>;

export function isLoopback(address: string): boolean {
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (a === '::1') return true;
  return isIP(a) === 4 && a.startsWith('127.');
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** What the policy reads of the auth settings (`jwtSecret` and `jwksUrl` absent: tokens off). */
export type PublishAuth = Pick<AuthConfig, 'loopbackPublish' | 'publishKey'> & Partial<AuthConfig>;

/**
 * Secure by default: loopback may publish, anyone else needs the configured key, or a signed token
 * (src/auth/Tokens.ts, with `auth.jwtSecret`) granting `publish` on the stream path — presented where a key
 * goes (WHIP's bearer, RTMP's `?key=`). With neither configured, remote publishing is refused outright.
 */
export function createPublishPolicy(
  auth: PublishAuth,
  tokens: TokenVerifier | null = createTokenVerifier({ ...auth, jwtSecret: auth.jwtSecret ?? '' }),
): PublishPolicy {
  return async ({ path, remoteAddress, key }) => {
    const isKey = key !== undefined && auth.publishKey !== '' && sameSecret(key, auth.publishKey);
    if (key !== undefined && tokens && !isKey && looksLikeJwt(key)) {
      try {
        const claims = await tokens.verify(key);
        return granted(claims.grants, path, 'publish')
          ? null
          : `publish refused for "${path}": the token of ${claims.sub} grants no publish on it`;
      } catch (err) {
        if (err instanceof TokenError) return `publish refused for "${path}": ${err.message}`;
        throw err;
      }
    }
    if (key !== undefined && key !== '' && auth.publishKey !== '') {
      return sameSecret(key, auth.publishKey) ? null : `wrong publish key for "${path}"`;
    }
    if (auth.loopbackPublish && isLoopback(remoteAddress)) return null;
    if (tokens) {
      return `publish refused for "${path}" from ${remoteAddress}: a token granting publish on it${auth.publishKey === '' ? '' : ' or the publish key'} is required`;
    }
    if (auth.publishKey === '') {
      return `publish refused for "${path}" from ${remoteAddress}: remote publishing is off until auth.publishKey is configured`;
    }
    return `publish refused for "${path}" from ${remoteAddress}: a publish key is required (?key=… on the stream name)`;
  };
}
