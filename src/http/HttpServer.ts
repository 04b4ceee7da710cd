import { readFileSync } from 'node:fs';
import { createServer as createHttp } from 'node:http';
import { createServer as createHttps } from 'node:https';
import { join } from 'node:path';
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { Registry as MetricsRegistry } from 'prom-client';
import { bearerToken, ControlAccess } from '../auth/ControlAccess.ts';
import { type PlayPolicy, presentedToken, queryOf } from '../auth/PlayPolicy.ts';
import type { ClusterNode } from '../cluster/ClusterNode.ts';
import { RELAY_ROUTE } from '../cluster/RelayServer.ts';
import type { Config } from '../config/schema.ts';
import { ConnectionsPerIp } from '../core/ConnectionsPerIp.ts';
import { describeStream } from '../core/describe.ts';
import type { Logger } from '../core/log.ts';
import type { Stream } from '../core/Stream.ts';
import type { StreamRegistry } from '../core/StreamRegistry.ts';
import { StreamListEvents } from '../dashboard/StreamListEvents.ts';
import type { MessagingServer } from '../messaging/MessagingServer.ts';
import type { DashServer } from '../protocols/dash/DashServer.ts';
import type { HlsServer } from '../protocols/hls/HlsServer.ts';
import type { MseServer } from '../protocols/mse/MseServer.ts';
import type { WebRtcServer } from '../protocols/webrtc/WebRtcServer.ts';
import type { Recordings } from '../record/Recordings.ts';
import { recordingControlPath, registerRecordingRoutes, stopRecordingRoute } from '../record/routes.ts';
import { HttpError, requestStreamPath } from '../transport/HttpError.ts';
import { refuseUpgrade } from '../transport/refuseUpgrade.ts';
import { readDocsPage, SERVED_DOCS } from './DocsPage.ts';
import { openApiDocument } from './openapi.ts';
import { StaticFiles } from './StaticFiles.ts';

export interface HttpServerOptions {
  config: Config;
  registry: StreamRegistry;
  mse: MseServer;
  messaging: MessagingServer;
  /** LL-HLS, when enabled. */
  hls?: HlsServer | null;
  /** LL-DASH over the LL-HLS packager's segments, when enabled. */
  dash?: DashServer | null;
  /** WHIP/WHEP endpoints, when webrtc.enabled. */
  webrtc?: WebRtcServer | null;
  /** Cluster routes (locate, redirects, the relay), when cluster.redis is set. */
  cluster?: ClusterNode | null;
  /** Recording, DVR and playback of past ranges. */
  recordings?: Recordings | null;
  log: Logger;
  /** The folder holding index.html, play.html, style.css and dist/. */
  webRoot: string;
  /** The RTMP port actually bound (0: RTMP disabled), read when asked: it is bound after this server is made. */
  rtmpPort: () => number;
  startedAt: number;
  /** Who may make control-API calls; by default loopback and `auth.apiToken` bearers. */
  control?: ControlAccess;
  /** What `/metrics` serves (src/http/metrics.ts builds it; server.ts adds what only it knows of). */
  metrics: MetricsRegistry;
  /** auth.play: who may read a stream's details; absent: anyone. */
  play?: PlayPolicy;
}

function streamPathParam(request: FastifyRequest): string {
  return requestStreamPath((request.params as Record<string, string>)['*'] ?? '');
}

