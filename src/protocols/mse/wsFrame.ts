import type { CmafFragment } from '../../core/CmafFeed.ts';
import { FramedOnce, frameMessage, Opcode } from '../../transport/websocketFrame.ts';

/** A complete server-to-client WebSocket binary message around `payload`, built once for every viewer. */
export function frameBinary(payload: Uint8Array): Buffer {
  return frameMessage(Opcode.binary, payload);
}

/** Each fragment framed once for all viewers (the GOP replayed to a joining viewer included). */
export class FramedFragments extends FramedOnce<CmafFragment> {
  constructor() {
    super((fragment) => frameBinary(fragment.bytes));
  }
}

export interface Corkable {
  uncork(): void;
}

/**
 * Coalesces each viewer's writes within one event-loop turn into one writev: a publisher's socket read often
 * holds several frames (audio and video), and one syscall per viewer per turn instead of per fragment is the
 * largest single saving at a thousand viewers. Uncorking happens on the next tick, so nothing waits longer than
 * the work already under way.
 */
export class WriteBatch {
  #corked: Corkable[] = [];
  #scheduled = false;

  /** Registers a session that just corked its socket. */
  add(session: Corkable): void {
    this.#corked.push(session);
    if (!this.#scheduled) {
      this.#scheduled = true;
      process.nextTick(this.#flush);
    }
  }

  #flush = (): void => {
    const corked = this.#corked;
    this.#corked = [];
    this.#scheduled = false;
    for (const session of corked) session.uncork();
  };
}
