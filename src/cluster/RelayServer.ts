import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import type { GopCacheLimits } from '../core/GopCache.ts';
import type { Logger } from '../core/log.ts';
import type { StreamRegistry } from '../core/StreamRegistry.ts';
import { Subscriber } from '../core/Subscriber.ts';
import { InvalidPathError, parseStreamPath } from '../shared/streamPath.ts';
import { refuseUpgrade } from '../transport/refuseUpgrade.ts';
import { RelayFeed, type RelayItem } from './RelayFeed.ts';
import { checkRelayAuth, RelayHeader } from './relayAuth.ts';
import { encodeJson, type RelayHello, RelayMessage } from './relayProtocol.ts';

/** An edge that cannot take the relay this fast is skipped to the next keyframe (as a slow viewer is). */
const RELAY_MAX_BACKLOG_BYTES = 8 * 1024 * 1024;
export const RELAY_ROUTE = '/internal/relay/';

export interface RelayOut {
  readonly path: string;
  readonly edge: string;
  readonly socket: WebSocket;
  bytesSent: number;
}

/**
 * The origin's side of the relay: `GET /internal/relay/{path}` upgraded for an edge signed with cluster.secret.
 * Only streams this node originates are served (an edge must not pull from another edge's copy).
 */
export class RelayServer {
  readonly relays = new Set<RelayOut>();
  readonly counters = { refused: 0, bytesSent: 0, keyframeRequests: 0 };
  readonly #wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 64 * 1024 });
  readonly #registry: StreamRegistry;
  readonly #secret: string;
  readonly #gopLimits: GopCacheLimits | undefined;
  readonly #log: Logger;
  readonly #hello: (path: string) => RelayHello | null;

  constructor(options: {
    registry: StreamRegistry;
    secret: string;
    gopLimits?: GopCacheLimits;
    log: Logger;
    /** The claim this node holds for `path`, or null when it is not the path's origin. */
    hello: (path: string) => RelayHello | null;
  }) {
    this.#registry = options.registry;
    this.#secret = options.secret;
    this.#gopLimits = options.gopLimits;
    this.#log = options.log;
    this.#hello = options.hello;
  }

  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer, rawPath: string): void {
    const remote = request.socket.remoteAddress ?? '';
    let path: string;
    try {
      path = parseStreamPath(decodeURIComponent(rawPath));
    } catch (err) {
      const message = err instanceof InvalidPathError ? err.message : `invalid relay path ${rawPath}`;
      refuseUpgrade(socket, 400, message);
      return;
    }
    const refusal = checkRelayAuth(this.#secret, path, request.headers);
    if (refusal) {
      this.counters.refused++;
      this.#log.warn({ path, remote, status: refusal.status }, `relay refused: ${refusal.reason}`);
      refuseUpgrade(socket, refusal.status, refusal.reason);
      return;
    }
    const edge = String(request.headers[RelayHeader.node]);
    const stream = this.#registry.get(path);
    const hello = this.#hello(path);
    if (!stream?.live || !hello) {
      this.#log.info({ path, edge }, 'relay refused: this node is not the origin of the stream');
      refuseUpgrade(socket, 404, `this node is not the origin of "${path}"`);
      return;
    }
    this.#wss.handleUpgrade(request, socket, head, (ws) => {
      const relay: RelayOut = { path, edge, socket: ws, bytesSent: 0 };
      this.relays.add(relay);
      ws.send(encodeJson(RelayMessage.hello, hello));
      const subscriber = new Subscriber<RelayItem>(
        {
          write: (item) => {
            relay.bytesSent += item.bytes.byteLength;
            this.counters.bytesSent += item.bytes.byteLength;
            ws.send(item.bytes);
          },
          get backlogBytes() {
            return ws.bufferedAmount;
          },
        },
        RELAY_MAX_BACKLOG_BYTES,
      );
      const remove = RelayFeed.of(stream, this.#gopLimits).addListener({
        onInit: (init) => {
          ws.send(init);
          subscriber.restartAtRap();
        },
        onItem: (item) => subscriber.offer(item, item.rap),
        onUnpublish: () => ws.send(Buffer.of(RelayMessage.unpublish)),
      });
      ws.on('message', (data: Buffer, isBinary) => {
        if (!isBinary || data[0] !== RelayMessage.keyframeRequest) return;
        this.counters.keyframeRequests++;
        stream.publisher?.requestKeyframe?.();
      });
      ws.on('error', (err) => this.#log.debug({ path, edge, err: err.message }, 'relay socket error'));
      ws.on('close', () => {
        remove();
        this.relays.delete(relay);
        this.#registry.release(stream);
        this.#log.info({ path, edge, bytes: relay.bytesSent }, 'relay to edge ended');
      });
      this.#log.info({ path, edge, remote, generation: hello.generation }, 'relay to edge started');
    });
  }

  close(): void {
    for (const r of this.relays) r.socket.terminate();
  }
}
