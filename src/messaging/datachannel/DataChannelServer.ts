import type { DataChannel } from 'node-datachannel';
import type { DataChannelHandler, DataChannelPeer } from '../../protocols/webrtc/DataChannels.ts';
import type { Identity } from '../ChannelPolicy.ts';
import { ChannelSession, type ConnectionSink } from '../ChannelSession.ts';
import type { PresenceFrame, StoredMessage } from '../Message.ts';
import type { Messaging } from '../Messaging.ts';
import { MessagingError, type ServerEvent } from '../protocol.ts';

/**
 * The label of a messaging data channel. Reliable and ordered for chat; a client may open another with the
 * same label `ordered: false, maxRetransmits: 0` for ephemeral events (reactions): same protocol, lost
 * messages are not resent.
 */
export const MESSAGING_DATA_CHANNEL_LABEL = 'subsecond.messaging';

/**
 * Where a data channel's unsent bytes wait, and what `bufferedAmount()` sees of them: libdatachannel hands each
 * message to usrsctp, which takes it into the association's send buffer (SO_SNDBUF, 1 MiB in libdatachannel)
 * until that is full; only then does libdatachannel queue it itself, and only that queue is `bufferedAmount()`.
 * So the first ~1 MiB a stalled reader does not take is invisible (0) and bounded by usrsctp; beyond it each
 * send is counted, and the sink stops at `maxBacklogBytes` of them. A reader that is merely slow in JavaScript
 * never gets here: its SCTP stack (node-datachannel's threads, a browser's network process) acknowledges and
 * queues for the page whether or not the page handles the messages, so only a stalled peer or a path slower
 * than the publish rate pushes back.
 *
 * A replay (a resume with since) is sent while the counted backlog is under half the limit and continues when
 * libdatachannel reports it drained to a quarter, so a resume of a whole history does not cut itself off.
 */
class DataChannelSink implements ConnectionSink {
  readonly transport = 'datachannel';
  readonly #dc: DataChannel;
  readonly #maxBacklogBytes: number;
  readonly #onTooSlow: (reason: string) => void;
  #tooSlow = false;
  #drained: (() => void)[] = [];

  constructor(dc: DataChannel, maxBacklogBytes: number, onTooSlow: (reason: string) => void) {
    this.#dc = dc;
    this.#maxBacklogBytes = maxBacklogBytes;
    this.#onTooSlow = onTooSlow;
    dc.setBufferedAmountLowThreshold(Math.floor(maxBacklogBytes / 4));
    dc.onBufferedAmountLow(() => {
      const resume = this.#drained;
      this.#drained = [];
      for (const f of resume) f();
    });
  }

  backlogged(): boolean {
    // Above the low threshold, so the drop below it, which resumes the waiters, is still to come.
    return this.#dc.bufferedAmount() > this.#maxBacklogBytes / 2;
  }

  whenDrained(resume: () => void): void {
    this.#drained.push(resume);
  }

  tooSlow(reason = 'more messages wait for this data channel than the history holds'): void {
    if (this.#tooSlow) return;
    this.#tooSlow = true;
    this.#onTooSlow(reason);
  }

  #send(text: string): void {
    if (this.#tooSlow || !this.#dc.isOpen()) return;
    // As the WebSocket sink: a reader whose unsent backlog passes the limit is told why and dropped; it
    // resumes with since on a new channel. Nothing after the first refused message is sent, so the client's
    // last id is exactly where the history resumes.
    const buffered = this.#dc.bufferedAmount();
    if (buffered > this.#maxBacklogBytes) {
      this.tooSlow(
        `${buffered} bytes unsent on this data channel, over messaging.maxBacklogBytes (${this.#maxBacklogBytes})`,
      );
      return;
    }
    this.sendNow(text);
  }

  /** Sends whatever the backlog: the one frame that explains the close goes out behind what is queued. */
  sendNow(text: string): void {
    try {
      this.#dc.sendMessage(text);
    } catch {
      // closed between the check and the send
    }
  }

  message(message: StoredMessage): void {
    this.#send(message.frame);
  }

  presence(presence: PresenceFrame): void {
    this.#send(presence.frame);
  }

  event(event: ServerEvent): void {
    this.#send(JSON.stringify(event));
  }
}

/** Frames a client may send before its identity is resolved; more are dropped. */
const EARLY_FRAMES = 64;

/**
 * Messaging over WebRTC data channels labelled `subsecond.messaging` on WHEP/WHIP sessions: each channel is
 * one ChannelSession speaking the WebSocket frame protocol unchanged (docs/protocols/messaging.md), with the
 * identity of the WHEP/WHIP request (resolved once per peer, so every channel of a peer speaks as one).
 */
export class DataChannelServer implements DataChannelHandler {
  readonly #messaging: Messaging;
  readonly #identities = new WeakMap<
    DataChannelPeer,
    Identity | { refused: string } | Promise<Identity | { refused: string }>
  >();
  readonly #open = new Set<() => void>();

