import type { IncomingHttpHeaders } from 'node:http';
import { granted, TokenError, type TokenGrant, type TokenVerifier } from './Tokens.ts';

/** `open`: anyone may watch (the default); `token`: a token granting `play` on the path is required. */
export type PlayMode = 'open' | 'token';

export interface PlayRequest {
  readonly protocol: 'whep' | 'mse' | 'hls' | 'dash' | 'rtmp' | 'api';
  readonly path: string;
  readonly remoteAddress: string;
  /** The token the viewer presented (bearer, `?token=`), if any. */
  readonly token?: string;
}

/** Why a viewer is refused: 401 without a usable token, 403 with a valid one that grants no play here. */
export interface PlayRefusal {
  readonly status: 401 | 403;
  readonly reason: string;
}

/** Verified tokens kept this long at most (and never past their `exp`): playlist polls re-present them. */
const VERIFIED_TTL_MS = 60_000;
const VERIFIED_MAX = 10_000;

/**
 * Decides who may watch a path. With `token` the viewer's token must verify (src/auth/Tokens.ts) and grant
 * `play` on the path; a verified token is remembered briefly so that a player polling a playlist five times
 * a second costs one signature check, not five.
 */
export class PlayPolicy {
  readonly #modeFor: (path: string) => PlayMode;
  readonly #tokens: TokenVerifier | null;
  readonly #verified = new Map<string, { grants: readonly TokenGrant[]; sub: string; until: number }>();

  constructor(modeFor: (path: string) => PlayMode, tokens: TokenVerifier | null) {
    this.#modeFor = modeFor;
    this.#tokens = tokens;
  }

  requiresToken(path: string): boolean {
    return this.#modeFor(path) === 'token';
  }

  /** Null when the viewer may watch; else the status and the reason (shown to the viewer and logged). */
  async authorize(request: PlayRequest): Promise<PlayRefusal | null> {
    const { path, token } = request;
    if (!this.requiresToken(path)) return null;
    if (token === undefined || token === '') {
      return {
        status: 401,
        reason: `play refused for "${path}": a token granting play on it is required (auth.play is token)`,
      };
    }
    if (!this.#tokens) {
      return {
        status: 401,
        reason: `play refused for "${path}": tokens cannot be checked (neither auth.jwtSecret nor auth.jwksUrl is configured)`,
      };
    }
    const now = Date.now();
    let entry = this.#verified.get(token);
    if (entry && entry.until <= now) {
      this.#verified.delete(token);
      entry = undefined;
    }
    if (!entry) {
      try {
        const claims = await this.#tokens.verify(token, now);
        entry = {
          grants: claims.grants,
          sub: claims.sub,
          until: Math.min(claims.expiresAt ?? Number.POSITIVE_INFINITY, now + VERIFIED_TTL_MS),
        };
      } catch (err) {
        if (err instanceof TokenError)
          return { status: 401, reason: `play refused for "${path}": ${err.message}` };
        throw err;
      }
      if (this.#verified.size >= VERIFIED_MAX) this.#verified.clear();
      this.#verified.set(token, entry);
    }
    if (!granted(entry.grants, path, 'play')) {
      return {
        status: 403,
        reason: `play refused for "${path}": the token of ${entry.sub} grants no play on it`,
      };
    }
    return null;
  }
}

/** The token of a request: `?token=` (browsers cannot set headers on WebSockets or media URLs) or a bearer. */
export function presentedToken(headers: IncomingHttpHeaders, query: URLSearchParams): string | undefined {
  const fromQuery = query.get('token');
  if (fromQuery !== null) return fromQuery;
  const authorization = headers.authorization;
  if (typeof authorization === 'string' && /^Bearer\s+/i.test(authorization)) {
    return authorization.replace(/^Bearer\s+/i, '').trim();
  }
  return undefined;
}

/** The query string of a URL (`/a?b=c` → `b=c`) as URLSearchParams. */
export function queryOf(url: string | undefined): URLSearchParams {
  const q = (url ?? '').indexOf('?');
  return new URLSearchParams(q < 0 ? '' : (url ?? '').slice(q + 1));
}
