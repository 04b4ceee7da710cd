import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { type PlayPolicy, presentedToken, queryOf } from '../../auth/PlayPolicy.ts';
import type { MseConfig } from '../../config/schema.ts';
import { CmafFeed } from '../../core/CmafFeed.ts';
import { ConnectionsPerIp, TooManyConnectionsError } from '../../core/ConnectionsPerIp.ts';
import { DelayHistogram } from '../../core/DelayHistogram.ts';
import type { GopCacheLimits } from '../../core/GopCache.ts';
import type { Logger } from '../../core/log.ts';
import type { Stream } from '../../core/Stream.ts';
import type { StreamRegistry } from '../../core/StreamRegistry.ts';
import { InvalidPathError, parseStreamPath } from '../../shared/streamPath.ts';
import { refuseUpgrade } from '../../transport/refuseUpgrade.ts';
import { CloseCode, MseSession, type MseSessionCounters } from './MseSession.ts';
import { FramedFragments, WriteBatch } from './wsFrame.ts';

/** A WebSocket close reason is at most 123 bytes (RFC 6455 §5.5: control frames carry 125). */
export function truncateReason(reason: string): string {
  let out = reason;
  while (Buffer.byteLength(out) > 123) out = out.slice(0, -1);
  return out;
}

/** WebSocket + MSE egress: `GET /mse/{path}` upgrades to a socket carrying the stream as fMP4, frame by frame. */
export class MseServer {
  readonly sessions = new Set<MseSession>();
  /** Frame arrival at the server to the fragment handed to the viewer's socket, per viewer per frame. */
  readonly deliveryDelay = new DelayHistogram();
  readonly counters: MseSessionCounters = { fragmentsSent: 0, fragmentsDropped: 0, skips: 0, bytesSent: 0 };
  readonly #framed = new FramedFragments();
  readonly #batch = new WriteBatch();
  readonly #wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 4096 });
  readonly #registry: StreamRegistry;
  readonly #config: MseConfig;
  readonly #gopLimits: GopCacheLimits | undefined;
  readonly #log: Logger;
  readonly #heartbeat: NodeJS.Timeout;
  readonly #viewersPerIp: ConnectionsPerIp;
  readonly #play: PlayPolicy | null;

