import type { FastifyReply, FastifyRequest } from 'fastify';
import { type MediaUriSigner, withPlaylistQuery } from '../../auth/MediaUriSigning.ts';
import type { PlayPolicy } from '../../auth/PlayPolicy.ts';
import type { HlsConfig } from '../../config/schema.ts';
import { CmafFeed } from '../../core/CmafFeed.ts';
import { DelayHistogram } from '../../core/DelayHistogram.ts';
import type { GopCacheLimits } from '../../core/GopCache.ts';
import type { Logger } from '../../core/log.ts';
import type { Stream } from '../../core/Stream.ts';
import type { StreamRegistry } from '../../core/StreamRegistry.ts';
import { HlsPackager, type HlsPackagerOptions, HlsRequestError } from './HlsPackager.ts';
import { buildResponse, canWritePrebuilt, HttpDate, writePrebuilt } from './PrebuiltResponse.ts';
import {
  answerUnavailable,
  authorizeDelivery,
  checkEpoch,
  type DeliveryProtocol,
  livePackager,
  parseResourceRequest,
  unknownResource,
} from './resourceRequest.ts';
import { IMMUTABLE, sendMediaBody } from './sendMediaBody.ts';

const HLS: DeliveryProtocol = { prefix: 'hls', label: 'HLS', entry: 'index.m3u8', entryKind: 'playlist' };

/** What a URL under /hls/{path}/ names; anything else is a 404 without touching any state. */
export type HlsResource =
  | { kind: 'multivariant' }
  | { kind: 'media' }
  | { kind: 'init'; epoch: string; generation: number }
  | { kind: 'segment'; epoch: string; msn: number }
  | { kind: 'part'; epoch: string; msn: number; index: number };

const INIT = /^init-([0-9a-z]{1,16})-(\d{1,9})\.mp4$/;
const SEGMENT = /^seg-([0-9a-z]{1,16})-(\d{1,15})\.m4s$/;
const PART = /^part-([0-9a-z]{1,16})-(\d{1,15})-(\d{1,6})\.m4s$/;

export function parseResourceName(name: string): HlsResource {
  if (name === 'index.m3u8') return { kind: 'multivariant' };
  if (name === 'media.m3u8') return { kind: 'media' };
  let m = INIT.exec(name);
  if (m) return { kind: 'init', epoch: m[1], generation: Number(m[2]) };
  m = SEGMENT.exec(name);
  if (m) return { kind: 'segment', epoch: m[1], msn: Number(m[2]) };
  m = PART.exec(name);
  if (m) return { kind: 'part', epoch: m[1], msn: Number(m[2]), index: Number(m[3]) };
  throw unknownResource(name, HLS);
}

export interface BlockingQuery {
  msn?: number;
  part?: number;
  skip: boolean;
}

const MAX_SEQUENCE = Number.MAX_SAFE_INTEGER;

/** RFC 8216bis §6.2.5.2 and §6.2.5.1 delivery directives; other query parameters are ignored. */
export function parseBlockingQuery(query: Record<string, unknown>): BlockingQuery {
  const integer = (name: string): number | undefined => {
    const raw = query[name];
    if (raw === undefined) return undefined;
    if (typeof raw !== 'string') throw new HlsRequestError(400, `${name} is given more than once`);
    if (!/^\d{1,16}$/.test(raw) || Number(raw) > MAX_SEQUENCE) {
      throw new HlsRequestError(
        400,
        `${name} must be a non-negative integer, got ${JSON.stringify(raw.slice(0, 40))}`,
      );
    }
    return Number(raw);
  };
  const msn = integer('_HLS_msn');
  const part = integer('_HLS_part');
  if (part !== undefined && msn === undefined) {
    throw new HlsRequestError(400, `_HLS_part=${part} needs _HLS_msn as well (RFC 8216bis §6.2.5.2)`);
  }
  const rawSkip = query._HLS_skip;
  if (rawSkip !== undefined && rawSkip !== 'YES' && rawSkip !== 'v2') {
    throw new HlsRequestError(
      400,
      `_HLS_skip must be YES or v2, got ${JSON.stringify(String(rawSkip).slice(0, 40))}`,
    );
  }
  return { msn, part, skip: rawSkip !== undefined };
}

