import { timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { AuthConfig } from '../config/schema.ts';

export interface PublishRequest {
  readonly protocol: string;
  readonly path: string;
  readonly remoteAddress: string;
  /** The stream key or bearer token the client presented, if any. */
  readonly key?: string;
}

/** Returns null when the publish is allowed, else the reason it is refused (shown to the client and logged). */
export type PublishPolicy = (request: PublishRequest) => string | null;

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

/**
 * Secure by default: loopback may publish, anyone else needs the configured key. With no key configured,
 * remote publishing is refused outright.
 */
export function createPublishPolicy(auth: AuthConfig): PublishPolicy {
  return ({ path, remoteAddress, key }) => {
    if (key !== undefined && key !== '' && auth.publishKey !== '') {
      return sameSecret(key, auth.publishKey) ? null : `wrong publish key for "${path}"`;
    }
    if (auth.loopbackPublish && isLoopback(remoteAddress)) return null;
    if (auth.publishKey === '') {
      return `publish refused for "${path}" from ${remoteAddress}: remote publishing is off until auth.publishKey is configured`;
    }
    return `publish refused for "${path}" from ${remoteAddress}: a publish key is required (?key=… on the stream name)`;
  };
}
