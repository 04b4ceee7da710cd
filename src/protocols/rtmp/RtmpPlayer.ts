import type { Logger } from '../../core/log.ts';
import type { Stream } from '../../core/Stream.ts';
import type { StreamRegistry } from '../../core/StreamRegistry.ts';
import { Subscriber } from '../../core/Subscriber.ts';
import { encodeChunks } from './chunk.ts';
import {
  Csid,
  dataMessage,
  MessageType,
  onStatusMessage,
  type RtmpMessage,
  UserControlEvent,
  userControlMessage,
} from './messages.ts';
import type { RtmpPlayFeed, RtmpPlayInit, RtmpPlayListener, SharedMediaMessage } from './RtmpPlayFeed.ts';

/** Where a player writes: its connection. */
export interface RtmpOutput {
  /** Chunks and writes a per-connection message. */
  send(message: RtmpMessage): void;
  /** Writes bytes already chunked (shared media). */
  write(bytes: Uint8Array): void;
  /** Bytes written but not yet handed to the kernel. */
  readonly backlogBytes: number;
}

export interface RtmpPlayerOptions {
  readonly output: RtmpOutput;
  readonly streamId: number;
  readonly stream: Stream;
  readonly feed: RtmpPlayFeed;
  readonly registry: StreamRegistry;
  readonly chunkSize: number;
  readonly maxBacklogBytes: number;
  readonly log: Logger;
}

/**
 * One `play` on one message stream: the stream's shared media messages through a Subscriber, so a player whose
 * socket backs up skips to the next keyframe instead of growing memory or slowing the others.
 */
export class RtmpPlayer implements RtmpPlayListener {
  readonly streamId: number;
  readonly stream: Stream;
  readonly subscriber: Subscriber<SharedMediaMessage>;
  readonly #output: RtmpOutput;
  readonly #feed: RtmpPlayFeed;
  readonly #registry: StreamRegistry;
  readonly #chunkSize: number;
  readonly #log: Logger;
  #removeListener: (() => void) | null = null;
  #releaseViewer: (() => void) | null = null;
  #waitingForPublisher = false;
  #closed = false;

  constructor(options: RtmpPlayerOptions) {
    this.streamId = options.streamId;
    this.stream = options.stream;
    this.#output = options.output;
    this.#feed = options.feed;
    this.#registry = options.registry;
    this.#chunkSize = options.chunkSize;
    this.#log = options.log;
    const output = this.#output;
    const streamId = this.streamId;
    this.subscriber = new Subscriber<SharedMediaMessage>(
      {
        write: (message) => output.write(message.bytesFor(streamId)),
        get backlogBytes() {
          return output.backlogBytes;
        },
      },
      options.maxBacklogBytes,
    );
  }

  /** Counts the viewer and attaches to the feed: the init and cached GOP arrive at once when the stream is live. */
  start(): void {
    this.#releaseViewer = this.stream.addViewer('rtmp');
    this.#waitingForPublisher = !this.stream.live;
    this.#removeListener = this.#feed.addListener(this);
  }

  onInit(init: RtmpPlayInit): void {
    if (this.#closed) return;
    if (this.#waitingForPublisher) {
      this.#waitingForPublisher = false;
      this.#output.send(userControlMessage(UserControlEvent.StreamBegin, this.streamId));
      this.#output.send(
        onStatusMessage(
          this.streamId,
          'status',
          'NetStream.Play.PublishNotify',
          `${this.stream.path} is now published`,
        ),
      );
    }
    const timestamp = this.#feed.currentTimestamp;
    // Encoded once by the feed: a player costs the bytes it is sent, not an encoding of its own.
    this.#output.send({ ...dataMessage(this.streamId, timestamp), payload: init.metadataPayload });
    for (const header of init.sequenceHeaders) {
      const csid = header.typeId === MessageType.Video ? Csid.Video : Csid.Audio;
      // Type 0 headers like the shared media, so the media chunk streams carry no compression state.
      this.#output.write(
        encodeChunks(
          { csid, timestamp, typeId: header.typeId, streamId: this.streamId },
          [header.body],
          this.#chunkSize,
        ),
      );
    }
    this.subscriber.restartAtRap();
  }

  onItem(message: SharedMediaMessage): void {
    if (this.#closed) return;
    this.subscriber.offer(message, message.rap);
  }

  onUnpublish(): void {
    if (this.#closed) return;
    this.#waitingForPublisher = true;
    this.#output.send(
      onStatusMessage(
        this.streamId,
        'status',
        'NetStream.Play.UnpublishNotify',
        `${this.stream.path} is now unpublished`,
      ),
    );
  }

  /** Detaches from the feed and uncounts the viewer; the registry drops the stream when nobody holds it. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#removeListener?.();
    this.#releaseViewer?.();
    this.#registry.release(this.stream);
    const s = this.subscriber;
    this.#log.info(
      { path: this.stream.path, delivered: s.delivered, dropped: s.dropped, skips: s.skips },
      'player left',
    );
  }
}
