/**
 * A channel name is 1-256 characters of `[A-Za-z0-9_.:/-]`, e.g. `live/cam1:chat`: a stream path, a colon and
 * a topic, by convention. Names never reach the file system; the bound keeps keys and log lines small.
 */
const CHANNEL_NAME = /^[A-Za-z0-9_.:/-]{1,256}$/;

export class InvalidChannelError extends Error {
  readonly channel: string;
  constructor(channel: string, why: string) {
    super(`invalid channel name ${JSON.stringify(channel.slice(0, 200))}: ${why}`);
    this.channel = channel;
  }
}

/** Returns the name unchanged when valid, else throws InvalidChannelError naming the offending value. */
export function parseChannelName(raw: unknown): string {
  if (typeof raw !== 'string') throw new InvalidChannelError(String(raw), 'it must be a string');
  if (raw.length === 0) throw new InvalidChannelError(raw, 'it is empty');
  if (raw.length > 256) throw new InvalidChannelError(raw, 'it is longer than 256 characters');
  if (!CHANNEL_NAME.test(raw)) {
    throw new InvalidChannelError(raw, 'use only the characters A-Z a-z 0-9 _ . : / -');
  }
  return raw;
}

/** The name from a URL path segment (percent-decoded), or InvalidChannelError. */
export function channelFromUrlPath(rawPath: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    throw new InvalidChannelError(rawPath, 'it is not valid percent-encoding');
  }
  return parseChannelName(decoded.replace(/\/+$/, ''));
}

/**
 * The stream a channel belongs to: the part before the first `:` (`live/cam1:chat` → `live/cam1`), or null
 * when the name has no topic.
 */
export function streamPathOf(channel: string): string | null {
  const colon = channel.indexOf(':');
  return colon > 0 ? channel.slice(0, colon) : null;
}
