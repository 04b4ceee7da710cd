import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import type { ClusterConfig } from '../config/schema.ts';
import type { GopCacheLimits } from '../core/GopCache.ts';
import type { Logger } from '../core/log.ts';
import type { Publisher, Stream } from '../core/Stream.ts';
import { StreamBusyError, type StreamRegistry, type StreamResolver } from '../core/StreamRegistry.ts';
import { InvalidPathError, parseStreamPath } from '../shared/streamPath.ts';
import { atCapacity, HEARTBEAT_MS, type NodeInfo, NodeRegistry } from './NodeRegistry.ts';
import { resolveNodeId } from './nodeId.ts';
import { RelayPull } from './RelayPull.ts';
import { RelayServer } from './RelayServer.ts';
import { createRedisClient, redact } from './redis.ts';
import { type StreamClaim, StreamDirectory } from './StreamDirectory.ts';
import { type ClusterViewers, StreamViewerTotals } from './StreamViewers.ts';

/** A viewer asking for a stream the edge is pulling waits at most this long for the first frames. */
const RESOLVE_WAIT_MS = 4000;
/** How long a client told 503 should wait before trying this node again. */
const RETRY_AFTER_S = 2;
/** Load units: one busy core counts as this many viewers (a node serves ~1,000 WebRTC viewers per core). */
const VIEWERS_PER_CORE = 1000;

interface OriginEntry {
  readonly stream: Stream;
  readonly publisher: Publisher;
  /** null while Redis was unreachable at publish: claimed at the next heartbeat that reaches it. */
  claim: StreamClaim | null;
}

export interface ClusterEndpoints {
  http: string;
  rtmp: string;
  webrtcUdp: string;
}

/**
 * This node's part in a cluster (cluster.redis set): its entry in the node registry, the directory claims of
 * the streams published here, the relays it pulls (edge) and serves (origin), and routing. Redis is only the
 * control plane: while it is unreachable every stream already flowing keeps flowing, and the node says it is
 * degraded until Redis answers again, when it registers and re-claims at once.
 */
export class ClusterNode implements StreamResolver {
  readonly id: string;
  readonly config: ClusterConfig;
  readonly redis: Redis;
  readonly relay: RelayServer;
  readonly directory: StreamDirectory;
  readonly nodeRegistry: NodeRegistry;
  /** Every live node as of the last heartbeat (this one included), or only this one while degraded. */
  nodes: NodeInfo[] = [];
  /** Why the cluster is degraded ('' when it is not). */
  degradedReason = 'not registered yet';
  readonly counters = { upstreamBytes: 0, relaysInStarted: 0, claimsLost: 0 };
  /** Media viewers per stream over every live node (API, dashboard, messaging presence). */
  readonly viewerTotals = new StreamViewerTotals();
  readonly #origins = new Map<string, OriginEntry>();
  readonly pulls = new Map<string, RelayPull>();
  readonly #registry: StreamRegistry;
  readonly #log: Logger;
  #endpoints: ClusterEndpoints = { http: '', rtmp: '', webrtcUdp: '' };
  #timer: NodeJS.Timeout | null = null;
  #ticking: Promise<void> | null = null;
  #closed = false;
  #cpu = process.cpuUsage();
  #cpuAt = performance.now();
  #cpuCores = 0;
  readonly #startedAt = Date.now();
  /** Viewers sent to each node since its last heartbeat, so one second of arrivals does not herd onto one. */
  readonly #routedSinceHeartbeat = new Map<string, number>();

  constructor(options: {
    config: ClusterConfig;
    registry: StreamRegistry;
    gopLimits?: GopCacheLimits;
    log: Logger;
  }) {
    this.config = options.config;
    this.id = resolveNodeId(options.config.nodeId);
    this.#registry = options.registry;
    this.#log = options.log.child({ component: 'cluster', node: this.id });
    this.redis = createRedisClient(options.config.redis, {
      log: this.#log,
      connectionName: `subsecond:${this.id}:cluster`,
      commandTimeoutMs: options.config.redisCommandTimeoutMs,
    });
    this.nodeRegistry = new NodeRegistry(this.redis);
    // The directory's URL is set in start(), once the HTTP port is bound.
    this.directory = new StreamDirectory(this.redis, this.id, () => this.#endpoints.http);
    this.relay = new RelayServer({
      registry: this.#registry,
      secret: options.config.secret,
      gopLimits: options.gopLimits,
      log: this.#log,
      hello: (path) => {
        const claim = this.#origins.get(path)?.claim;
        return claim ? { node: this.id, generation: claim.generation, publishedAt: claim.publishedAt } : null;
      },
    });
    this.#registry.resolver = this;
    this.#registry.on('unpublished', (stream) => this.#onUnpublished(stream));
    this.redis.on('ready', () => {
      if (!this.#closed) void this.tick();
    });
  }

  get degraded(): boolean {
    return this.degradedReason !== '';
  }

  /** Registers this node (waiting up to ~2 s for Redis) and starts the heartbeat. Never fails for Redis. */
  async start(endpoints: ClusterEndpoints): Promise<void> {
    this.#endpoints = endpoints;
    const deadline = Date.now() + 2500;
    while (this.redis.status !== 'ready' && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    await this.tick();
    if (this.degraded) {
      this.#log.error(
        { redis: redact(this.config.redis), reason: this.degradedReason },
        'cluster.redis is unreachable at start: this node serves its own streams only, and joins the cluster as soon as Redis answers',
      );
    } else {
      this.#log.info({ redis: redact(this.config.redis), nodes: this.nodes.length }, 'joined the cluster');
    }
    this.#timer = setInterval(() => void this.tick(), HEARTBEAT_MS);
    this.#timer.unref();
  }

  /** One heartbeat: this node's entry, every claim refreshed (or made, if Redis was down at publish). */
  tick(): Promise<void> {
    this.#ticking ??= this.#tick().finally(() => {
      this.#ticking = null;
    });
    return this.#ticking;
  }

