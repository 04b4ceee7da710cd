import type { Socket } from 'node:net';
import type { PlayPolicy } from '../../auth/PlayPolicy.ts';
import type { PublishPolicy } from '../../auth/PublishPolicy.ts';
import type { Logger } from '../../core/log.ts';
import type { Stream } from '../../core/Stream.ts';
import { StreamBusyError, type StreamRegistry } from '../../core/StreamRegistry.ts';
import { MediaParseError } from '../../media/errors.ts';
import { FlvTagType, parseFlvTags } from '../../media/flv/tag.ts';
import { InvalidPathError, parseStreamPath } from '../../shared/streamPath.ts';
import { type Amf0Object, type Amf0Value, decodeAmf0Sequence } from './amf0.ts';
import { ChunkReader, ChunkWriter, type ReassemblyBudget } from './chunk.ts';
import { Amf0Error, RtmpProtocolError } from './errors.ts';
import { ServerHandshake } from './handshake.ts';
import {
  acknowledgementMessage,
  commandMessage,
  dataMessage,
  MessageType,
  onStatusMessage,
  type RtmpMessage,
  setChunkSizeMessage,
  setPeerBandwidthMessage,
  UserControlEvent,
  userControlMessage,
  windowAckSizeMessage,
} from './messages.ts';
import { RtmpIngest } from './RtmpIngest.ts';
import { type RtmpOutput, RtmpPlayer } from './RtmpPlayer.ts';
import type { RtmpPlayFeed } from './RtmpPlayFeed.ts';

/** What every connection of a server shares. */
export interface RtmpConnectionContext {
  readonly registry: StreamRegistry;
  readonly authorizePublish: PublishPolicy;
  /** Decides every play; null: anyone may play. */
  readonly authorizePlay: PlayPolicy | null;
  /** Chunk size of everything the server sends (announced with Set Chunk Size at connect). */
  readonly chunkSize: number;
  readonly maxMessageSize: number;
  /** Memory of unfinished messages across every connection. */
  readonly reassembly: ReassemblyBudget;
  /** The handshake and the connect command must complete within this. */
  readonly handshakeTimeoutMs: number;
  /** A connection that is not playing and sends nothing for this long is closed. */
  readonly idleTimeoutMs: number;
  readonly playerMaxBacklogBytes: number;
  readonly log: Logger;
  feedFor(stream: Stream): RtmpPlayFeed;
}

/** The acknowledgement window and peer bandwidth the server asks for (the values FMS and nginx-rtmp use). */
const WINDOW_ACK_SIZE = 2_500_000;
/** After a refusal, how long the client gets to read the status before the socket is destroyed. */
const REFUSAL_LINGER_MS = 2000;
/**
 * Largest message a connection may send before its publish or play is accepted: connect, createStream and
 * publish are a few hundred bytes, so an unauthenticated client cannot make the server hold megabytes.
 */
export const PRE_AUTH_MAX_MESSAGE_SIZE = 16 * 1024;

const FMS_VERSION = 'FMS/3,0,1,123';
/** E-RTMP "Enhancing NetConnection connect": the FourCCs we take, echoed when the client offers its list. */
const SUPPORTED_FOURCCS = ['avc1', 'hvc1', 'av01', 'vp09', 'Opus', 'mp4a'];

let nextConnectionId = 1;

interface StreamName {
  readonly path: string;
  readonly key: string | undefined;
  /** `?token=` on the stream name (or the app): a viewer's token for auth.play. */
  readonly token: string | undefined;
}

/**
 * One TCP connection: handshake, chunk stream, protocol control and NetConnection/NetStream commands; it holds
 * at most one publish and any number of plays (one per message stream). Every error ends this connection only.
 */
