import type { FastifyReply, FastifyRequest } from 'fastify';
import type { MediaUriSigner } from '../../auth/MediaUriSigning.ts';
import { type PlayPolicy, presentedToken, queryOf } from '../../auth/PlayPolicy.ts';
import { InvalidPathError, parseStreamPath } from '../../shared/streamPath.ts';
import type { HlsPackager } from './HlsPackager.ts';
import { HlsRequestError } from './HlsPackager.ts';

/*
 * What the LL-HLS and LL-DASH endpoints check alike before serving anything: `/{prefix}/{path}/{name}` split
 * and the stream path validated (nothing of it ever reaches the file system), the stream live, a media URI's
 * epoch that of the packager now serving the path, and a 503 the protocol itself answers.
 */

/** One delivery protocol's mount point and the file a client starts from, for the messages. */
export interface DeliveryProtocol {
  /** `hls`, `dash`: the first URL segment. */
  readonly prefix: string;
  /** `HLS`, `DASH`. */
  readonly label: string;
  /** The resource a player loads first: `index.m3u8`, `manifest.mpd`, and what it is called. */
  readonly entry: string;
  readonly entryKind: string;
}

/** The validated stream path and the resource name of a request to `/{prefix}/*`. */
export function parseResourceRequest(
  request: FastifyRequest,
  protocol: DeliveryProtocol,
): { path: string; name: string } {
  const raw = (request.params as Record<string, string>)['*'] ?? '';
  const slash = raw.lastIndexOf('/');
  if (slash <= 0) {
    throw new HlsRequestError(
      404,
      `no ${protocol.label} resource at /${protocol.prefix}/${raw.slice(0, 100)}: use /${protocol.prefix}/{path}/${protocol.entry}`,
    );
  }
  try {
    return { path: parseStreamPath(raw.slice(0, slash)), name: raw.slice(slash + 1) };
  } catch (err) {
    if (err instanceof InvalidPathError) throw new HlsRequestError(400, err.message);
    throw err;
  }
}

/** The 404 for a name that is none of the protocol's resources. */
export function unknownResource(name: string, protocol: DeliveryProtocol): HlsRequestError {
  return new HlsRequestError(
    404,
    `no ${protocol.label} resource named ${JSON.stringify(name.slice(0, 100))}: the ${protocol.entryKind} is ${protocol.entry}`,
  );
}

/** The packager of a live stream, or 404. */
export function livePackager(packagers: ReadonlyMap<string, HlsPackager>, path: string): HlsPackager {
  const packager = packagers.get(path);
  if (!packager) throw new HlsRequestError(404, `stream "${path}" is not live`);
  return packager;
}

/** A media URI names its packager's epoch; one from before a restart names bytes that are gone. */
export function checkEpoch(packager: HlsPackager, epoch: string, protocol: DeliveryProtocol): void {
  if (epoch !== packager.epoch) {
    throw new HlsRequestError(
      404,
      `"${packager.path}" restarted since this URI was listed; reload ${protocol.entry}`,
    );
  }
}

/**
 * Runs a handler, answering its 503 (a held request that timed out: the protocol's answer, which the client
 * retries) itself: the shared error handler hides the messages of 5xx responses as faults.
 */
export async function answerUnavailable(
  reply: FastifyReply,
  handle: () => Promise<unknown>,
): Promise<unknown> {
  try {
    return await handle();
  } catch (err) {
    if (err instanceof HlsRequestError && err.statusCode === 503 && !reply.sent) {
      return reply
        .status(503)
        .header('cache-control', 'no-store')
        .header('retry-after', '1')
        .send({ error: err.message });
    }
    throw err;
  }
}

/** What decides who may fetch a stream's playlists and media (HlsServer's, shared with DashServer). */
export interface DeliveryAccess {
  readonly play: PlayPolicy | null;
  readonly signer: MediaUriSigner | null;
}

/**
 * auth.play for LL-HLS/LL-DASH: the entry (playlist, manifest) needs the viewer's token; a media URI needs
 * the signature the entry wrote, which a CDN edge can check as well. Resolves to the query the entry hands
 * on to the URIs it names (`token=…`, for the HLS media playlist), '' when the path is open.
 */
export async function authorizeDelivery(
  request: FastifyRequest,
  reply: FastifyReply,
  access: DeliveryAccess,
  path: string,
  protocol: DeliveryProtocol,
  entry: boolean,
): Promise<string> {
  if (!access.play?.requiresToken(path)) return '';
  const query = queryOf(request.url);
  if (entry) {
    const token = presentedToken(request.headers, query);
    const refusal = await access.play.authorize({
      protocol: protocol.prefix === 'hls' ? 'hls' : 'dash',
      path,
      remoteAddress: request.socket.remoteAddress ?? '',
      ...(token ? { token } : {}),
    });
    if (refusal) {
      reply.header('www-authenticate', 'Bearer').header('cache-control', 'no-store');
      throw new HlsRequestError(refusal.status, refusal.reason);
    }
    return `token=${encodeURIComponent(token ?? '')}`;
  }
  const problem = access.signer
    ? access.signer.verify(
        `/${protocol.prefix}/${path}/`,
        query.get('expires') ?? undefined,
        query.get('sig') ?? undefined,
      )
    : 'media URIs of this path cannot be verified (no signer)';
  if (problem) {
    reply.header('cache-control', 'no-store');
    throw new HlsRequestError(403, `${protocol.label} media refused for "${path}": ${problem}`);
  }
  return '';
}