/** The one HTTP server: routes only; each protocol owns its endpoint's behaviour. */
export function createHttpServer(options: HttpServerOptions): FastifyInstance {
  const { config, registry, mse, messaging, webRoot } = options;
  const log = options.log.child({ component: 'http' });
  const control = options.control ?? new ControlAccess(config.auth.apiToken);
  const tls =
    config.http.tlsCert && config.http.tlsKey
      ? { cert: readFileSync(config.http.tlsCert), key: readFileSync(config.http.tlsKey) }
      : null;
  // Request logging at info would drown the media logs; errors are still logged by the error handler.
  // Closing ends every connection, not only idle ones: a client holding a request open (half-sent headers, a
  // player reconnecting its WebSocket while the server shuts down) kept close() pending forever.
  // Node's defaults keep a half-sent request head 60 s and a request 300 s; a media server's requests are small
  // (the long-lived part is the response), so a slow client is cut off far sooner. The check interval must be
  // below the timeouts or they fire up to 30 s late.
  const serverOptions = {
    headersTimeout: config.http.headersTimeoutMs,
    requestTimeout: config.http.requestTimeoutMs,
    connectionsCheckingInterval: Math.min(1000, config.http.headersTimeoutMs),
  };
  const common = {
    loggerInstance: log,
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: true,
    serverFactory: (handler: Parameters<typeof createHttp>[1]) =>
      tls ? createHttps({ ...tls, ...serverOptions }, handler) : createHttp(serverOptions, handler),
  };
  const app = Fastify(common) as unknown as FastifyInstance;
  // http.corsOrigin opens media and messaging to other sites' pages; the control API (and /metrics, /healthz)
  // is never CORS-open, so a page the operator happens to open cannot drive it from the operator's browser.
  app.addHook('onRequest', async (request, reply) => {
    if (!isControlPath(request.method, request.url))
      reply.header('access-control-allow-origin', config.http.corsOrigin);
  });

  // With a cluster, `viewers.acrossNodes` sums the stream's viewers over every live node.
  const describe = (stream: Stream, withAddress: boolean) => {
    const described = describeStream(stream, withAddress);
    const acrossNodes = options.cluster?.viewersAcrossNodes(stream.path);
    return acrossNodes ? { ...described, viewers: { ...described.viewers, acrossNodes } } : described;
  };
  const streamList = new StreamListEvents(registry, {
    maxBacklogBytes: config.http.eventsMaxBacklogBytes,
    describe,
  });
  const eventStreamsPerIp = new ConnectionsPerIp(
    config.http.maxEventStreamsPerIp,
    'dashboard event streams',
    'http.maxEventStreamsPerIp',
  );
  // preClose: the feeds end before Fastify waits for connections to close.
  app.addHook('preClose', async () => streamList.close());

  const files = new StaticFiles([webRoot, `${webRoot}/dist`]);
  if (files.missing.length) {
    log.warn({ missing: files.missing }, 'web bundle not built: run `npm run build` for the pages to work');
  }
  const { metrics } = options;
  const cluster = options.cluster ?? null;

  const sendFile = (reply: FastifyReply, name: string, cache: string) => {
    const file = files.read(name);
    if (!file) throw new HttpError(404, `no such file: ${name}`);
    return reply.header('content-type', file.contentType).header('cache-control', cache).send(file.body);
  };

  app.setErrorHandler((error: Error & { statusCode?: number }, request, reply) => {
    const status = error.statusCode ?? 500;
    if (status >= 500) request.log.error({ err: error, url: request.url }, 'request failed');
    reply.status(status).send({ error: status >= 500 ? 'internal server error' : error.message });
  });
  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send({ error: `no route for ${request.method} ${request.url.split('?')[0]}` });
  });

  // Before every other route: redirects and 503 at capacity come ahead of the endpoints.
  cluster?.registerRoutes(app);

  // Control API
  app.get('/healthz', async () => ({
    status: cluster?.degraded ? 'cluster degraded' : 'ok',
    uptimeSeconds: Math.round((Date.now() - options.startedAt) / 1000),
    streams: registry.live().length,
    ...(cluster
      ? { cluster: { node: cluster.id, degraded: cluster.degraded, reason: cluster.degradedReason || null } }
      : {}),
  }));
  app.get('/metrics', async (request, reply) => {
    const metricsToken = config.auth.metricsToken;
    if (metricsToken !== '' && bearerToken(request.headers) !== metricsToken) {
      reply.header('www-authenticate', 'Bearer');
      throw new HttpError(401, 'metrics need "Authorization: Bearer <auth.metricsToken>"');
    }
    reply.header('content-type', metrics.contentType);
    return metrics.metrics();
  });
  app.get('/api/v1/streams', async (request) => {
    const withAddress = control.allows(request);
    return { streams: registry.live().map((s) => describe(s, withAddress)) };
  });
  app.get('/api/v1/streams/*', async (request, reply) => {
    const path = streamPathParam(request);
    await authorizeDetails(request, reply, options.play, path);
    const stream = registry.get(path);
    if (!stream?.live) throw new HttpError(404, `stream "${path}" is not live`);
    return describe(stream, control.allows(request));
  });
  app.delete('/api/v1/streams/*', async (request, reply) => {
    control.authorize(request);
    const recording = options.recordings && recordingControlPath(request);
    if (recording && options.recordings) return stopRecordingRoute(options.recordings, recording, reply);
    const path = streamPathParam(request);
    if (!registry.kick(path, 'kicked through the control API')) {
      throw new HttpError(404, `stream "${path}" has no publisher to kick`);
    }
    log.info({ path, by: request.ip }, 'publisher kicked through the API');
    return reply.status(204).send();
  });
  // Preflights: messaging's HTTP publish is for other sites' pages (http.corsOrigin); control calls are not.
  app.options('/api/*', async (request, reply) => {
    if (isControlPath('POST', request.url)) return reply.status(204).send();
    return reply
      .header('access-control-allow-methods', 'POST, OPTIONS')
      .header('access-control-allow-headers', 'authorization, content-type, x-subsecond-identity')
      .status(204)
      .send();
  });
  app.get('/api/v1/server', async () => ({
    uptimeSeconds: Math.round((Date.now() - options.startedAt) / 1000),
    rtmp: { port: options.rtmpPort() },
    mse: {
      viewers: mse.sessions.size,
      ...mse.counters,
      deliveryDelayMs: {
        p50: mse.deliveryDelay.quantile(0.5),
        p90: mse.deliveryDelay.quantile(0.9),
        p99: mse.deliveryDelay.quantile(0.99),
        max: mse.deliveryDelay.max,
        samples: mse.deliveryDelay.count,
      },
    },
    hls: options.hls?.stats() ?? null,
    dash: options.dash?.counters ?? null,
    events: { connections: streamList.clients, cutOff: streamList.cutOff },
  }));
  // LL-HLS: playlists, init segments, segments and parts from memory.
  const hls = options.hls;
  if (hls) app.get('/hls/*', (request, reply) => hls.handle(request, reply));
  const dash = options.dash;
  if (dash) app.get('/dash/*', (request, reply) => dash.handle(request, reply));

  app.get('/api/v1/openapi.json', async () => openApiDocument);
  app.get('/api/v1/events', (request, reply) => {
    const release = eventStreamsPerIp.admit(request.socket.remoteAddress ?? '');
    reply.hijack();
    streamList.serve(request.raw, reply.raw, { withAddresses: control.allows(request), onEnd: release });
  });

  // Messaging: channels over SSE, long-polling and HTTP publish (WebSocket below)
  app.get('/sse/channels/*', (request, reply) => messaging.serveEvents(request, reply));
  app.get('/poll/channels/*', (request, reply) => messaging.servePoll(request, reply));
  app.post('/api/v1/channels/*', { bodyLimit: messaging.bodyLimit }, (request, reply) =>
    messaging.servePublish(request, reply),
  );
  options.webrtc?.registerRoutes(app);
  const recordings = options.recordings;
  if (recordings) {
    registerRecordingRoutes(app, {
      recordings,
      authorizeControl: (request) => control.authorize(request),
    });
  }

  // Pages
  app.get('/', (_request, reply) => sendFile(reply, 'index.html', 'no-cache'));
  app.get('/play/*', (request, reply) => {
    streamPathParam(request);
    return sendFile(reply, 'play.html', 'no-cache');
  });
  app.get('/chat/*', (_request, reply) => sendFile(reply, 'chat.html', 'no-cache'));
  app.get('/publish/*', (request, reply) => {
    streamPathParam(request);
    return sendFile(reply, 'publish.html', 'no-cache');
  });
  app.get('/auction/*', (request, reply) => {
    streamPathParam(request);
    return sendFile(reply, 'auction.html', 'no-cache');
  });
  // The guides (docs/sdk.md …), beside web/ in a clone and in the npm package.
  app.get('/docs/:name', (request, reply) => {
    const name = (request.params as { name: string }).name;
    const page = readDocsPage(join(webRoot, '..', 'docs'), name);
    if (!page) throw new HttpError(404, `no guide "${name}": try ${Object.keys(SERVED_DOCS).join(', ')}`);
    return reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-cache')
      .send(page);
  });
  app.get('/static/:file', (request, reply) =>
    sendFile(reply, (request.params as { file: string }).file, 'no-cache'),
  );

  // WebSocket endpoints. Anything else asking to upgrade is refused, not left hanging.
  app.server.on('upgrade', (request, socket, head) => {
    const pathname = (request.url ?? '/').split('?')[0];
    if (pathname.startsWith('/mse/')) {
      mse.handleUpgrade(request, socket, head, pathname.slice('/mse/'.length));
      return;
    }
    if (cluster && pathname.startsWith(RELAY_ROUTE)) {
      cluster.relay.handleUpgrade(request, socket, head, pathname.slice(RELAY_ROUTE.length));
      return;
    }
    if (pathname.startsWith('/ws/channels/')) {
      messaging.ws.handleUpgrade(request, socket, head, pathname.slice('/ws/channels/'.length));
      return;
    }
    log.info(
      { remote: request.socket.remoteAddress },
      `upgrade refused: no WebSocket endpoint at ${pathname}`,
    );
    refuseUpgrade(socket, 404, `no WebSocket endpoint at ${pathname}`);
  });
  return app;
}

