import { readFileSync } from 'node:fs';
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import { type PlayPolicy, presentedToken, queryOf } from '../auth/PlayPolicy.ts';
import { isLoopback } from '../auth/PublishPolicy.ts';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../core/log.ts';
import { InvalidPathError, parseStreamPath } from '../core/path.ts';
import type { StreamRegistry } from '../core/StreamRegistry.ts';
import type { MessagingServer } from '../messaging/MessagingServer.ts';
import type { DashServer } from '../protocols/dash/DashServer.ts';
import type { HlsServer } from '../protocols/hls/HlsServer.ts';
import type { MseServer } from '../protocols/mse/MseServer.ts';
import { refuseUpgrade } from '../protocols/mse/MseServer.ts';
import type { WebRtcServer } from '../protocols/webrtc/WebRtcServer.ts';
import { addWorkerMetrics } from '../protocols/webrtc/workers/metrics.ts';
import { describeStream } from './describe.ts';
import { createMetrics } from './metrics.ts';
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
  log: Logger;
  /** The folder holding index.html, play.html, style.css and dist/. */
  webRoot: string;
  /** The RTMP port actually bound (0: RTMP disabled), read when asked: it is bound after this server is made. */
  rtmpPort: () => number;
  startedAt: number;
  /** auth.play: who may read a stream's details; absent: anyone. */
  play?: PlayPolicy;
}

class HttpError extends Error {
  readonly statusCode: number;
  constructor(statusCode: number, message: string) {
    super(message);
    this.statusCode = statusCode;
  }
}

function streamPathParam(request: FastifyRequest): string {
  const raw = (request.params as Record<string, string>)['*'] ?? '';
  try {
    return parseStreamPath(raw);
  } catch (err) {
    if (err instanceof InvalidPathError) throw new HttpError(400, err.message);
    throw err;
  }
}

/** The one HTTP server: routes only; each protocol owns its endpoint's behaviour. */
export function createHttpServer(options: HttpServerOptions): FastifyInstance {
  const { config, registry, mse, messaging, webRoot } = options;
  const log = options.log.child({ component: 'http' });
  const tls =
    config.http.tlsCert && config.http.tlsKey
      ? { cert: readFileSync(config.http.tlsCert), key: readFileSync(config.http.tlsKey) }
      : null;
  // Request logging at info would drown the media logs; errors are still logged by the error handler.
  // Closing ends every connection, not only idle ones: a client holding a request open (half-sent headers, a
  // player reconnecting its WebSocket while the server shuts down) kept close() pending forever.
  const common = {
    loggerInstance: log,
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: true,
  };
  const app = (tls ? Fastify({ ...common, https: tls }) : Fastify(common)) as unknown as FastifyInstance;
  app.addHook('onRequest', async (_request, reply) => {
    reply.header('access-control-allow-origin', config.http.corsOrigin);
  });

  const files = new StaticFiles([webRoot, `${webRoot}/dist`]);
  if (files.missing.length) {
    log.warn({ missing: files.missing }, 'web bundle not built: run `npm run build` for the pages to work');
  }
  const metrics = createMetrics(registry, mse, options.hls);
  if (options.webrtc?.workers) addWorkerMetrics(metrics, options.webrtc.workers);

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

  // Control API
  app.get('/healthz', async () => ({
    status: 'ok',
    uptimeSeconds: Math.round((Date.now() - options.startedAt) / 1000),
    streams: registry.live().length,
  }));
  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', metrics.contentType);
    return metrics.metrics();
  });
  app.get('/api/v1/streams', async () => ({ streams: registry.live().map(describeStream) }));
  app.get('/api/v1/streams/*', async (request, reply) => {
    const path = streamPathParam(request);
    await authorizeDetails(request, reply, options.play, path);
    const stream = registry.get(path);
    if (!stream?.live) throw new HttpError(404, `stream "${path}" is not live`);
    return describeStream(stream);
  });
  app.delete('/api/v1/streams/*', async (request, reply) => {
    authorizeControl(request, config.auth.apiToken);
    const path = streamPathParam(request);
    if (!registry.kick(path, 'kicked through the control API')) {
      throw new HttpError(404, `stream "${path}" has no publisher to kick`);
    }
    log.info({ path, by: request.ip }, 'publisher kicked through the API');
    return reply.status(204).send();
  });
  app.options('/api/*', async (_request, reply) =>
    reply
      .header('access-control-allow-methods', 'GET, POST, DELETE, OPTIONS')
      .header('access-control-allow-headers', 'authorization, content-type')
      .status(204)
      .send(),
  );
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
  }));
  // LL-HLS: playlists, init segments, segments and parts from memory.
  const hls = options.hls;
  if (hls) app.get('/hls/*', (request, reply) => hls.handle(request, reply));
  const dash = options.dash;
  if (dash) app.get('/dash/*', (request, reply) => dash.handle(request, reply));

  app.get('/api/v1/openapi.json', async () => openApiDocument);
  app.get('/api/v1/events', (request, reply) => streamEvents(request, reply, registry));

  // Messaging: channels over SSE, long-polling and HTTP publish (WebSocket below)
  app.get('/sse/channels/*', (request, reply) => messaging.serveEvents(request, reply));
  app.get('/poll/channels/*', (request, reply) => messaging.servePoll(request, reply));
  app.post('/api/v1/channels/*', { bodyLimit: messaging.bodyLimit }, (request, reply) =>
    messaging.servePublish(request, reply),
  );
  options.webrtc?.registerRoutes(app);

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

function authorizeControl(request: FastifyRequest, apiToken: string): void {
  const header = request.headers.authorization ?? '';
  if (apiToken && header === `Bearer ${apiToken}`) return;
  if (isLoopback(request.socket.remoteAddress ?? '')) return;
  throw new HttpError(
    403,
    apiToken
      ? 'this call needs "Authorization: Bearer <auth.apiToken>"'
      : 'control calls are accepted from loopback only until auth.apiToken is configured',
  );
}

/**
 * Server-Sent Events for the dashboard: the whole stream list whenever something changes (at most every
 * 250 ms) and every 2 s while streams are live, so bitrate and viewers stay current.
 */
const sseClients = new WeakMap<StreamRegistry, Set<FastifyReply>>();

function streamEvents(request: FastifyRequest, reply: FastifyReply, registry: StreamRegistry): void {
  let clients = sseClients.get(registry);
  if (!clients) {
    const set = new Set<FastifyReply>();
    clients = set;
    sseClients.set(registry, set);
    let pending: NodeJS.Timeout | null = null;
    const broadcast = () => {
      pending = null;
      const event = `event: streams\ndata: ${JSON.stringify({ streams: registry.live().map(describeStream) })}\n\n`;
      for (const client of set) client.raw.write(event);
    };
    const schedule = () => {
      if (!pending && set.size > 0) pending = setTimeout(broadcast, 250);
    };
    for (const name of ['published', 'unpublished', 'changed', 'removed'] as const)
      registry.on(name, schedule);
    const tick = setInterval(() => {
      if (set.size === 0) return;
      if (registry.live().length > 0) broadcast();
      else for (const client of set) client.raw.write(': keep-alive\n\n');
    }, 2000);
    tick.unref();
  }
  reply.hijack();
  reply.raw.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    'access-control-allow-origin': '*',
  });
  reply.raw.write(
    `retry: 2000\nevent: streams\ndata: ${JSON.stringify({ streams: registry.live().map(describeStream) })}\n\n`,
  );
  clients.add(reply);
  const set = clients;
  request.raw.on('close', () => set.delete(reply));
}