  constructor(messaging: Messaging) {
    this.#messaging = messaging;
  }

  get connections(): number {
    return this.#open.size;
  }

  open(dc: DataChannel, peer: DataChannelPeer): (() => void) | null {
    if (dc.getLabel() !== MESSAGING_DATA_CHANNEL_LABEL) return null;
    const messaging = this.#messaging;
    let identity = this.#identities.get(peer);
    if (!identity) {
      identity = messaging.identities.identify(peer);
      this.#identities.set(peer, identity);
    }
    // The identity may still be resolving (a token checked against a remote key set): frames the client
    // sends meanwhile wait for it, bounded.
    let handler: ((data: string | Buffer | ArrayBuffer) => void) | null = null;
    const early: (string | Buffer | ArrayBuffer)[] = [];
    dc.onMessage((data) => {
      if (handler) handler(data);
      else if (early.length < EARLY_FRAMES) early.push(data);
    });
    let endSession: (() => void) | null = null;
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      if (endSession) endSession();
      else {
        try {
          dc.close();
        } catch {
          // already closed with its peer connection
        }
      }
    };
    dc.onClosed(end);
    Promise.resolve(identity).then(
      (resolved) => {
        this.#identities.set(peer, resolved);
        if (ended) return;
        endSession = this.#start(dc, peer, resolved, (h) => {
          handler = h;
          for (const data of early.splice(0)) h(data);
        });
      },
      (err: unknown) => {
        messaging.log.error(
          { err, session: peer.sessionId },
          'messaging identity failed; data channel closed',
        );
        end();
      },
    );
    return end;
  }

  #start(
    dc: DataChannel,
    peer: DataChannelPeer,
    identity: Identity | { refused: string },
    onMessage: (handler: (data: string | Buffer | ArrayBuffer) => void) => void,
  ): () => void {
    const messaging = this.#messaging;
    const log = messaging.log;
    if ('refused' in identity) {
      log.info({ remote: peer.remoteAddress, session: peer.sessionId }, identity.refused);
      dc.close();
      return () => {};
    }
    let release: () => void;
    try {
      release = messaging.admit(peer.remoteAddress);
    } catch (err) {
      log.info({ remote: peer.remoteAddress }, (err as Error).message);
      dc.close();
      return () => {};
    }
    let closed = false;
    const end = () => {
      if (closed) return;
      closed = true;
      this.#open.delete(end);
      session.close();
      release();
      try {
        dc.close();
      } catch {
        // already closed with its peer connection
      }
    };
    const config = messaging.config;
    const sink = new DataChannelSink(dc, config.maxBacklogBytes, (reason) => {
      log.info({ session: peer.sessionId, reason }, 'messaging data channel read too slowly; closed');
      // A data channel has no close code (a WebSocket gets 4408): the reason is an error event, queued behind
      // the backlog on the same ordered stream, and the close (an SCTP stream reset, RFC 8831 §6.7) follows it.
      sink.sendNow(
        JSON.stringify(
          new MessagingError(
            'too_slow',
            `reading too slowly: ${reason}; open a new channel and subscribe with since`,
          ).toEvent(),
        ),
      );
      end();
    });
    const session = new ChannelSession(messaging, sink, identity, peer.remoteAddress);
    this.#open.add(end);
    // A WebSocket closes a frame this big with 1009; a data channel has no close code, so it is refused with
    // an error event and the channel stays open.
    const maxFrame = config.maxMessageBytes + 4096;
    onMessage((data) => {
      if (typeof data !== 'string') {
        sink.event(
          new MessagingError(
            'bad_frame',
            'binary messages are not part of the protocol; send JSON text',
          ).toEvent(),
        );
        return;
      }
      if (data.length > maxFrame / 4 && Buffer.byteLength(data) > maxFrame) {
        sink.event(
          new MessagingError(
            'too_large',
            `frame is ${Buffer.byteLength(data)} bytes; the limit is ${maxFrame} (messaging.maxMessageBytes + 4096)`,
          ).toEvent(),
        );
        return;
      }
      session.handleFrame(data).catch((err) => {
        log.error({ err }, 'messaging session failed; closing its data channel');
        end();
      });
    });
    return end;
  }

  close(): void {
    for (const end of [...this.#open]) end();
  }
}