/** auth.play covers a stream's details too: they name its viewers and tracks. */
async function authorizeDetails(
  request: FastifyRequest,
  reply: FastifyReply,
  play: PlayPolicy | undefined,
  path: string,
): Promise<void> {
  if (!play?.requiresToken(path)) return;
  const token = presentedToken(request.headers, queryOf(request.url));
  const refusal = await play.authorize({
    protocol: 'api',
    path,
    remoteAddress: request.socket.remoteAddress ?? '',
    ...(token ? { token } : {}),
  });
  if (refusal) {
    reply.header('www-authenticate', 'Bearer');
    throw new HttpError(refusal.status, refusal.reason);
  }
}

/**
 * Whether a request is a control-API call, which is never CORS-open: everything under /api/ and /metrics and
 * /healthz, except messaging's HTTP publish and the public read of streams players use (GET /api/v1/streams…,
 * which shows no publisher addresses to anonymous callers).
 */
function isControlPath(method: string, url: string): boolean {
  const path = url.split('?')[0];
  if (path === '/metrics' || path === '/healthz') return true;
  if (!path.startsWith('/api/') || path.startsWith('/api/v1/channels/')) return false;
  const read = method === 'GET' || method === 'HEAD';
  return !(read && (path === '/api/v1/streams' || path.startsWith('/api/v1/streams/')));
}
