import { randomBytes } from 'node:crypto';

/**
 * The last segment of a WHIP/WHEP resource URL. RFC 9725 §4.2: whoever knows the URL may PATCH or DELETE the
 * session, so the URL is a capability held only by the client that created it: 256 random bits, never listed
 * or logged (sessions are listed and logged by their separate `id`).
 */
export function newResourceId(): string {
  return randomBytes(32).toString('base64url');
}
