import type { FastifyReply, FastifyRequest } from 'fastify';
import { withManifestQuery } from '../../auth/MediaUriSigning.ts';
import type { HlsPackager } from '../hls/HlsPackager.ts';
import { HlsRequestError } from '../hls/HlsPackager.ts';
import {
  answerUnavailable,
  authorizeDelivery,
  checkEpoch,
  type DeliveryAccess,
  type DeliveryProtocol,
  livePackager,
  parseResourceRequest,
  unknownResource,
} from '../hls/resourceRequest.ts';
import { IMMUTABLE, sendMediaBody } from '../hls/sendMediaBody.ts';
import { renderMpd } from './mpd.ts';

const INIT = /^init-([0-9a-z]{1,16})-(\d{1,9})-t(\d{1,9})\.mp4$/;
const SEGMENT = /^seg-([0-9a-z]{1,16})-(\d{1,15})-t(\d{1,9})\.m4s$/;

const DASH: DeliveryProtocol = {
  prefix: 'dash',
  label: 'DASH',
  entry: 'manifest.mpd',
  entryKind: 'manifest',
};

type DashResource =
  | { kind: 'init'; epoch: string; generation: number; trackId: number }
  | { kind: 'segment'; epoch: string; msn: number; trackId: number };

function parseDashName(name: string): DashResource {
  let m = INIT.exec(name);
  if (m) return { kind: 'init', epoch: m[1], generation: Number(m[2]), trackId: Number(m[3]) };
  m = SEGMENT.exec(name);
  if (m) return { kind: 'segment', epoch: m[1], msn: Number(m[2]), trackId: Number(m[3]) };
  throw unknownResource(name, DASH);
}

export interface DashCounters {
  manifests: number;
  segments: number;
  inits: number;
  /** Segments requested before they were complete, sent with chunked transfer as they were produced. */
  streamedSegments: number;
  /** Manifest requests held until the timeline's clock anchor was stable. */
  heldManifests: number;
}

/**
 * LL-DASH egress over the same CMAF segments the LL-HLS packager cuts (one packager per stream, fed once):
 * `GET /dash/{path}/manifest.mpd`, its init and $Number$ segments, and `GET /dash/time` for UTCTiming.
 */
export class DashServer {
  readonly counters: DashCounters = {
    manifests: 0,
    segments: 0,
    inits: 0,
    streamedSegments: 0,
    heldManifests: 0,
  };
  readonly #packagers: ReadonlyMap<string, HlsPackager>;
  readonly #access: DeliveryAccess;
  /** The latency the MPD's ServiceDescription asks players to hold, seconds. */
  readonly #targetLatency: number;
  readonly #cache = new WeakMap<HlsPackager, { key: string; text: string }>();

  /** Makes a stream local before it is looked up (a cluster edge pulls it); none on a node alone. */
  readonly #acquire: ((path: string) => Promise<unknown>) | undefined;

  constructor(options: {
    packagers: ReadonlyMap<string, HlsPackager>;
    targetLatencyMs: number;
    /** auth.play and the media URI signer (the HlsServer's); absent: anyone may watch. */
    access?: DeliveryAccess;
    acquire?: (path: string) => Promise<unknown>;
  }) {
    this.#access = options.access ?? { play: null, signer: null };
    this.#packagers = options.packagers;
    this.#acquire = options.acquire;
    this.#targetLatency = options.targetLatencyMs / 1000;
  }

