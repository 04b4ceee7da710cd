import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { CmafFragment, CmafInit, CmafListener } from '../../core/CmafFeed.ts';
import type { DelayHistogram } from '../../core/DelayHistogram.ts';
import type { Logger } from '../../core/log.ts';
import { type Sink, Subscriber } from '../../core/Subscriber.ts';
import { describeTrack } from '../../media/Frame.ts';
import type { FramedFragments, WriteBatch } from './wsFrame.ts';

/** Close codes a player acts on (see docs/protocols/mse.md). */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  tooBig: 1009,
  notLive: 4404,
  /** auth.play: no token, or one that does not verify (the reason says which). */
  unauthorized: 4401,
  /** auth.play: a valid token that grants no play on this path. */
  forbidden: 4403,
  badPath: 4400,
} as const;

const BINARY = { binary: true } as const;

export interface MseSessionCounters {
  fragmentsSent: number;
  fragmentsDropped: number;
  skips: number;
  bytesSent: number;
}

/** One WebSocket viewer: the init segment, then the shared per-frame fragments, with a bounded backlog. */
export class MseSession implements CmafListener, Sink<CmafFragment> {
  readonly ws: WebSocket;
  readonly path: string;
  readonly remoteAddress: string;
  readonly startedAt = Date.now();
  /** True while the feed replays its GOP cache to this viewer at join. */
  replaying = false;
  readonly subscriber: Subscriber<CmafFragment>;
  readonly #delay: DelayHistogram;
  readonly #framed: FramedFragments;
  readonly #batch: WriteBatch;
  #corked = false;
  /** ws's socket: fragments are written pre-framed, bypassing a per-viewer frame header (see write). */
  readonly #socket: Socket;
  readonly #counters: MseSessionCounters;
  readonly #republishWaitMs: number;
  readonly #log: Logger;
  #reportedDrops = 0;
  #reportedSkips = 0;
  #waitTimer: NodeJS.Timeout | null = null;

  constructor(
    ws: WebSocket,
    path: string,
    remoteAddress: string,
    options: {
      maxBacklogBytes: number;
      republishWaitMs: number;
      delay: DelayHistogram;
      framed: FramedFragments;
      batch: WriteBatch;
      counters: MseSessionCounters;
      log: Logger;
    },
  ) {
    this.ws = ws;
    this.path = path;
    this.remoteAddress = remoteAddress;
    this.subscriber = new Subscriber<CmafFragment>(this, options.maxBacklogBytes);
    this.#delay = options.delay;
    this.#framed = options.framed;
    this.#batch = options.batch;
    this.#socket = (ws as unknown as { _socket: Socket })._socket;
    this.#counters = options.counters;
    this.#republishWaitMs = options.republishWaitMs;
    this.#log = options.log;
  }

  get backlogBytes(): number {
    return this.ws.bufferedAmount;
  }

  /**
   * The same framed bytes go to every viewer's socket. With permessage-deflate off, ws writes its own frames
   * (the JSON text messages) straight to this socket too, so order is kept.
   */
  write(fragment: CmafFragment): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    if (!this.#corked) {
      this.#corked = true;
      this.#socket.cork();
      this.#batch.add(this);
    }
    this.#socket.write(this.#framed.get(fragment));
  }

  /** Called by the WriteBatch at the end of the turn in which this session first wrote. */
  uncork(): void {
    this.#corked = false;
    this.#socket.uncork();
  }

  onInit(init: CmafInit): void {
    this.#clearWait();
    this.subscriber.restartAtRap();
    this.ws.send(
      JSON.stringify({
        type: 'init',
        codecs: init.codecs,
        tracks: init.tracks.map(describeTrack),
        ...(init.continues ? { continues: true } : {}),
      }),
    );
    this.ws.send(init.bytes, BINARY);
  }

  onItem(fragment: CmafFragment): void {
    if (this.subscriber.offer(fragment, fragment.rap)) {
      // The GOP cache handed over at join is seconds old by design; only live delivery is a delay.
      if (!this.replaying) this.#delay.record(performance.now() - fragment.frame.arrival);
      this.#counters.fragmentsSent++;
      this.#counters.bytesSent += fragment.bytes.byteLength;
      if (this.subscriber.dropped !== this.#reportedDrops) this.#reportDrops();
    } else {
      this.#counters.fragmentsDropped++;
    }
  }

  onUnpublish(): void {
    this.ws.send('{"type":"unpublished"}');
    this.#clearWait();
    this.#waitTimer = setTimeout(() => {
      this.close(
        CloseCode.notLive,
        `stream "${this.path}" did not come back within ${this.#republishWaitMs} ms`,
      );
    }, this.#republishWaitMs);
    this.#waitTimer.unref();
  }

  close(code: number, reason: string): void {
    this.#clearWait();
    if (this.ws.readyState === this.ws.OPEN) {
      if (code >= 4000) this.ws.send(JSON.stringify({ type: 'error', message: reason }));
      // A close reason is at most 123 bytes (RFC 6455 §5.5).
      this.ws.close(code, Buffer.from(reason).subarray(0, 123).toString());
    }
  }

  dispose(): void {
    this.#clearWait();
  }

  #reportDrops(): void {
    const frames = this.subscriber.dropped - this.#reportedDrops;
    this.#reportedDrops = this.subscriber.dropped;
    this.#counters.skips += this.subscriber.skips - this.#reportedSkips;
    this.#reportedSkips = this.subscriber.skips;
    this.#log.debug(
      { path: this.path, remote: this.remoteAddress, frames },
      'slow viewer skipped to a keyframe',
    );
    this.ws.send(JSON.stringify({ type: 'skipped', frames }));
  }

  #clearWait(): void {
    if (this.#waitTimer) clearTimeout(this.#waitTimer);
    this.#waitTimer = null;
  }
}
