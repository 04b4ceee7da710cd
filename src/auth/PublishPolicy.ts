import { timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import type { AuthConfig } from '../config/schema.ts';
import { createTokenVerifier, granted, looksLikeJwt, TokenError, type TokenVerifier } from './Tokens.ts';

export interface PublishRequest {
  readonly protocol: string;
  readonly path: string;
  readonly remoteAddress: string;
  /** The stream key or bearer token the client presented, if any. */
  readonly key?: string;
  /** An HTTP request's headers (WHIP): loopback trust then also needs a loopback Host and Origin. */
  readonly headers?: IncomingHttpHeaders;
}

/** Resolves to null when the publish is allowed, else the reason it is refused (shown to the client and logged). */
export type PublishPolicy = (request: PublishRequest) => string | null | Promise<string | null>;

export function isLoopback(address: string): boolean {
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (a === '::1') return true;
  return isIP(a) === 4 && a.startsWith('127.');
}

/** `localhost`, `127.x.y.z` or `[::1]`, with or without a port. */
function isLoopbackHost(host: string): boolean {
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  return name.toLowerCase() === 'localhost' || isLoopback(name);
}

/**
 * Why a request from a loopback address is still not the operator's own, or null when it is: its `Host` must
 * name loopback (else it came through DNS rebinding: a page of evil.example resolving to 127.0.0.1) and its
 * `Origin`, if any, must be a loopback page (else a page of another site the operator opened sent it).
 */
export function loopbackRefusal(headers: IncomingHttpHeaders): string | null {
  const host = headers.host ?? '';
  if (host !== '' && !isLoopbackHost(host))
    return `Host ${JSON.stringify(host.slice(0, 100))} is not a loopback name`;
  const origin = headers.origin;
  if (origin === undefined) return null;
  let originHost: string;
  try {
    originHost = new URL(origin).host;
  } catch {
    return `Origin ${JSON.stringify(origin.slice(0, 100))} is not a URL`;
  }
  return isLoopbackHost(originHost) ? null : `Origin ${JSON.stringify(origin.slice(0, 100))} is another site`;
}

/**
 * Whether a request comes from the operator's own machine: a loopback address and, for HTTP, a loopback
 * Host and no foreign Origin (loopbackRefusal).
 */
export function isTrustedLoopback(remoteAddress: string, headers?: IncomingHttpHeaders): boolean {
  return isLoopback(remoteAddress) && (headers === undefined || loopbackRefusal(headers) === null);
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
  return async ({ path, remoteAddress, key, headers }) => {
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
    if (auth.loopbackPublish && isLoopback(remoteAddress)) {
      const refusal = headers ? loopbackRefusal(headers) : null;
      if (refusal === null) return null;
      return `publish refused for "${path}": a loopback request whose ${refusal} needs a publish key or token like a remote one`;
    }
    if (tokens) {
      return `publish refused for "${path}" from ${remoteAddress}: a token granting publish on it${auth.publishKey === '' ? '' : ' or the publish key'} is required`;
    }
    if (auth.publishKey === '') {
      return `publish refused for "${path}" from ${remoteAddress}: remote publishing is off until auth.publishKey is configured`;
    }
    return `publish refused for "${path}" from ${remoteAddress}: a publish key is required (?key=… on the stream name)`;
  };
}