const PLAYLIST_TYPE = 'application/vnd.apple.mpegurl';
/** A plain playlist is stale after one part or two; a CDN may still collapse concurrent requests. */
const PLAYLIST_CACHE = 'public, max-age=1';

/** A blocking response answers exactly its query, so caches may share it for a target duration. */
function playlistCacheControl(packager: HlsPackager, blocking: boolean): string {
  return blocking ? `public, max-age=${packager.targetDuration}` : PLAYLIST_CACHE;
}

/** A JSON error on a response the framework no longer handles (hijacked to hold it). */
function sendError(reply: FastifyReply, err: HlsRequestError, cors: string): void {
  const res = reply.raw;
  if (res.destroyed || res.headersSent) return;
  const body = JSON.stringify({ error: err.message });
  res.writeHead(err.statusCode, {
    'access-control-allow-origin': cors,
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'retry-after': '1',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

/**
 * A packager's media playlist as whole HTTP responses for its current version: one per form (full or delta,
 * plain or blocking, which differ in cache lifetime) and second (the Date header), built on first use.
 */
interface PlaylistResponses {
  version: number;
  second: number;
  cors: string;
  /** Indexed by (skip ? 1 : 0) + (blocking ? 2 : 0). */
  readonly bytes: (Buffer | undefined)[];
}

export interface HlsCounters {
  playlists: number;
  blockedPlaylists: number;
  parts: number;
  segments: number;
  inits: number;
  streamedResponses: number;
}

/**
 * LL-HLS egress: a packager per live stream, started at publish so the playlist exists when the first
 * player arrives, fed by the stream's shared CmafFeed; `GET /hls/{path}/…` served from memory.
 */
export class HlsServer {
  readonly packagers = new Map<string, HlsPackager>();
  /** Part completion to the held playlist response being written, for requests that had to wait. */
  readonly responseDelay = new DelayHistogram();
  readonly counters: HlsCounters = {
    playlists: 0,
    blockedPlaylists: 0,
    parts: 0,
    segments: 0,
    inits: 0,
    streamedResponses: 0,
  };
  readonly #options: HlsPackagerOptions;
  /** Read by DashServer too: the same packagers, the same policy. */
  readonly play: PlayPolicy | null;
  readonly signer: MediaUriSigner | null;
  readonly #config: HlsConfig;
  readonly #gopLimits: GopCacheLimits | undefined;
  readonly #log: Logger;
  readonly #expiry = new Map<string, NodeJS.Timeout>();
  readonly #registry: StreamRegistry;
  readonly #date = new HttpDate();
  readonly #playlistResponses = new WeakMap<HlsPackager, PlaylistResponses>();
  readonly #onPublished = (stream: Stream) => this.#start(stream);
  readonly #onUnpublished = (stream: Stream) => this.#stop(stream);

  constructor(options: {
    registry: StreamRegistry;
    config: HlsConfig;
    gopLimits?: GopCacheLimits;
    log: Logger;
    /** auth.play, and the signer of media URIs on the paths it protects; absent: anyone may watch. */
    play?: PlayPolicy;
    signer?: MediaUriSigner;
  }) {
    const { config } = options;
    this.play = options.play ?? null;
    this.signer = options.signer ?? null;
    this.#config = config;
    this.#options = {
      segmentTarget: config.segmentTargetMs / 1000,
      partTarget: config.partTargetMs / 1000,
      playlistSegments: config.playlistSegments,
      maxBytes: config.maxBytesPerStream,
      blockTimeoutMs: config.blockTimeoutMs,
    };
    this.#gopLimits = options.gopLimits;
    this.#registry = options.registry;
    this.#log = options.log.child({ component: 'hls' });
    this.#registry.on('published', this.#onPublished);
    this.#registry.on('unpublished', this.#onUnpublished);
    for (const stream of this.#registry.live()) this.#start(stream);
  }

  #start(stream: Stream): void {
    const timer = this.#expiry.get(stream.path);
    if (timer) clearTimeout(timer);
    this.#expiry.delete(stream.path);
    let packager = this.packagers.get(stream.path);
    if (!packager) {
      const signer = this.signer;
      const folder = `/hls/${stream.path}/`;
      packager = new HlsPackager(
        stream.path,
        signer && this.play?.requiresToken(stream.path)
          ? { ...this.#options, mediaUriQuery: () => signer.query(folder) }
          : this.#options,
      );
      this.packagers.set(stream.path, packager);
    }
    packager.attach(CmafFeed.of(stream, this.#gopLimits).addListener(packager));
    this.#log.debug({ path: stream.path, epoch: packager.epoch }, 'packaging started');
  }

  #stop(stream: Stream): void {
    const packager = this.packagers.get(stream.path);
    if (!packager) return;
    if (!packager.ended) packager.onUnpublish();
    // Detaching lets the registry drop the stream; the packager outlives it to end the playlist cleanly.
    packager.detach();
    this.#registry.release(stream);
    const timer = setTimeout(() => {
      this.#expiry.delete(stream.path);
      if (this.packagers.get(stream.path) !== packager || packager.attached) return;
      packager.close();
      this.packagers.delete(stream.path);
      this.#log.debug({ path: stream.path }, 'ended playlist dropped');
    }, this.#config.endedRetentionMs);
    timer.unref();
    this.#expiry.set(stream.path, timer);
  }

  /** `GET /hls/*`: playlists, init segments, segments and parts of one stream. */
  handle(request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    return answerUnavailable(reply, () => this.#handle(request, reply));
  }

  async #handle(request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    const { path, name } = parseResourceRequest(request, HLS);
    // In a cluster an edge pulls the stream from its origin first; every request keeps the pull held.
    await this.#registry.acquire(path);
    const resource = parseResourceName(name);
    const viewerQuery = await authorizeDelivery(
      request,
      reply,
      this,
      path,
      HLS,
      resource.kind === 'multivariant' || resource.kind === 'media',
    );
    const packager = livePackager(this.packagers, path);
    switch (resource.kind) {
      case 'multivariant': {
        const query = parseBlockingQuery(request.query as Record<string, unknown>);
        if (query.msn !== undefined) {
          throw new HlsRequestError(
            400,
            'blocking reload directives apply to the media playlist (media.m3u8)',
          );
        }
        try {
          await this.#wait(packager, reply, undefined, undefined, true);
        } catch (err) {
          // A stream slow to make two segments (a long GOP) is joined as it is rather than refused.
          if (!(err instanceof HlsRequestError && err.statusCode === 503)) throw err;
        }
        if (reply.sent || reply.raw.destroyed) return reply;
        this.counters.playlists++;
        // The viewer's token rides on the media playlist URI: a player reloads that URI as it was written.
        return reply
          .header('content-type', PLAYLIST_TYPE)
          .header('cache-control', viewerQuery ? 'private, no-store' : PLAYLIST_CACHE)
          .send(withPlaylistQuery(packager.multivariantPlaylist(), viewerQuery));
      }
      case 'media': {
        const query = parseBlockingQuery(request.query as Record<string, unknown>);
        const cors = String(reply.getHeader('access-control-allow-origin') ?? '*');
        const answer = (waited: boolean) => this.#sendMediaPlaylist(reply, packager, query, cors, waited);
        const fail = (err: HlsRequestError) => sendError(reply, err, cors);
        const cancel = packager.holdFor(query.msn, query.part, () => answer(true), fail);
        // Written straight to the socket, here or from holdFor the moment the part completes.
        reply.hijack();
        if (cancel) reply.raw.once('close', cancel);
        else answer(false);
        return reply;
      }
      case 'init': {
        const init = resource.epoch === packager.epoch ? packager.initFor(resource.generation) : undefined;
        if (!init) throw new HlsRequestError(404, `no init segment ${resource.generation} for "${path}"`);
        this.counters.inits++;
        return reply
          .header('content-type', 'video/mp4')
          .header('cache-control', IMMUTABLE)
          .send(Buffer.from(init.bytes.buffer, init.bytes.byteOffset, init.bytes.byteLength));
      }
      case 'segment':
      case 'part': {
        checkEpoch(packager, resource.epoch, HLS);
        const found =
          resource.kind === 'part'
            ? packager.findPart(resource.msn, resource.index)
            : packager.findSegment(resource.msn);
        if ('missing' in found) throw new HlsRequestError(404, found.missing);
        if (resource.kind === 'part') this.counters.parts++;
        else this.counters.segments++;
        sendMediaBody(reply, found.body, packager.blockTimeoutMs);
        if (!found.body.complete) this.counters.streamedResponses++;
        return reply;
      }
    }
  }

  /**
   * Answers a media playlist request. Runs synchronously inside the part's completion for held requests, so
   * the last of a thousand leaves right after the first; it must not throw.
   */
  #sendMediaPlaylist(
    reply: FastifyReply,
    packager: HlsPackager,
    query: BlockingQuery,
    cors: string,
    waited: boolean,
  ): void {
    const res = reply.raw;
    if (res.destroyed || res.headersSent) return;
    try {
      const blocking = query.msn !== undefined;
      if (canWritePrebuilt(reply.request.raw, res)) {
        writePrebuilt(res, this.#playlistResponse(packager, query.skip, blocking, cors));
      } else {
        const body = packager.mediaPlaylist(query.skip);
        res.writeHead(200, {
          'access-control-allow-origin': cors,
          'content-type': PLAYLIST_TYPE,
          'cache-control': playlistCacheControl(packager, blocking),
          'content-length': body.length,
        });
        res.end(body);
      }
      this.counters.playlists++;
      if (blocking) this.counters.blockedPlaylists++;
      if (waited) {
        const part = packager.lastPart;
        if (part) this.responseDelay.record(performance.now() - part.body.completedAt);
      }
    } catch (err) {
      this.#log.error({ err, path: packager.path }, 'media playlist response failed');
      res.destroy();
    }
  }

  /** The whole response for this playlist form, built once per version, form and second for every poller. */
  #playlistResponse(packager: HlsPackager, skip: boolean, blocking: boolean, cors: string): Buffer {
    const second = this.#date.second;
    let cached = this.#playlistResponses.get(packager);
    if (!cached || cached.version !== packager.version || cached.second !== second || cached.cors !== cors) {
      cached = { version: packager.version, second, cors, bytes: [] };
      this.#playlistResponses.set(packager, cached);
    }
    const form = (skip ? 1 : 0) + (blocking ? 2 : 0);
    let bytes = cached.bytes[form];
    if (!bytes) {
      bytes = buildResponse(
        [
          ['access-control-allow-origin', cors],
          ['content-type', PLAYLIST_TYPE],
          ['cache-control', playlistCacheControl(packager, blocking)],
          ['date', this.#date.value],
        ],
        packager.mediaPlaylist(skip),
      );
      cached.bytes[form] = bytes;
    }
    return bytes;
  }

  /** Holds the request per the delivery directives; true when it had to wait. */
  async #wait(
    packager: HlsPackager,
    reply: FastifyReply,
    msn: number | undefined,
    part: number | undefined,
    join = false,
  ): Promise<boolean> {
    const held: { cancel: (() => void) | null } = { cancel: null };
    const waiting = packager.waitFor(
      msn,
      part,
      (cancel) => {
        held.cancel = cancel;
      },
      join,
    );
    if (!held.cancel) {
      await waiting;
      return false;
    }
    let gone = false;
    await new Promise<void>((resolve, reject) => {
      const onClose = () => {
        gone = true;
        held.cancel?.();
        resolve();
      };
      reply.raw.once('close', onClose);
      waiting.then(
        () => {
          reply.raw.off('close', onClose);
          resolve();
        },
        (err: unknown) => {
          reply.raw.off('close', onClose);
          reject(err);
        },
      );
    });
    if (gone) reply.hijack(); // the client left; nothing to answer
    return true;
  }

  stats() {
    return {
      streams: [...this.packagers.values()].map((p) => ({
        path: p.path,
        live: p.attached,
        ended: p.ended,
        segments: p.segments.length,
        bytes: p.bytes,
        waitingRequests: p.waiting,
        targetDuration: p.targetDuration,
      })),
      ...this.counters,
      blockedResponseDelayMs: {
        p50: this.responseDelay.quantile(0.5),
        p99: this.responseDelay.quantile(0.99),
        max: this.responseDelay.max,
        samples: this.responseDelay.count,
      },
    };
  }

  close(): void {
    this.#registry.off('published', this.#onPublished);
    this.#registry.off('unpublished', this.#onUnpublished);
    for (const timer of this.#expiry.values()) clearTimeout(timer);
    this.#expiry.clear();
    for (const p of this.packagers.values()) p.close();
    this.packagers.clear();
  }
}