  constructor(options: {
    registry: StreamRegistry;
    config: MseConfig;
    gopLimits?: GopCacheLimits;
    log: Logger;
    /** auth.play; absent: anyone may watch. */
    play?: PlayPolicy;
  }) {
    this.#play = options.play ?? null;
    this.#registry = options.registry;
    this.#config = options.config;
    this.#viewersPerIp = new ConnectionsPerIp(
      () => this.#config.maxViewersPerIp,
      'WebSocket+MSE viewers',
      'mse.maxViewersPerIp',
    );
    this.#gopLimits = options.gopLimits;
    this.#log = options.log.child({ component: 'mse' });
    const missed = new WeakMap<object, number>();
    this.#heartbeat = setInterval(() => {
      for (const session of this.sessions) {
        const n = (missed.get(session) ?? 0) + 1;
        if (n > 2) {
          this.#log.info(
            { path: session.path, remote: session.remoteAddress },
            'viewer missed two pongs; dropped',
          );
          session.ws.terminate();
          continue;
        }
        missed.set(session, n);
        session.ws.ping();
        session.ws.once('pong', () => missed.set(session, 0));
      }
    }, this.#config.pingIntervalMs);
    this.#heartbeat.unref();
  }

  /** `rawPath` is what follows `/mse/` in the URL (without the query). */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer, rawPath: string): void {
    let path: string;
    try {
      path = parseStreamPath(decodeURIComponent(rawPath));
    } catch (err) {
      const message =
        err instanceof InvalidPathError ? err.message : `invalid stream path encoding in ${rawPath}`;
      this.#log.warn({ url: request.url }, message);
      refuseUpgrade(socket, 400, message);
      return;
    }
    if (!this.#play?.requiresToken(path)) {
      this.#admit(request, socket, head, path);
      return;
    }
    const token = presentedToken(request.headers, queryOf(request.url));
    const remoteAddress = request.socket.remoteAddress ?? '';
    this.#play.authorize({ protocol: 'mse', path, remoteAddress, ...(token ? { token } : {}) }).then(
      (refusal) => {
        if (socket.destroyed) return;
        if (!refusal) {
          this.#admit(request, socket, head, path);
          return;
        }
        this.#log.info({ remote: remoteAddress }, refusal.reason);
        // A browser sees no HTTP status of a refused upgrade, only a close code and its reason.
        this.#wss.handleUpgrade(request, socket, head, (ws) =>
          ws.close(
            refusal.status === 401 ? CloseCode.unauthorized : CloseCode.forbidden,
            truncateReason(refusal.reason),
          ),
        );
      },
      (err: unknown) => {
        this.#log.error({ err, path }, 'play authorization failed');
        refuseUpgrade(socket, 500, 'internal server error');
      },
    );
  }

  /** In a cluster the stream may live on another node: this one pulls it first. */
  #admit(request: IncomingMessage, socket: Duplex, head: Buffer, path: string): void {
    const local = this.#registry.get(path);
    if (local?.live || !this.#registry.resolver) {
      this.#accept(request, socket, head, path, local);
      return;
    }
    this.#registry.acquire(path).then(
      (stream) => this.#accept(request, socket, head, path, stream),
      (err: unknown) => {
        this.#log.error({ path, err }, 'stream lookup failed');
        refuseUpgrade(socket, 500, 'stream lookup failed');
      },
    );
  }

  #accept(
    request: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    path: string,
    stream: Stream | undefined,
  ): void {
    if (socket.destroyed) return;
    if (!stream?.live) {
      const message = `stream "${path}" is not live`;
      this.#log.info({ remote: request.socket.remoteAddress }, `viewer refused: ${message}`);
      refuseUpgrade(socket, 404, message);
      return;
    }
    let release: () => void;
    try {
      release = this.#viewersPerIp.admit(request.socket.remoteAddress ?? '');
    } catch (err) {
      if (!(err instanceof TooManyConnectionsError)) throw err;
      this.#log.info({ remote: request.socket.remoteAddress }, `viewer refused: ${err.message}`);
      refuseUpgrade(socket, 429, err.message);
      return;
    }
    socket.once('close', release);
    this.#wss.handleUpgrade(request, socket, head, (ws) => {
      const remoteAddress = request.socket.remoteAddress ?? '';
      const session = new MseSession(ws, path, remoteAddress, {
        maxBacklogBytes: this.#config.maxBacklogBytes,
        republishWaitMs: this.#config.republishWaitMs,
        delay: this.deliveryDelay,
        framed: this.#framed,
        batch: this.#batch,
        counters: this.counters,
        log: this.#log,
      });
      this.sessions.add(session);
      const uncount = stream.addViewer('mse');
      const feed = CmafFeed.of(stream, this.#gopLimits);
      session.replaying = true;
      const removeListener = feed.addListener(session);
      session.replaying = false;
      this.#log.debug({ path, remote: remoteAddress }, 'viewer joined');
      ws.on('message', () => {
        // Viewers have nothing to say yet; anything they send is ignored (maxPayload bounds it).
      });
      ws.on('error', (err) => this.#log.debug({ path, err: err.message }, 'viewer socket error'));
      ws.on('close', (code) => {
        session.dispose();
        removeListener();
        uncount();
        this.sessions.delete(session);
        this.#registry.release(stream);
        this.#log.debug({ path, remote: remoteAddress, code }, 'viewer left');
      });
    });
  }

  close(): void {
    clearInterval(this.#heartbeat);
    for (const session of this.sessions) session.close(CloseCode.goingAway, 'server shutting down');
  }
}