  async #tick(): Promise<void> {
    const self = this.selfInfo();
    try {
      if (this.redis.status !== 'ready') throw new Error(`Redis connection is ${this.redis.status}`);
      const nodes = await this.nodeRegistry.heartbeat(self);
      this.nodes = nodes.some((n) => n.id === self.id) ? nodes : [...nodes, self];
      this.viewerTotals.update(this.nodes, self.id);
      this.#routedSinceHeartbeat.clear();
      await Promise.all([...this.#origins].map(([path, entry]) => this.#keepClaim(path, entry)));
      if (this.degraded) {
        if (this.degradedReason !== 'not registered yet')
          this.#log.info('cluster whole again: registered and claims renewed');
        this.degradedReason = '';
      }
    } catch (err) {
      this.nodes = [self];
      this.viewerTotals.update(this.nodes, self.id);
      const reason = `Redis unreachable (${(err as Error).message})`;
      if (this.degradedReason !== reason && this.degradedReason !== 'not registered yet') {
        this.#log.warn(
          { reason },
          'cluster degraded: streams keep flowing; registry and directory wait for Redis',
        );
      }
      this.degradedReason = reason;
    }
  }

  async #keepClaim(path: string, entry: OriginEntry): Promise<void> {
    if (entry.claim) {
      if (await this.directory.refresh(entry.claim)) return;
      this.#superseded(path, entry, 'a newer claim replaced this origin');
      return;
    }
    const result = await this.directory.claim(path, entry.stream.publishedAt);
    if (result.ok) {
      entry.claim = result.claim;
      return;
    }
    this.#superseded(path, entry, `node ${result.holder.node} became its origin while Redis was unreachable`);
  }

  /** A stale origin: it must stop publishing, and must not touch the newer claim (release compares). */
  #superseded(path: string, entry: OriginEntry, why: string): void {
    this.counters.claimsLost++;
    this.#origins.delete(path);
    this.#log.warn({ path, generation: entry.claim?.generation }, `publisher of "${path}" dropped: ${why}`);
    if (entry.stream.publisher === entry.publisher) this.#registry.kick(path, why);
  }

  #onUnpublished(stream: Stream): void {
    const entry = this.#origins.get(stream.path);
    if (!entry || entry.stream !== stream || stream.publisher === entry.publisher) return;
    this.#origins.delete(stream.path);
    const claim = entry.claim;
    if (!claim) return;
    this.directory.release(claim).catch((err) => {
      // The claim expires by itself within its TTL.
      this.#log.warn({ path: stream.path, err: (err as Error).message }, 'directory release failed');
    });
  }

  // StreamResolver

  async confirmPublish(stream: Stream, publisher: Publisher): Promise<void> {
    if (publisher instanceof RelayPull) return;
    const path = stream.path;
    let result: Awaited<ReturnType<StreamDirectory['claim']>>;
    try {
      if (this.redis.status !== 'ready') throw new Error(`Redis connection is ${this.redis.status}`);
      result = await this.directory.claim(path, stream.publishedAt);
    } catch (err) {
      this.#log.warn(
        { path, err: (err as Error).message },
        'directory unreachable: publish accepted on this node; claimed when Redis answers',
      );
      this.#origins.set(path, { stream, publisher, claim: null });
      return;
    }
    if (!result.ok) {
      this.#log.info(
        { path, origin: result.holder.node },
        'publish refused: the stream is live on another node',
      );
      throw new StreamBusyError(path);
    }
    if (stream.publisher !== publisher) {
      // The publisher left while the claim was made.
      await this.directory.release(result.claim).catch(() => {});
      return;
    }
    this.#origins.set(path, { stream, publisher, claim: result.claim });
    const pull = this.pulls.get(path);
    if (pull) pull.close('this node became the origin');
  }

  touch(path: string): void {
    this.pulls.get(path)?.touch();
  }

  async resolve(path: string): Promise<void> {
    if (this.#closed || this.#origins.has(path)) return;
    let pull = this.pulls.get(path);
    if (!pull) {
      let claim: StreamClaim | null;
      try {
        claim = await this.directory.lookup(path);
      } catch {
        return;
      }
      if (!claim || claim.node === this.id || this.#closed) return;
      pull = this.pulls.get(path);
      if (!pull) {
        const created = new RelayPull({
          path,
          node: this.id,
          secret: this.config.secret,
          registry: this.#registry,
          directory: this.directory,
          log: this.#log,
          idleMs: this.config.relayIdleMs,
          counters: this.counters,
          onClosed: (p) => {
            if (this.pulls.get(path) === p) this.pulls.delete(path);
          },
        });
        this.pulls.set(path, created);
        this.counters.relaysInStarted++;
        created.start(claim);
        pull = created;
      }
    }
    await pull.waitReady(RESOLVE_WAIT_MS);
  }

  // Load and routing

  selfInfo(): NodeInfo {
    const viewers: Record<string, number> = {};
    const streamViewers: Record<string, Record<string, number>> = {};
    let viewersTotal = 0;
    let egress = 0;
    for (const s of this.#registry.list()) {
      const n = s.viewerCount;
      viewersTotal += n;
      egress += s.bitrate * n;
      for (const [p, k] of s.viewers) viewers[p] = (viewers[p] ?? 0) + k;
      if (n > 0) streamViewers[s.path] = Object.fromEntries(s.viewers);
    }
    const relaysOut: Record<string, string[]> = {};
    for (const r of this.relay.relays) {
      relaysOut[r.path] = [...(relaysOut[r.path] ?? []), r.edge];
      egress += this.#registry.get(r.path)?.bitrate ?? 0;
    }
    const now = performance.now();
    if (now - this.#cpuAt >= 500) {
      const used = process.cpuUsage(this.#cpu);
      this.#cpuCores = (used.user + used.system) / 1000 / (now - this.#cpuAt);
      this.#cpu = process.cpuUsage();
      this.#cpuAt = now;
    }
    return {
      id: this.id,
      http: this.#endpoints.http,
      rtmp: this.#endpoints.rtmp,
      webrtcUdp: this.#endpoints.webrtcUdp,
      startedAt: this.#startedAt,
      load: {
        viewers,
        viewersTotal,
        egressBitsPerSecond: Math.round(egress),
        cpu: Math.round(this.#cpuCores * 1000) / 1000,
        streamViewers,
      },
      capacity: { maxViewers: this.config.maxViewers, maxEgressBitrate: this.config.maxEgressBitrate },
      streams: {
        origin: [...this.#origins.keys()],
        relayed: [...this.pulls.values()].filter((p) => p.live).map((p) => p.path),
      },
      relaysOut,
    };
  }

  /** The stream's media viewers on every live node (this one's counted now, others' at their heartbeat). */
  viewersAcrossNodes(path: string): ClusterViewers | null {
    return this.viewerTotals.of(path, this.#registry.get(path)?.viewers);
  }

  #score(node: NodeInfo): number {
    return (
      node.load.viewersTotal +
      node.load.cpu * VIEWERS_PER_CORE +
      (this.#routedSinceHeartbeat.get(node.id) ?? 0)
    );
  }

  /**
   * The node a viewer of `path` should use: among nodes not at capacity, the least loaded of those already
   * carrying the stream (no new relay), else the less loaded of two picked at random (LiveKit's choice).
   * null when every node is at capacity.
   */
  locate(path: string | null): NodeInfo | null {
    const self = this.selfInfo();
    const nodes = this.nodes.map((n) => (n.id === self.id ? self : n));
    if (!nodes.some((n) => n.id === self.id)) nodes.push(self);
    const open = nodes.filter((n) => !atCapacity(n) && n.http);
    if (open.length === 0) return null;
    const carrying = path
      ? open.filter((n) => n.streams.origin.includes(path) || n.streams.relayed.includes(path))
      : [];
    let chosen: NodeInfo;
    if (carrying.length > 0) {
      chosen = carrying.reduce((best, n) => (this.#score(n) < this.#score(best) ? n : best));
    } else {
      const a = open[Math.floor(Math.random() * open.length)];
      const b = open[Math.floor(Math.random() * open.length)];
      chosen = this.#score(b) < this.#score(a) ? b : a;
    }
    this.#routedSinceHeartbeat.set(chosen.id, (this.#routedSinceHeartbeat.get(chosen.id) ?? 0) + 1);
    return chosen;
  }

  /** The locate API, WHIP/WHEP redirects (cluster.redirect) and 503 at capacity. */
  registerRoutes(app: FastifyInstance): void {
    app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
      const url = request.url;
      const q = url.indexOf('?');
      const pathname = q < 0 ? url : url.slice(0, q);
      if (
        request.method === 'GET' &&
        pathname.startsWith('/api/v1/streams/') &&
        pathname.endsWith('/locate')
      ) {
        return this.#answerLocate(
          request,
          reply,
          pathname.slice('/api/v1/streams/'.length, -'/locate'.length),
        );
      }
      if (request.method !== 'POST') return;
      const m = /^\/(whip|whep)\/(.+)$/.exec(pathname);
      if (!m) return;
      let path: string;
      try {
        path = parseStreamPath(decodeURIComponent(m[2]));
      } catch {
        return; // the endpoint itself answers 400
      }
      const self = this.selfInfo();
      const full = atCapacity(self);
      if (!this.config.redirect) {
        if (full) return this.#unavailable(reply, self);
        return;
      }
      // A publisher goes elsewhere only when this node is full; a viewer wherever locate says.
      const chosen = m[1] === 'whip' && !full ? self : this.locate(m[1] === 'whep' ? path : null);
      if (!chosen) return this.#unavailable(reply, self);
      if (chosen.id === self.id) return;
      this.#log.debug({ path, to: chosen.id, kind: m[1] }, 'redirected');
      return reply
        .status(307)
        .header('location', `${chosen.http}${url}`)
        .header('cache-control', 'no-store')
        .send();
    });
    app.get('/api/v1/cluster', async () => this.describe());
  }

  #unavailable(reply: FastifyReply, self: NodeInfo) {
    return reply
      .status(503)
      .header('retry-after', String(RETRY_AFTER_S))
      .send({
        error: `node ${self.id} is at capacity (${self.load.viewersTotal} viewers, cluster.maxViewers ${self.capacity.maxViewers}, cluster.maxEgressBitrate ${self.capacity.maxEgressBitrate})`,
      });
  }

  async #answerLocate(request: FastifyRequest, reply: FastifyReply, raw: string) {
    let path: string;
    try {
      path = parseStreamPath(decodeURIComponent(raw));
    } catch (err) {
      const message = err instanceof InvalidPathError ? err.message : 'invalid stream path';
      return reply.status(400).send({ error: message });
    }
    const transport = String((request.query as Record<string, unknown>).transport ?? '');
    const chosen = this.locate(path);
    if (!chosen)
      return reply
        .status(503)
        .header('retry-after', String(RETRY_AFTER_S))
        .send({ error: 'every node of the cluster is at capacity' });
    const urls: Record<string, string> = {
      whep: `${chosen.http}/whep/${path}`,
      whip: `${chosen.http}/whip/${path}`,
      mse: `${chosen.http.replace(/^http/, 'ws')}/mse/${path}`,
      hls: `${chosen.http}/hls/${path}/index.m3u8`,
      dash: `${chosen.http}/dash/${path}/manifest.mpd`,
      rtmp: chosen.rtmp ? `${chosen.rtmp}/${path}` : '',
    };
    if (transport && !(transport in urls)) {
      return reply.status(400).send({
        error: `unknown transport "${transport.slice(0, 32)}": one of ${Object.keys(urls).join(', ')}`,
      });
    }
    return reply.header('cache-control', 'no-store').send({
      path,
      node: chosen.id,
      http: chosen.http,
      url: transport ? urls[transport] : urls.whep,
      urls,
      degraded: this.degraded,
    });
  }

  /** The cluster as the dashboard shows it. */
  describe() {
    const self = this.selfInfo();
    return {
      node: this.id,
      degraded: this.degraded,
      degradedReason: this.degradedReason || null,
      nodes: this.nodes.map((n) => (n.id === self.id ? self : n)),
      relaysIn: [...this.pulls.values()].map((p) => ({ path: p.path, origin: p.upstreamNode, live: p.live })),
      relaysOut: [...this.relay.relays].map((r) => ({ path: r.path, edge: r.edge, bytes: r.bytesSent })),
      keyframeRequestsFromEdges: this.relay.counters.keyframeRequests,
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    for (const pull of [...this.pulls.values()]) pull.close('server shutting down');
    this.relay.close();
    if (this.redis.status === 'ready') {
      await Promise.all([
        ...[...this.#origins.values()].map((e) =>
          e.claim ? this.directory.release(e.claim).catch(() => {}) : null,
        ),
        this.nodeRegistry.leave(this.id).catch(() => {}),
      ]);
    }
    this.#origins.clear();
    if (this.#registry.resolver === this) this.#registry.resolver = null;
    this.redis.disconnect();
  }
}
