import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import { refuseUpgrade } from '../../transport/refuseUpgrade.ts';
import { channelFromUrlPath, InvalidChannelError } from '../ChannelName.ts';
import type { Identity } from '../ChannelPolicy.ts';
import { ChannelSession, type ConnectionSink } from '../ChannelSession.ts';
import type { PresenceFrame, StoredMessage } from '../Message.ts';
import type { Messaging } from '../Messaging.ts';
import { MessagingError, parseSince, type ServerEvent } from '../protocol.ts';
import { FramedEvents } from './textFrame.ts';

/** Close codes (RFC 6455 §7.4.1; 4000-4999 are ours, mirroring HTTP statuses). */
export const ChannelCloseCode = {
  normal: 1000,
  goingAway: 1001,
  /** Missed two pongs. */
  noPong: 1001,
  policy: 1008,
  tooBig: 1009,
  unauthorized: 4401,
  /** The client read too slowly: its unsent backlog passed messaging.maxBacklogBytes. It may resume. */
  tooSlow: 4408,
  /** Too many connections from the client's address. */
  tooMany: 4429,
  /** The messaging bus is unreachable for now (RFC 6455 §7.4 registry: Try Again Later); the client resumes. */
  tryAgainLater: 1013,
} as const;

/**
 * Sockets written in this turn of the event loop, corked until it ends (setImmediate): every message fanned out
 * to a socket in one turn leaves in one writev. A server keeping up fans out one message per turn and writes
 * once per socket as before; one that falls behind (10,000 subscribers on one core) finds several publishes in
 * a turn and writes them together, one syscall instead of several — the write syscall, not JavaScript, is most
 * of a delivery's cost (docs/benchmarks.md, "Messaging fan-out").
 */
let corked: Socket[] = [];
const EMPTY = Buffer.alloc(0);
function uncorkAll(): void {
  const sockets = corked;
  corked = [];
  for (const socket of sockets) socket.uncork();
}

class WsSink implements ConnectionSink {
  readonly transport = 'ws';
  readonly ws: WebSocket;
  readonly #socket: Socket;
  readonly #framed: FramedEvents;
  readonly #maxBacklogBytes: number;
  missedPongs = 0;
  /** Set once the session exists (it greets the client through this sink as it is made). */
  session: ChannelSession | null = null;
  /** Gives back this connection's place in the per-IP count. */
  release: (() => void) | null = null;

  constructor(ws: WebSocket, framed: FramedEvents, maxBacklogBytes: number) {
    this.ws = ws;
    this.#socket = (ws as unknown as { _socket: Socket })._socket;
    this.#framed = framed;
    this.#maxBacklogBytes = maxBacklogBytes;
  }