export class RtmpConnection implements RtmpOutput {
  readonly id: string;
  readonly socket: Socket;
  readonly remoteAddress: string;
  readonly log: Logger;
  app = '';
  tcUrl = '';
  readonly #ctx: RtmpConnectionContext;
  readonly #onClosed: (connection: RtmpConnection) => void;
  #handshake: ServerHandshake | null = new ServerHandshake();
  readonly #reader: ChunkReader;
  readonly #writer: ChunkWriter;
  #handshakeTimer: NodeJS.Timeout | null;
  #lingerTimer: NodeJS.Timeout | null = null;
  #connected = false;
  /** Set once the connection is being closed: nothing more is read or written. */
  #closing = false;
  #closed = false;
  /** A publish is being authorized; a second one on this connection is refused meanwhile. */
  #publishPending = false;
  #nextStreamId = 1;
  #ingest: RtmpIngest | null = null;
  #ingestStreamId = 0;
  readonly #players = new Map<number, RtmpPlayer>();
  #bytesIn = 0;
  #ackWindow = 0;
  /** The Window Acknowledgement Size last sent to the peer. */
  #windowSent = 0;
  #lastAck = 0;

  constructor(socket: Socket, ctx: RtmpConnectionContext, onClosed: (connection: RtmpConnection) => void) {
    this.id = `rtmp-${nextConnectionId++}`;
    this.socket = socket;
    this.remoteAddress = socket.remoteAddress ?? 'unknown';
    this.#ctx = ctx;
    this.#onClosed = onClosed;
    this.log = ctx.log.child({ remote: `${this.remoteAddress}:${socket.remotePort ?? 0}` });
    this.#reader = new ChunkReader({
      maxMessageSize: Math.min(PRE_AUTH_MAX_MESSAGE_SIZE, ctx.maxMessageSize),
      budget: ctx.reassembly,
      onMessage: (message) => this.#onMessage(message),
    });
    this.#reader.maxMessageSizeReason = ' before a publish or play is accepted';
    this.#writer = new ChunkWriter();
    socket.setNoDelay(true);
    socket.setTimeout(ctx.idleTimeoutMs);
    socket.on('data', (data) => this.#onData(data));
    socket.on('timeout', () => this.#onIdle());
    socket.on('error', (err) => {
      this.log.debug({ err: err.message }, 'socket error');
      this.close(`socket error: ${err.message}`);
    });
    socket.on('close', () => this.#cleanup());
    this.#handshakeTimer = setTimeout(() => {
      this.log.info(
        { timeoutMs: ctx.handshakeTimeoutMs },
        'closing connection: no RTMP handshake and connect in time',
      );
      this.close('handshake timeout');
    }, ctx.handshakeTimeoutMs);
    this.#handshakeTimer.unref();
  }

  get publishing(): RtmpIngest | null {
    return this.#ingest;
  }

  get playerCount(): number {
    return this.#players.size;
  }

  get backlogBytes(): number {
    return this.socket.writableLength;
  }

  send(message: RtmpMessage): void {
    if (this.#closing) return;
    this.socket.write(this.#writer.encode(message));
  }

  write(bytes: Uint8Array): void {
    if (this.#closing) return;
    this.socket.write(bytes);
  }

  /** A publish or play was accepted: messages up to the server's limit may come now. */
  #authorized(): void {
    this.#reader.maxMessageSize = this.#ctx.maxMessageSize;
    this.#reader.maxMessageSizeReason = '';
  }

  /** Ends the connection now: the publish (if any) is unpublished, players detach. */
  close(reason: string): void {
    if (this.#closed) return;
    this.#closing = true;
    this.log.debug({ reason }, 'closing connection');
    this.socket.destroy();
    this.#cleanup();
  }

  /** Lets the client read what was just sent (a refusal), then closes. */
  #closeAfterFlush(reason: string): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#endPublish();
    this.socket.end();
    this.#lingerTimer = setTimeout(() => this.close(reason), REFUSAL_LINGER_MS);
    this.#lingerTimer.unref();
  }

  #cleanup(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing = true;
    if (this.#handshakeTimer) clearTimeout(this.#handshakeTimer);
    if (this.#lingerTimer) clearTimeout(this.#lingerTimer);
    this.#reader.release();
    this.#endPublish();
    for (const player of this.#players.values()) player.close();
    this.#players.clear();
    if (!this.socket.destroyed) this.socket.destroy();
    this.#onClosed(this);
  }

  #onIdle(): void {
    // A player's client may rightly say nothing for minutes (a stream waiting for its publisher).
    if (this.#players.size > 0) return;
    this.log.info({ timeoutMs: this.#ctx.idleTimeoutMs }, 'closing idle connection: nothing received');
    this.close('idle timeout');
  }

  #onData(data: Buffer): void {
    if (this.#closing) return;
    this.#bytesIn += data.length;
    try {
      if (this.#handshake) {
        const progress = this.#handshake.push(data);
        if (progress.reply) this.socket.write(progress.reply);
        if (!progress.done) return;
        this.#handshake = null;
        if (progress.rest.length > 0) this.#reader.push(progress.rest);
      } else {
        this.#reader.push(data);
      }
      // §5.4.4: acknowledge each window of bytes the peer asked for.
      if (this.#ackWindow > 0 && this.#bytesIn - this.#lastAck >= this.#ackWindow) {
        this.#lastAck = this.#bytesIn;
        this.send(acknowledgementMessage(this.#bytesIn % 0x100000000));
      }
    } catch (err) {
      this.#fail(err);
    }
  }

  #fail(err: unknown): void {
    if (err instanceof RtmpProtocolError || err instanceof MediaParseError) {
      this.log.warn({ err: err.message, path: this.#ingest?.path }, `closing connection: ${err.message}`);
    } else {
      this.log.error({ err }, `closing connection after an internal error: ${(err as Error)?.message}`);
    }
    this.close(err instanceof Error ? err.message : String(err));
  }

  #onMessage(message: RtmpMessage): void {
    if (this.#closing) return;
    const p = message.payload;
    switch (message.typeId) {
      case MessageType.SetChunkSize:
      case MessageType.Abort:
        return; // applied by the chunk reader
      case MessageType.Acknowledgement:
        return;
      case MessageType.WindowAckSize:
        this.#ackWindow = readU32(p, 'Window Acknowledgement Size');
        return;
      case MessageType.SetPeerBandwidth: {
        // §5.4.5: answer a peer bandwidth that differs from the window we announced with that window.
        const size = readU32(p, 'Set Peer Bandwidth');
        if (this.#connected && size !== this.#windowSent) {
          this.#windowSent = size;
          this.send(windowAckSizeMessage(size));
        }
        return;
      }
      case MessageType.UserControl:
        this.#onUserControl(p);
        return;
      case MessageType.Audio:
      case MessageType.Video:
        this.#onMedia(message.typeId, message.streamId, message.timestamp, p);
        return;
      case MessageType.DataAmf0:
        this.#onDataMessage(message.streamId, p, 0);
        return;
      case MessageType.DataAmf3:
        this.#onDataMessage(message.streamId, p, amf3Start(p, 'data'));
        return;
      case MessageType.CommandAmf0:
        this.#onCommand(message.streamId, decodeAmf0Sequence(p));
        return;
      case MessageType.CommandAmf3:
        // Type 17 as clients use it: a zero format byte, then AMF0.
        this.#onCommand(message.streamId, decodeAmf0Sequence(p, amf3Start(p, 'command')));
        return;
      case MessageType.Aggregate:
        this.#onAggregate(message);
        return;
      default:
        this.log.debug({ typeId: message.typeId }, 'ignored message type');
    }
  }

  #onUserControl(p: Uint8Array): void {
    if (p.length < 2)
      throw new RtmpProtocolError(`User Control message of ${p.length} bytes, at least 2 expected`);
    const event = (p[0] << 8) | p[1];
    if (event === UserControlEvent.PingRequest) {
      if (p.length < 6) throw new RtmpProtocolError(`PingRequest of ${p.length} bytes, 6 expected`);
      const timestamp = readU32(p.subarray(2), 'PingRequest timestamp');
      this.send(userControlMessage(UserControlEvent.PingResponse, timestamp));
    }
  }

  #onMedia(typeId: number, streamId: number, timestamp: number, payload: Uint8Array): void {
    const ingest = this.#ingest;
    if (!ingest || ingest.ended || streamId !== this.#ingestStreamId) return;
    const arrival = performance.now();
    if (typeId === MessageType.Video) ingest.onVideo(timestamp, payload, arrival);
    else ingest.onAudio(timestamp, payload, arrival);
  }

  /** FMS-style aggregate (type 22): FLV tags whose timestamps are relative to the first one's. */
  #onAggregate(message: RtmpMessage): void {
    const tags = parseFlvTags(message.payload);
    if (tags.length === 0) return;
    const base = tags[0].timestamp;
    for (const tag of tags) {
      const timestamp = (message.timestamp + tag.timestamp - base) >>> 0;
      if (tag.type === FlvTagType.Audio)
        this.#onMedia(MessageType.Audio, message.streamId, timestamp, tag.body);
      else if (tag.type === FlvTagType.Video)
        this.#onMedia(MessageType.Video, message.streamId, timestamp, tag.body);
      else if (tag.type === FlvTagType.Script) this.#onDataMessage(message.streamId, tag.body, 0);
    }
  }

  /**
   * A data message the publisher may do without (onMetaData): one that does not decode, or whose references
   * expand past MAX_EXPANDED_BYTES, is refused alone and the publish goes on.
   */
  #onDataMessage(streamId: number, payload: Uint8Array, offset: number): void {
    let values: Amf0Value[];
    try {
      values = decodeAmf0Sequence(payload, offset);
    } catch (err) {
      if (!(err instanceof Amf0Error)) throw err;
      const refusal = `data message of ${payload.length} bytes refused: ${err.message}`;
      this.log.warn({ path: this.#ingest?.path, remote: this.remoteAddress }, refusal);
      this.#ingest?.stream.warnings.add(`onMetaData ignored: ${err.message}`);
      return;
    }
    this.#onData0(streamId, values);
  }

  #onData0(streamId: number, values: Amf0Value[]): void {
    // ffmpeg and OBS send `@setDataFrame("onMetaData", {...})`; some send `onMetaData({...})` directly.
    let [name, ...args] = values;
    if (name === '@setDataFrame') [name, ...args] = args;
    if (name !== 'onMetaData') return;
    const metadata = args.find(isObject);
    if (!metadata || !this.#ingest || streamId !== this.#ingestStreamId) return;
    this.log.debug({ path: this.#ingest.path, metadata }, 'onMetaData');
    this.#ingest.onMetaData(metadata);
  }

  #onCommand(streamId: number, values: Amf0Value[]): void {
    const [name, transaction, , ...args] = values;
    if (typeof name !== 'string') {
      throw new RtmpProtocolError(`command message without a name: first value is ${describe(name)}`);
    }
    const txid = typeof transaction === 'number' ? transaction : 0;
    if (name === 'connect') {
      this.#onConnect(txid, values[2]);
      return;
    }
    if (!this.#connected) throw new RtmpProtocolError(`command "${name.slice(0, 64)}" before connect`);
    switch (name) {
      case 'createStream': {
        const id = this.#nextStreamId++;
        if (id > 64) throw new RtmpProtocolError(`createStream called ${id} times on one connection`);
        this.send(commandMessage(0, '_result', txid, null, id));
        return;
      }
      case 'releaseStream':
        this.send(commandMessage(0, '_result', txid, null, undefined));
        return;
      case 'FCPublish':
        this.send(
          commandMessage(0, 'onFCPublish', 0, null, {
            code: 'NetStream.Publish.Start',
            description: stringArg(args[0]),
          }),
        );
        this.send(commandMessage(0, '_result', txid, null, undefined));
        return;
      case 'publish':
        this.#onPublish(streamId, stringArg(args[0]));
        return;
      case 'play':
        this.#onPlay(streamId, stringArg(args[0]));
        return;
      case 'FCUnpublish':
        if (this.#ingest) {
          this.send(
            commandMessage(0, 'onFCUnpublish', 0, null, {
              code: 'NetStream.Unpublish.Success',
              description: stringArg(args[0]),
            }),
          );
          this.#endPublish();
        }
        return;
      case 'deleteStream':
        this.#closeStream(typeof args[0] === 'number' ? args[0] : streamId);
        return;
      case 'closeStream':
        this.#closeStream(streamId);
        return;
      case 'getStreamLength':
        this.send(commandMessage(0, '_result', txid, null, 0));
        return;
      default:
        // FCSubscribe, _checkbw, receiveAudio, pause…: nothing a live server needs to answer.
        this.log.debug({ command: name.slice(0, 64) }, 'ignored command');
    }
  }

  #onConnect(txid: number, commandObject: Amf0Value): void {
    if (this.#connected) throw new RtmpProtocolError('second connect command on one connection');
    if (!isObject(commandObject)) {
      throw new RtmpProtocolError(`connect without a command object: got ${describe(commandObject)}`);
    }
    this.app = typeof commandObject.app === 'string' ? commandObject.app : '';
    this.tcUrl = typeof commandObject.tcUrl === 'string' ? commandObject.tcUrl : '';
    this.#connected = true;
    if (this.#handshakeTimer) clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = null;
    this.send(windowAckSizeMessage(WINDOW_ACK_SIZE));
    this.#windowSent = WINDOW_ACK_SIZE;
    this.send(setPeerBandwidthMessage(WINDOW_ACK_SIZE, 2));
    this.send(setChunkSizeMessage(this.#ctx.chunkSize));
    const properties: Amf0Object = { fmsVer: FMS_VERSION, capabilities: 31, mode: 1 };
    if (Array.isArray(commandObject.fourCcList)) {
      const offered = commandObject.fourCcList.filter((f): f is string => typeof f === 'string');
      properties.fourCcList = offered.includes('*')
        ? SUPPORTED_FOURCCS
        : offered.filter((f) => SUPPORTED_FOURCCS.includes(f));
    }
    const encoding = typeof commandObject.objectEncoding === 'number' ? commandObject.objectEncoding : 0;
    this.send(
      commandMessage(0, '_result', txid, properties, {
        level: 'status',
        code: 'NetConnection.Connect.Success',
        description: 'Connection succeeded.',
        objectEncoding: encoding,
      }),
    );
    this.log.debug({ app: this.app, tcUrl: this.tcUrl }, 'connected');
  }

  /**
   * `rtmp://host/{app}/{name}` is path `{app}/{name}`. The app may hold slashes (OBS puts all but the key in
   * it, ffmpeg only the first segment), and either may carry a query: `cam1?key=abc` hands `abc` to the policy.
   */
  #resolve(name: string): StreamName {
    const [appPart, appQuery] = splitQuery(this.app);
    const [namePart, nameQuery] = splitQuery(name);
    const key = nameQuery.get('key') ?? appQuery.get('key') ?? undefined;
    const token = nameQuery.get('token') ?? appQuery.get('token') ?? undefined;
    return { path: parseStreamPath(`${appPart}/${namePart}`), key, token };
  }

  #onPublish(streamId: number, name: string): void {
    if (this.#ingest || this.#publishPending) {
      this.send(
        onStatusMessage(
          streamId,
          'error',
          'NetStream.Publish.BadName',
          'this connection is already publishing',
        ),
      );
      this.log.warn({ path: this.#ingest?.path }, 'second publish on one connection refused');
      return;
    }
    let target: StreamName;
    try {
      target = this.#resolve(name);
    } catch (err) {
      if (!(err instanceof InvalidPathError)) throw err;
      this.log.warn({ app: this.app, name }, `publish refused: ${err.message}`);
      this.send(onStatusMessage(streamId, 'error', 'NetStream.Publish.BadName', err.message));
      this.#closeAfterFlush('invalid path');
      return;
    }
    const { path, key } = target;
    // The policy may ask a key set or a hook; media waits, as clients wait for Publish.Start to send it.
    this.#publishPending = true;
    Promise.resolve(
      this.#ctx.authorizePublish({
        protocol: 'rtmp',
        path,
        remoteAddress: this.remoteAddress,
        ...(key !== undefined ? { key } : {}),
      }),
    ).then(
      (refusal) => {
        this.#publishPending = false;
        if (!this.#closed) this.#startPublish(streamId, path, refusal);
      },
      (err: unknown) => {
        this.#publishPending = false;
        this.#fail(err);
      },
    );
  }

  #startPublish(streamId: number, path: string, refusal: string | null): void {
    if (refusal !== null) {
      this.log.warn({ path }, `publish unauthorized: ${refusal}`);
      this.send(onStatusMessage(streamId, 'error', 'NetStream.Publish.Unauthorized', refusal));
      this.#closeAfterFlush('unauthorized');
      return;
    }
    try {
      this.#ingest = new RtmpIngest({
        registry: this.#ctx.registry,
        path,
        remoteAddress: this.remoteAddress,
        id: this.id,
        log: this.log,
        onKick: (reason) => {
          this.log.info({ path, reason }, 'publisher kicked');
          this.close(`kicked: ${reason}`);
        },
        onError: (err) => this.#fail(err),
      });
      this.#authorized();
    } catch (err) {
      if (!(err instanceof StreamBusyError)) throw err;
      this.log.warn({ path }, err.message);
      this.send(onStatusMessage(streamId, 'error', 'NetStream.Publish.BadName', err.message));
      this.#closeAfterFlush('stream busy');
      return;
    }
    this.#ingestStreamId = streamId;
    const ingest = this.#ingest;
    const start = () => {
      this.send(userControlMessage(UserControlEvent.StreamBegin, streamId));
      this.send(onStatusMessage(streamId, 'status', 'NetStream.Publish.Start', `${path} is now published`));
      this.log.info({ path }, 'publish started');
    };
    if (!this.#ctx.registry.resolver) {
      start();
      return;
    }
    // In a cluster the path may be live on another node: refused as above, before Publish.Start (which
    // encoders wait for before sending media).
    this.#ctx.registry.confirmPublish(ingest.stream, ingest).then(
      () => {
        if (!ingest.ended) start();
      },
      (err) => {
        if (ingest.ended) return;
        const message =
          err instanceof StreamBusyError ? err.message : `publish failed: ${(err as Error).message}`;
        this.log.warn({ path }, message);
        this.send(onStatusMessage(streamId, 'error', 'NetStream.Publish.BadName', message));
        this.#endPublish();
        this.#closeAfterFlush('stream busy');
      },
    );
  }

  #onPlay(streamId: number, name: string): void {
    let target: StreamName;
    try {
      target = this.#resolve(name);
    } catch (err) {
      if (!(err instanceof InvalidPathError)) throw err;
      this.log.warn({ app: this.app, name }, `play refused: ${err.message}`);
      this.send(onStatusMessage(streamId, 'error', 'NetStream.Play.StreamNotFound', err.message));
      this.#closeAfterFlush('invalid path');
      return;
    }
    const { path, token } = target;
    const policy = this.#ctx.authorizePlay;
    if (!policy?.requiresToken(path)) {
      this.#play(streamId, path);
      return;
    }
    policy
      .authorize({ protocol: 'rtmp', path, remoteAddress: this.remoteAddress, ...(token ? { token } : {}) })
      .then(
        (refusal) => {
          if (this.#closed) return;
          if (!refusal) {
            this.#play(streamId, path);
            return;
          }
          this.log.warn({ path }, refusal.reason);
          this.send(onStatusMessage(streamId, 'error', 'NetStream.Play.Failed', refusal.reason));
          this.#closeAfterFlush('play unauthorized');
        },
        (err: unknown) => this.#fail(err),
      );
  }

  /** In a cluster an edge pulls the stream from its origin first. */
  #play(streamId: number, path: string): void {
    const local = this.#ctx.registry.get(path);
    if (local?.live || !this.#ctx.registry.resolver) {
      this.#startPlay(streamId, path, local);
      return;
    }
    this.#ctx.registry.acquire(path).then(
      (stream) => {
        if (!this.#closed) this.#startPlay(streamId, path, stream);
      },
      (err) => this.#fail(err),
    );
  }

  #startPlay(streamId: number, path: string, stream: Stream | undefined): void {
    if (!stream) {
      this.log.info({ path }, 'play refused: stream not found');
      this.send(
        onStatusMessage(streamId, 'error', 'NetStream.Play.StreamNotFound', `stream "${path}" is not live`),
      );
      this.#closeAfterFlush('stream not found');
      return;
    }
    this.#players.get(streamId)?.close();
    this.send(userControlMessage(UserControlEvent.StreamBegin, streamId));
    this.send(onStatusMessage(streamId, 'status', 'NetStream.Play.Reset', `playing and resetting ${path}`));
    this.send(onStatusMessage(streamId, 'status', 'NetStream.Play.Start', `started playing ${path}`));
    this.send(dataMessage(streamId, 0, '|RtmpSampleAccess', true, true));
    const player = new RtmpPlayer({
      output: this,
      streamId,
      stream,
      feed: this.#ctx.feedFor(stream),
      registry: this.#ctx.registry,
      chunkSize: this.#ctx.chunkSize,
      maxBacklogBytes: this.#ctx.playerMaxBacklogBytes,
      log: this.log,
    });
    this.#players.set(streamId, player);
    this.#authorized();
    this.log.info({ path, live: stream.live }, 'play started');
    player.start();
  }

  #closeStream(streamId: number): void {
    if (this.#ingest && streamId === this.#ingestStreamId) this.#endPublish();
    const player = this.#players.get(streamId);
    if (player) {
      this.#players.delete(streamId);
      player.close();
    }
  }

  #endPublish(): void {
    const ingest = this.#ingest;
    if (!ingest || ingest.ended) return;
    ingest.end();
    this.log.info({ path: ingest.path }, 'publish ended');
  }
}

function readU32(p: Uint8Array, what: string): number {
  if (p.length < 4) throw new RtmpProtocolError(`${what}: ${p.length} bytes, 4 expected`);
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}

/** Types 15 and 17 open with a format byte; 0 means what follows is AMF0 (all we decode). */
function amf3Start(p: Uint8Array, kind: string): number {
  if (p.length === 0) return 0;
  if (p[0] !== 0) {
    throw new RtmpProtocolError(
      `AMF3 ${kind} message starts with 0x${p[0].toString(16)}; only AMF0 bodies are supported`,
    );
  }
  return 1;
}

function isObject(v: Amf0Value): v is Amf0Object {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function stringArg(v: Amf0Value): string {
  return typeof v === 'string' ? v : '';
}

function describe(v: Amf0Value): string {
  if (typeof v === 'string') return JSON.stringify(v.slice(0, 64));
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v;
}

function splitQuery(s: string): [string, URLSearchParams] {
  const q = s.indexOf('?');
  if (q < 0) return [s, new URLSearchParams()];
  return [s.slice(0, q), new URLSearchParams(s.slice(q + 1))];
}
