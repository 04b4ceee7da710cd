import { type AddressInfo, createServer, type Server } from 'node:net';
import type { PlayPolicy } from '../../auth/PlayPolicy.ts';
import type { PublishPolicy } from '../../auth/PublishPolicy.ts';
import type { Logger } from '../../core/log.ts';
import type { Stream } from '../../core/Stream.ts';
import type { StreamRegistry } from '../../core/StreamRegistry.ts';
import { DEFAULT_MAX_MESSAGE_SIZE, MAX_CHUNK_SIZE, ReassemblyBudget } from './chunk.ts';
import { RtmpConnection, type RtmpConnectionContext } from './RtmpConnection.ts';
import { RtmpPlayFeed } from './RtmpPlayFeed.ts';

export interface RtmpServerOptions {
  readonly registry: StreamRegistry;
  /** Default 0.0.0.0. */
  readonly host?: string;
  /** Default 1935; 0 picks a free port (see `address`). */
  readonly port?: number;
  /** Decides every publish: null allows, a string refuses with that reason. */
  readonly authorizePublish: PublishPolicy;
  /** Decides every play (auth.play); absent: anyone may play. */
  readonly authorizePlay?: PlayPolicy;
  /** Chunk size of what the server sends (announced at connect). Default 4096. */
  readonly chunkSize?: number;
  readonly log: Logger;
  /** Handshake plus connect command must complete within this. Default 10 s. */
  readonly handshakeTimeoutMs?: number;
  /** A publisher (or a connection doing nothing) silent this long is closed. Default 10 s. */
  readonly idleTimeoutMs?: number;
  /** Largest RTMP message accepted from a client (once its publish or play is accepted). Default 8 MiB. */
  readonly maxMessageSize?: number;
  /** Memory all connections' unfinished messages may hold together. Default 256 MiB. */
  readonly maxReassemblyBytes?: number;
  /** A player whose socket holds more unsent bytes than this skips to the next keyframe. Default 2 MiB. */
  readonly playerMaxBacklogBytes?: number;
}

/**
 * RTMP ingest and playback: `rtmp://host:port/{app}/{stream}` publishes or plays stream path `{app}/{stream}`.
 * Each TCP connection is an RtmpConnection; a protocol error or a misbehaving client ends that connection only.
 */
export class RtmpServer {
  readonly sessions = new Set<RtmpConnection>();
  readonly #server: Server;
  readonly #host: string;
  readonly #port: number;
  readonly #log: Logger;
  readonly #context: RtmpConnectionContext;
  readonly #feeds = new Map<Stream, RtmpPlayFeed>();

  /** Bytes all connections' unfinished messages hold now. */
  get reassemblyBytes(): number {
    return this.#context.reassembly.used;
  }

  constructor(options: RtmpServerOptions) {
    const chunkSize = options.chunkSize ?? 4096;
    if (!Number.isInteger(chunkSize) || chunkSize < 128 || chunkSize > MAX_CHUNK_SIZE) {
      throw new RangeError(`RTMP chunkSize ${chunkSize} must be an integer from 128 to ${MAX_CHUNK_SIZE}`);
    }
    this.#host = options.host ?? '0.0.0.0';
    this.#port = options.port ?? 1935;
    this.#log = options.log.child({ component: 'rtmp' });
    const registry = options.registry;
    this.#context = {
      registry,
      authorizePublish: options.authorizePublish,
      authorizePlay: options.authorizePlay ?? null,
      chunkSize,
      maxMessageSize: options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
      reassembly: new ReassemblyBudget(options.maxReassemblyBytes ?? 256 * 1024 * 1024),
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? 10_000,
      idleTimeoutMs: options.idleTimeoutMs ?? 10_000,
      playerMaxBacklogBytes: options.playerMaxBacklogBytes ?? 2 * 1024 * 1024,
      log: this.#log,
      feedFor: (stream) => {
        let feed = this.#feeds.get(stream);
        if (!feed) {
          const created = new RtmpPlayFeed(stream, chunkSize, registry.gopLimits, () => {
            if (this.#feeds.get(stream) === created) this.#feeds.delete(stream);
          });
          this.#feeds.set(stream, created);
          feed = created;
        }
        return feed;
      },
    };
    this.#server = createServer((socket) => {
      const connection = new RtmpConnection(socket, this.#context, (c) => this.sessions.delete(c));
      this.sessions.add(connection);
      connection.log.debug('connection opened');
    });
    this.#server.on('error', (err) => this.#log.error({ err: err.message }, 'RTMP listener error'));
  }

  /** The bound address; its `port` is the real one when the server was asked for port 0. */
  get address(): AddressInfo {
    const address = this.#server.address();
    if (address === null || typeof address === 'string') throw new Error('RTMP server is not listening');
    return address;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) =>
        reject(new Error(`RTMP cannot listen on ${this.#host}:${this.#port}: ${err.message}`));
      this.#server.once('error', onError);
      this.#server.listen(this.#port, this.#host, () => {
        this.#server.off('error', onError);
        this.#log.info({ host: this.#host, port: this.address.port }, 'RTMP listening');
        resolve();
      });
    });
  }

  /** Stops listening and closes every connection (publishers are unpublished, players detached). */
  close(): Promise<void> {
    return new Promise((resolve) => {
      for (const connection of [...this.sessions]) connection.close('server shutting down');
      if (!this.#server.listening) {
        resolve();
        return;
      }
      this.#server.close(() => resolve());
    });
  }
}