  handle(request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    return answerUnavailable(reply, () => this.#handle(request, reply));
  }

  async #handle(request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    if ((request.params as Record<string, string>)['*'] === 'time') {
      // UTCTiming urn:mpeg:dash:utc:http-iso:2014: the server's clock, never cached.
      return reply
        .header('content-type', 'text/plain; charset=utf-8')
        .header('cache-control', 'no-store')
        .send(new Date().toISOString());
    }
    const { path, name } = parseResourceRequest(request, DASH);
    await this.#acquire?.(path);
    if (name === 'manifest.mpd') {
      const protectedPath = (await authorizeDelivery(request, reply, this.#access, path, DASH, true)) !== '';
      const packager = livePackager(this.#packagers, path);
      // An ended stream has no live edge left to play; a DASH client retries until a publisher returns.
      if (packager.ended) throw new HlsRequestError(404, `stream "${path}" is not live`);
      // During an encoder's start-up burst availabilityStartTime still moves earlier; a player reading the MPD
      // then would keep a late clock. Held until the anchor is stable (about a second after the stream starts).
      if (!packager.anchorStable && !(await this.#stableAnchor(packager, reply))) return reply.hijack();
      const mpd = this.#mpd(packager, request);
      if (!mpd) throw new HlsRequestError(404, `stream "${path}" has no media yet`);
      this.counters.manifests++;
      return reply
        .header('content-type', 'application/dash+xml')
        .header('cache-control', protectedPath ? 'private, max-age=1' : 'public, max-age=1')
        .send(mpd);
    }
    const resource = parseDashName(name);
    await authorizeDelivery(request, reply, this.#access, path, DASH, false);
    const packager = livePackager(this.#packagers, path);
    checkEpoch(packager, resource.epoch, DASH);
    if (resource.kind === 'init') {
      const init = packager.initFor(resource.generation)?.trackInits.get(resource.trackId);
      if (!init) {
        throw new HlsRequestError(
          404,
          `no init segment ${resource.generation} for track ${resource.trackId} of "${path}"`,
        );
      }
      this.counters.inits++;
      return reply
        .header('content-type', 'video/mp4')
        .header('cache-control', IMMUTABLE)
        .send(Buffer.from(init.buffer, init.byteOffset, init.byteLength));
    }
    // Clients ask by the clock, a moment before a segment starts: hold until it begins, then stream it.
    const held: { cancel: (() => void) | null } = { cancel: null };
    const onClose = () => held.cancel?.();
    reply.raw.once('close', onClose);
    try {
      await packager.waitForSegmentStart(resource.msn, (cancel) => {
        held.cancel = cancel;
      });
    } finally {
      reply.raw.off('close', onClose);
    }
    if (reply.raw.destroyed) return reply.hijack();
    const found = packager.findTrackSegment(resource.msn, resource.trackId);
    if ('missing' in found) throw new HlsRequestError(404, found.missing);
    this.counters.segments++;
    if (!found.body.complete) this.counters.streamedSegments++;
    sendMediaBody(reply, found.body, packager.blockTimeoutMs);
    return reply;
  }

  /**
   * Waits for the packager's anchor to be stable; false when the client left meanwhile. A wait that outlasts
   * the block timeout serves the MPD as it is (it then asks for a reload every part while it settles).
   */
  async #stableAnchor(packager: HlsPackager, reply: FastifyReply): Promise<boolean> {
    const held: { cancel: (() => void) | null } = { cancel: null };
    const onClose = () => held.cancel?.();
    reply.raw.once('close', onClose);
    try {
      await packager.waitForStableAnchor((cancel) => {
        held.cancel = cancel;
      });
    } catch (err) {
      if (!(err instanceof HlsRequestError && err.statusCode === 503)) throw err;
    } finally {
      reply.raw.off('close', onClose);
    }
    this.counters.heldManifests++;
    return !reply.raw.destroyed;
  }

  #mpd(packager: HlsPackager, request: FastifyRequest): string | null {
    const timeUrl = `${request.protocol}://${request.host}/dash/time`;
    const { play, signer } = this.#access;
    const signature =
      signer && play?.requiresToken(packager.path) ? signer.query(`/dash/${packager.path}/`) : '';
    const key = `${packager.timeline?.id}:${packager.timeline?.wallMs}:${packager.anchorSettling}:${packager.segments.at(-1)?.msn}:${timeUrl}:${signature}`;
    const cached = this.#cache.get(packager);
    if (cached?.key === key) return cached.text;
    const rendered = renderMpd(packager, { timeUrl, targetLatency: this.#targetLatency });
    const text = rendered === null ? null : withManifestQuery(rendered, signature);
    if (text) this.#cache.set(packager, { key, text });
    return text;
  }
}