  #writable(): boolean {
    if (this.ws.readyState !== this.ws.OPEN) return false;
    if (this.#socket.writableLength > this.#maxBacklogBytes) {
      this.tooSlow();
      return false;
    }
    return true;
  }

  /** A replay waits past half the limit rather than passing it (see whenDrained). */
  backlogged(): boolean {
    return this.#socket.writableLength > this.#maxBacklogBytes / 2;
  }

  /**
   * An empty write's callback runs once everything written before it has gone to the kernel. 'drain' would not
   * do: it follows only a write() that returned false, at the socket's highWaterMark (64 KiB), which may be
   * above messaging.maxBacklogBytes.
   */
  whenDrained(resume: () => void): void {
    this.#socket.write(EMPTY, () => resume());
  }

  retryLater(reason: string): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    // A close reason is at most 123 bytes (RFC 6455 §5.5).
    this.ws.close(ChannelCloseCode.tryAgainLater, Buffer.from(reason).subarray(0, 120).toString());
  }

  tooSlow(): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    this.ws.close(
      ChannelCloseCode.tooSlow,
      'reading too slowly: unsent backlog over messaging.maxBacklogBytes; reconnect with since',
    );
    // A client that does not read will not read the close frame either; do not hold its backlog for
    // ws's 30 s closing handshake.
    setTimeout(() => this.ws.terminate(), 1000).unref();
  }

  message(message: StoredMessage): void {
    // Pre-framed bytes straight to the socket: with permessage-deflate off, ws writes its own frames whole
    // and unqueued, so these interleave safely with its control frames.
    if (this.#writable()) this.#write(this.#framed.get(message));
  }

  presence(presence: PresenceFrame): void {
    if (this.#writable()) this.#write(this.#framed.get(presence));
  }

  #write(frame: Buffer): void {
    const socket = this.#socket;
    if (socket.writableCorked === 0) {
      socket.cork();
      if (corked.push(socket) === 1) setImmediate(uncorkAll);
    }
    socket.write(frame);
    // A turn that fans out a burst (many publishes in one read) must not hold it all back: past a quarter of the
    // limit the socket writes now, as it would uncorked, and only what the kernel refuses counts as backlog.
    if (socket.writableCorked > 0 && socket.writableLength > this.#maxBacklogBytes / 4) socket.uncork();
  }

  event(event: ServerEvent): void {
    if (this.#writable()) this.ws.send(JSON.stringify(event));
  }
}

/**
 * `GET /ws/channels/{name}?since=N` (WebSocket upgrade): subscribed to `name` at once (resuming after N when
 * given), and more channels, unsubscribes and publishes over the socket protocol (src/messaging/protocol.ts).
 * `/ws/channels/` with no name opens a socket with no subscription yet.
 */
export class WsChannelServer {
  readonly #messaging: Messaging;
  readonly #wss: WebSocketServer;
  readonly #framed = new FramedEvents();
  /** Each open socket's sink; the socket listeners below find their connection here. */
  readonly #sinks = new Map<WebSocket, WsSink>();
  readonly #heartbeat: NodeJS.Timeout;
  /**
   * One set of socket listeners for every connection (EventEmitter calls them with `this` = the socket), not
   * four closures per connection: an idle connection's memory is what 10,000 viewers multiply.
   */
  readonly #listeners: {
    pong: (this: WebSocket) => void;
    message: (this: WebSocket, data: Buffer, isBinary: boolean) => void;
    error: (this: WebSocket, err: Error) => void;
    close: (this: WebSocket) => void;
  };

  constructor(messaging: Messaging) {
    this.#messaging = messaging;
    // Room for the envelope around the largest allowed data; anything bigger is closed with 1009 by ws.
    this.#wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      // #sinks tracks the sockets; ws's own tracking would add a Set entry and a closure per socket.
      clientTracking: false,
      maxPayload: messaging.config.maxMessageBytes + 4096,
    });
    const sinks = this.#sinks;
    const failed = (err: unknown, ws: WebSocket) => this.#failed(err, ws);
    this.#listeners = {
      pong() {
        const sink = sinks.get(this);
        if (sink) sink.missedPongs = 0;
      },
      message(data, isBinary) {
        const sink = sinks.get(this);
        if (!sink?.session) return;
        if (isBinary) {
          sink.event(
            new MessagingError(
              'bad_frame',
              'binary frames are not part of the protocol; send JSON text',
            ).toEvent(),
          );
          return;
        }
        sink.session.handleFrame(data.toString('utf8')).catch((err) => failed(err, this));
      },
      error(err) {
        messaging.log.debug({ err: err.message }, 'messaging socket error');
      },
      close() {
        const sink = sinks.get(this);
        if (!sink) return;
        sinks.delete(this);
        sink.session?.close();
        sink.release?.();
      },
    };
    this.#heartbeat = setInterval(() => {
      for (const sink of sinks.values()) {
        if (sink.missedPongs >= 2) {
          messaging.log.info({ transport: 'ws' }, 'messaging client missed two pongs; dropped');
          sink.ws.terminate();
          continue;
        }
        sink.missedPongs++;
        sink.ws.ping();
      }
    }, messaging.config.pingIntervalMs);
    this.#heartbeat.unref();
  }

  get connections(): number {
    return this.#sinks.size;
  }

  /** `rawName` is what follows `/ws/channels/` in the URL (without the query). */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer, rawName: string): void {
    const log = this.#messaging.log;
    const remoteAddress = request.socket.remoteAddress ?? '';
    const query = new URLSearchParams((request.url ?? '').split('?')[1] ?? '');
    let channel: string | null = null;
    let since: number | undefined;
    try {
      if (rawName !== '') channel = channelFromUrlPath(rawName);
      since = parseSince(query.get('since') ?? undefined, '?since=');
    } catch (err) {
      const message =
        err instanceof InvalidChannelError || err instanceof MessagingError ? err.message : String(err);
      log.info({ remote: remoteAddress, url: request.url }, `messaging upgrade refused: ${message}`);
      refuseUpgrade(socket, 400, message);
      return;
    }
    // A token checked against a remote key set may take a moment; the socket may go meanwhile.
    void Promise.resolve(
      this.#messaging.identities.identify({ headers: request.headers, remoteAddress, query }),
    ).then(
      (identity) => {
        if (socket.destroyed) return;
        this.#upgrade(request, socket, head, identity, remoteAddress, channel, since);
      },
      (err: unknown) => {
        log.error({ err, remote: remoteAddress }, 'messaging upgrade failed');
        refuseUpgrade(socket, 500, 'internal server error');
      },
    );
  }

  #upgrade(
    request: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    identity: Identity | { refused: string },
    remoteAddress: string,
    channel: string | null,
    since: number | undefined,
  ): void {
    const log = this.#messaging.log;
    this.#wss.handleUpgrade(request, socket, head, (ws) => {
      // Refusals after the upgrade, as close codes: a browser sees those, not an HTTP status.
      if ('refused' in identity) {
        ws.close(ChannelCloseCode.unauthorized, identity.refused.slice(0, 120));
        return;
      }
      let release: () => void;
      try {
        release = this.#messaging.admit(remoteAddress);
      } catch (err) {
        log.info({ remote: remoteAddress }, (err as Error).message);
        ws.close(ChannelCloseCode.tooMany, (err as Error).message.slice(0, 120));
        return;
      }
      this.#open(ws, identity, remoteAddress, release, channel, since);
    });
  }

  #open(
    ws: WebSocket,
    identity: Identity,
    remoteAddress: string,
    release: () => void,
    channel: string | null,
    since: number | undefined,
  ): void {
    const config = this.#messaging.config;
    const sink = new WsSink(ws, this.#framed, config.maxBacklogBytes);
    sink.release = release;
    this.#sinks.set(ws, sink);
    sink.session = new ChannelSession(this.#messaging, sink, identity, remoteAddress);
    const listeners = this.#listeners;
    ws.on('pong', listeners.pong);
    ws.on('message', listeners.message);
    ws.on('error', listeners.error);
    ws.on('close', listeners.close);
    if (channel !== null) sink.session.subscribe(channel, since).catch((err) => this.#failed(err, ws));
  }

  /** A bug, not a client's fault: log it and close this socket (1011), never the process. */
  #failed(err: unknown, ws: WebSocket): void {
    this.#messaging.log.error({ err }, 'messaging session failed; closing its socket');
    ws.close(1011, 'internal error');
  }

  close(): void {
    clearInterval(this.#heartbeat);
    for (const sink of this.#sinks.values())
      sink.ws.close(ChannelCloseCode.goingAway, 'server shutting down');
  }

  /** Closes every socket a server-side test or an operator wants gone (the client resumes). */
  dropAll(code: number = ChannelCloseCode.goingAway, reason = 'dropped by the server'): number {
    let n = 0;
    for (const sink of this.#sinks.values()) {
      sink.ws.close(code, reason);
      n++;
    }
    return n;
  }
}
