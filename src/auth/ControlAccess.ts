import { timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { isLoopback, isTrustedLoopback, loopbackRefusal } from './PublishPolicy.ts';

/** What an access decision reads of a request (a Fastify request or a raw upgrade request both have it). */
export interface AccessRequest {
  readonly headers: IncomingHttpHeaders;
  readonly socket: { readonly remoteAddress?: string };
}

/** A refused control-API call; `statusCode` is what every error handler here answers with. */
export class ControlAccessError extends Error {
  readonly statusCode = 403;
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The bearer token of an `Authorization: Bearer …` header, or undefined. */
export function bearerToken(headers: IncomingHttpHeaders): string | undefined {
  const auth = headers.authorization ?? '';
  return /^bearer\s+/i.test(auth) ? auth.replace(/^bearer\s+/i, '') : undefined;
}

/**
 * Control-API access: a caller presenting `auth.apiToken` as a bearer token, or a loopback caller. Loopback
 * is the operator's own machine; the token is for everyone else.
 */
export class ControlAccess {
  readonly #apiToken: string;

  constructor(apiToken: string) {
    this.#apiToken = apiToken;
  }

  /** Whether the caller may use the control API (list sessions, kick, see publishers' addresses). */
  allows(request: AccessRequest): boolean {
    const token = bearerToken(request.headers);
    if (this.#apiToken !== '' && token !== undefined && sameSecret(token, this.#apiToken)) return true;
    return isTrustedLoopback(request.socket.remoteAddress ?? '', request.headers);
  }

  /** Throws ControlAccessError (403) naming what the call needs, unless `allows`. */
  authorize(request: AccessRequest): void {
    if (this.allows(request)) return;
    const refusal = isLoopback(request.socket.remoteAddress ?? '') ? loopbackRefusal(request.headers) : null;
    throw new ControlAccessError(
      refusal
        ? `control call refused: ${refusal}; loopback trust needs a loopback Host and Origin${this.#apiToken ? ', or "Authorization: Bearer <auth.apiToken>"' : ''}`
        : this.#apiToken
          ? 'this call needs "Authorization: Bearer <auth.apiToken>"'
          : 'control calls are accepted from loopback only until auth.apiToken is configured',
    );
  }
}
