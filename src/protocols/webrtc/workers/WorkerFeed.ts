import { type FeedKind, RtpFeed } from '../RtpFeed.ts';
import type { FeedClock } from '../WhepSession.ts';
import type { Anchor, FeedDescription } from './messages.ts';

/**
 * A worker's copy of one main-process feed: the packets main sends over the RTP channel, delivered to this
 * worker's WHEP sessions exactly as the main feed delivers to its own. Its retransmission cache answers the
 * NACKs of this worker's viewers without main; keyframe requests go up to main, which rate-limits them again
 * across every worker before the source sees one.
 */
export class WorkerFeed extends RtpFeed implements FeedClock {
  readonly feedId: number;
  anchor: Anchor = { video: null, audio: null };
  readonly #askMain: (feedId: number) => void;

  constructor(
    description: FeedDescription,
    minKeyframeIntervalMs: number,
    askMain: (feedId: number) => void,
  ) {
    super(description.path, minKeyframeIntervalMs);
    this.feedId = description.feedId;
    this.#askMain = askMain;
    this.describe(description);
  }

  describe(description: FeedDescription): void {
    this.video = description.video;
    this.audio = description.audio;
    this.anchor = description.anchor;
  }

  push(
    kind: FeedKind,
    packet: Buffer,
    sequence: number,
    timestamp: number,
    ssrc: number,
    keyframeStart: boolean,
  ): void {
    this.deliver(kind, packet, sequence, timestamp, ssrc, keyframeStart);
  }

  tracksChanged(): void {
    for (const listener of [...this.listeners]) listener.onTracksChanged();
  }

  finish(reason: string): void {
    this.end(reason);
  }

  protected askSourceForKeyframe(): void {
    this.#askMain(this.feedId);
  }
}
