import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** Who is on the other end of a connection or request. */
export interface Identity {
  /** What messages carry as `from`: a user id from a token, or a server-assigned `anon-…` id. */
  readonly id: string;
  readonly anonymous: boolean;
  /** What a token grants: channel patterns and the actions allowed on them. Unused for anonymous users. */
  readonly grants?: readonly ChannelGrant[];
}

export type ChannelAction = 'subscribe' | 'publish';

export interface ChannelGrant {
  readonly pattern: string;
  readonly actions: readonly ChannelAction[];
}

export interface IdentityRequest {
  readonly headers: IncomingHttpHeaders;
  readonly remoteAddress: string;
  readonly query: URLSearchParams;
}

/**
 * Turns a request into an identity, or a reason to refuse it (the transport answers 401 / closes 4401).
 * Token verification (JWT claims naming paths and actions) plugs in here; until then everyone is anonymous.
 */
export interface IdentityResolver {
  identify(request: IdentityRequest): Identity | { refused: string };
}

/** Every client is anonymous, with an unguessable server-assigned id per connection. */
export const anonymousIdentities: IdentityResolver = {
  identify: () => ({ id: `anon-${randomBytes(6).toString('base64url')}`, anonymous: true }),
};

/** Decides whether an identity may subscribe to or publish on a channel: null when allowed, else why not. */
export interface ChannelPolicy {
  authorize(identity: Identity, channel: string, action: ChannelAction): string | null;
}

/**
 * A channel pattern: `*` matches within one `/`-separated segment, `**` matches anything, everything else is
 * literal. `live/*:chat` matches `live/cam1:chat`, not `live/a/b:chat`; `**` matches every channel.
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
    if (anonymous.some((p) => p.test(channel))) return null;
    for (const grant of identity.grants ?? []) {
      if (grant.actions.includes(action) && compilePattern(grant.pattern).test(channel)) return null;
    }
    const verb = action === 'subscribe' ? 'read' : 'publish on';
    return identity.anonymous
      ? `anonymous clients may not ${verb} channel "${channel}" (messaging.anonymous${action === 'subscribe' ? 'Read' : 'Write'})`
      : `${identity.id} may not ${verb} channel "${channel}"`;
  }
}
