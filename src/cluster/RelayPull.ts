import { randomBytes } from 'node:crypto';
import { WebSocket } from 'ws';
import type { Logger } from '../core/log.ts';
import type { Publisher, Stream } from '../core/Stream.ts';
import { StreamBusyError, type StreamRegistry } from '../core/StreamRegistry.ts';
import { RELAY_ROUTE } from './RelayServer.ts';
import { relayHeaders } from './relayAuth.ts';
import { decodeFrame, decodeJson, decodeTracks, type RelayHello, RelayMessage } from './relayProtocol.ts';
import type { StreamClaim, StreamDirectory } from './StreamDirectory.ts';

/** How often an edge without a working upstream looks the stream up again (origin gone, republish elsewhere). */
const LOOKUP_INTERVAL_MS = 250;
/** An upstream that answers no ping for this long is dead (a frozen origin, a cut cable: no FIN arrives). */
const UPSTREAM_TIMEOUT_MS = 3000;

export interface RelayPullOptions {
  path: string;
  node: string;
  secret: string;
  registry: StreamRegistry;
  directory: StreamDirectory;
  log: Logger;
  /** No viewer and no request for this long: the pull ends. */
  idleMs: number;
  /** Bytes received from upstreams, for /metrics. */
  counters: { upstreamBytes: number };
  onClosed: (pull: RelayPull) => void;
}

/**
 * An edge's copy of a stream another node originates: one WebSocket to the origin, whatever the number of
 * viewers here, feeding a local Stream as its publisher, so every transport serves it as a local stream.
 * It follows the stream across origins (republish on another node) while viewers wait, and ends itself a
 * while after the last viewer left.
 */
export class RelayPull implements Publisher {
  readonly protocol = 'relay';
  readonly id = `relay-${randomBytes(4).toString('hex')}`;
  readonly path: string;
  remoteAddress = '';
  /** The claim being relayed, once the origin said hello. */
  upstream: RelayHello | null = null;
  upstreamNode = '';
  stream: Stream | null = null;
  closed = false;
  lastTouch = performance.now();
  readonly #o: RelayPullOptions;
  readonly #log: Logger;
  #ws: WebSocket | null = null;
  #generation = 0;
  #lookupTimer: NodeJS.Timeout | null = null;
  #idleTimer: NodeJS.Timeout;
  #pingTimer: NodeJS.Timeout | null = null;
  #lastPong = 0;
  #readyWaiters = new Set<() => void>();

  constructor(options: RelayPullOptions) {
    this.#o = options;
    this.path = options.path;
    this.#log = options.log.child({ path: options.path });
    this.#idleTimer = setInterval(() => this.#checkIdle(), 1000);
    this.#idleTimer.unref();
  }

  get live(): boolean {
    return this.stream?.publisher === this && this.stream.ready;
  }

