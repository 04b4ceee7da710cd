import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Short-lived signatures on the media URIs that LL-HLS playlists and LL-DASH manifests write, so segments
 * and parts stay cacheable behind a CDN while only viewers who were let into the playlist can fetch them.
 *
 * A signature covers the stream's media folder (`/hls/live/cam1/`, `/dash/live/cam1/`) and an expiry; the
 * expiry is rounded up to a window of `ttl` seconds, so every viewer in the same window gets the same URIs
 * (one cached copy per resource) and a URI stays valid between one and two `ttl` after it was written.
 * The form is nginx `secure_link`'s: `?expires=E&sig=S` with S = base64url(md5(E + folder + " " + secret)),
 * verified at an edge with
 *
 *     location ~ ^(?<media_dir>/(hls|dash)/.+/)[^/]+\.(m4s|mp4)$ {
 *       secure_link $arg_sig,$arg_expires;
 *       secure_link_md5 "$secure_link_expires$media_dir SECRET";
 *       if ($secure_link = "") { return 403; }
 *       if ($secure_link = "0") { return 410; }
 *       …
 *     }
 *
 * MD5 is what nginx offers; the secret makes it a keyed check, and a forgery needs a preimage-like attack on
 * MD5 with a secret suffix, which is not known to be practical (a collision attack does not help here).
 */
export class MediaUriSigner {
  readonly #secret: string;
  readonly #ttlSeconds: number;
  /** The query per folder for the current window, computed once per window. */
  readonly #queries = new Map<string, { window: number; query: string }>();

  /** `secret` empty: a random one per process (the origin verifies, an edge cannot). */
  constructor(secret: string, ttlSeconds: number) {
    this.#secret = secret === '' ? randomBytes(24).toString('base64url') : secret;
    this.#ttlSeconds = ttlSeconds;
  }

  #signature(expires: number, folder: string): string {
    return createHash('md5').update(`${expires}${folder} ${this.#secret}`).digest('base64url');
  }

  /** `expires=E&sig=S` for the resources under `folder` (starts and ends with `/`), at `now` (ms). */
  query(folder: string, now = Date.now()): string {
    const window = Math.floor(now / 1000 / this.#ttlSeconds);
    const cached = this.#queries.get(folder);
    if (cached?.window === window) return cached.query;
    const expires = (window + 2) * this.#ttlSeconds;
    const query = `expires=${expires}&sig=${this.#signature(expires, folder)}`;
    if (this.#queries.size > 10_000) this.#queries.clear();
    this.#queries.set(folder, { window, query });
    return query;
  }

  /** Null when `expires`/`sig` sign `folder` and have not expired; else why the URI is refused. */
  verify(folder: string, expires: unknown, sig: unknown, now = Date.now()): string | null {
    if (typeof expires !== 'string' || typeof sig !== 'string') {
      return 'this media URI needs the expires and sig the playlist wrote; reload the playlist';
    }
    if (!/^\d{1,12}$/.test(expires))
      return `expires must be seconds since the epoch, got ${expires.slice(0, 20)}`;
    const expected = Buffer.from(this.#signature(Number(expires), folder));
    const given = Buffer.from(sig);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      return 'the signature of this media URI does not verify (altered or forged)';
    }
    if (now / 1000 >= Number(expires)) {
      return `this media URI expired at ${new Date(Number(expires) * 1000).toISOString()}; reload the playlist`;
    }
    return null;
  }
}

/** Appends `query` to every URI of an HLS playlist (URI="…" attributes and URI lines). */
export function withPlaylistQuery(playlist: string, query: string): string {
  if (query === '') return playlist;
  const join = (uri: string) => `${uri}${uri.includes('?') ? '&' : '?'}${query}`;
  return playlist
    .split('\n')
    .map((line) => {
      if (line === '') return line;
      if (!line.startsWith('#')) return join(line);
      return line.replace(/URI="([^"]+)"/g, (_m, uri: string) => `URI="${join(uri)}"`);
    })
    .join('\n');
}

/** Appends `query` to a DASH manifest's SegmentTemplate `initialization` and `media` URIs. */
export function withManifestQuery(mpd: string, query: string): string {
  if (query === '') return mpd;
  const escaped = query.replace(/&/g, '&amp;');
  return mpd.replace(
    / (initialization|media)="([^"]+)"/g,
    (_m, name: string, uri: string) => ` ${name}="${uri}${uri.includes('?') ? '&amp;' : '?'}${escaped}"`,
  );
}