  /** Resolves when the stream is ready here, or after `ms` (whatever happened). */
  waitReady(ms: number): Promise<void> {
    if (this.live || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#readyWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#readyWaiters.add(done);
    });
  }

  /** Connects to `claim`'s origin (the first lookup, done by the caller). */
  start(claim: StreamClaim | null): void {
    if (claim) this.#connect(claim);
    else this.#scheduleLookup();
  }

  touch(): void {
    this.lastTouch = performance.now();
  }

  /** Publisher.close: the control API kicked the relay, or the node shuts down. */
  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.#idleTimer);
    if (this.#lookupTimer) clearTimeout(this.#lookupTimer);
    this.#dropUpstream();
    this.#unpublishLocal();
    for (const w of [...this.#readyWaiters]) w();
    this.#log.info({ reason }, 'relay from origin ended');
    this.#o.onClosed(this);
  }

  /** Publisher.requestKeyframe: an edge viewer's PLI goes up to the origin, which asks its publisher. */
  requestKeyframe(): void {
    if (this.#ws?.readyState === WebSocket.OPEN) this.#ws.send(Buffer.of(RelayMessage.keyframeRequest));
  }

  #connect(claim: StreamClaim): void {
    if (this.closed) return;
    this.#dropUpstream();
    this.#generation = claim.generation;
    this.upstreamNode = claim.node;
    const url = `${claim.http.replace(/^http/, 'ws')}${RELAY_ROUTE}${this.path}`;
    const ws = new WebSocket(url, {
      headers: relayHeaders(this.#o.secret, this.#o.node, this.path),
      perMessageDeflate: false,
      handshakeTimeout: 3000,
    });
    this.#ws = ws;
    this.remoteAddress = claim.http;
    ws.on('unexpected-response', (_req, res) => {
      this.#log.warn(
        { origin: claim.node, status: res.statusCode },
        `relay refused by the origin with ${res.statusCode}`,
      );
      res.resume();
      ws.terminate();
    });
    ws.on('open', () => {
      this.#lastPong = performance.now();
      this.#pingTimer = setInterval(() => {
        if (performance.now() - this.#lastPong > UPSTREAM_TIMEOUT_MS) {
          this.#log.warn({ origin: claim.node }, 'origin stopped answering pings; relay dropped');
          ws.terminate();
          return;
        }
        ws.ping();
      }, 1000);
      this.#pingTimer.unref();
    });
    ws.on('pong', () => {
      this.#lastPong = performance.now();
    });
    ws.on('message', (data: Buffer, isBinary) => {
      if (ws !== this.#ws || !isBinary || data.byteLength === 0) return;
      this.#lastPong = performance.now();
      try {
        this.#onMessage(data);
      } catch (err) {
        this.#log.warn(
          { err: (err as Error).message, origin: claim.node },
          'bad relay message; relay dropped',
        );
        ws.terminate();
      }
    });
    ws.on('error', (err) => this.#log.debug({ err: err.message }, 'relay socket error'));
    ws.on('close', () => {
      if (ws !== this.#ws) return;
      this.#ws = null;
      this.#stopPing();
      this.#unpublishLocal();
      this.#log.info({ origin: claim.node }, 'relay from origin lost; looking the stream up again');
      this.#scheduleLookup();
    });
  }

  #onMessage(data: Buffer): void {
    switch (data[0]) {
      case RelayMessage.hello:
        this.upstream = decodeJson(data, 'hello') as RelayHello;
        this.#log.info(
          { origin: this.upstream.node, generation: this.upstream.generation },
          'relay from origin started',
        );
        return;
      case RelayMessage.tracks: {
        const tracks = decodeTracks(data);
        const stream = this.#publishLocal();
        if (!stream) return;
        stream.setTracks(tracks);
        for (const w of [...this.#readyWaiters]) w();
        return;
      }
      case RelayMessage.frame: {
        this.#o.counters.upstreamBytes += data.byteLength;
        const stream = this.stream;
        if (!stream || stream.publisher !== this || stream.tracks.length === 0) return;
        stream.pushFrame(decodeFrame(data, performance.now()));
        return;
      }
      case RelayMessage.unpublish:
        this.#unpublishLocal();
        // The publisher may come back here (a tracks message) or on another node (a new claim).
        this.#scheduleLookup();
        return;
    }
  }

  #publishLocal(): Stream | null {
    if (this.stream?.publisher === this) return this.stream;
    try {
      this.stream = this.#o.registry.publish(this.path, this);
      return this.stream;
    } catch (err) {
      if (!(err instanceof StreamBusyError)) throw err;
      // A publisher connected here meanwhile: this node is becoming the origin; the relay is not needed.
      this.close('a local publisher took the path');
      return null;
    }
  }

  #unpublishLocal(): void {
    const stream = this.stream;
    if (stream && stream.publisher === this) this.#o.registry.unpublish(stream, this);
  }

  #stopPing(): void {
    if (this.#pingTimer) clearInterval(this.#pingTimer);
    this.#pingTimer = null;
  }

  #dropUpstream(): void {
    this.#stopPing();
    const ws = this.#ws;
    this.#ws = null;
    ws?.terminate();
  }

  /** While not live from a working upstream: look for the stream's (new) claim until one appears. */
  #scheduleLookup(): void {
    if (this.closed || this.#lookupTimer) return;
    this.#lookupTimer = setTimeout(async () => {
      this.#lookupTimer = null;
      if (this.closed || this.live) return;
      let claim: StreamClaim | null = null;
      try {
        claim = await this.#o.directory.lookup(this.path);
      } catch {
        // Redis unreachable: the open upstream (if any) keeps serving; try again.
      }
      if (this.closed || this.live) return;
      if (claim && claim.node === this.#o.node) {
        this.close('this node became the origin');
        return;
      }
      const upstreamOpen = this.#ws !== null;
      if (claim && (!upstreamOpen || claim.generation !== this.#generation)) this.#connect(claim);
      else this.#scheduleLookup();
    }, LOOKUP_INTERVAL_MS);
    this.#lookupTimer.unref();
  }

  #checkIdle(): void {
    const stream = this.#o.registry.get(this.path);
    const viewers = stream?.viewerCount ?? 0;
    if (viewers > 0) {
      this.touch();
      return;
    }
    if (performance.now() - this.lastTouch > this.#o.idleMs) this.close('no viewer left');
  }
}
