/**
 * One viewer's delivery policy. The sink (a socket) owns the queue; the subscriber watches its backlog.
 * When the backlog passes the bound the viewer has fallen behind: everything is dropped until the next random
 * access point, so a slow viewer never grows server memory and never delays anyone else.
 */
export interface Sink<T> {
  write(item: T): void;
  /** Bytes written but not yet handed to the kernel (ws.bufferedAmount, socket.writableLength). */
  readonly backlogBytes: number;
}

export class Subscriber<T> {
  readonly sink: Sink<T>;
  readonly maxBacklogBytes: number;
  delivered = 0;
  dropped = 0;
  /** How many times the viewer fell behind and skipped to a keyframe. */
  skips = 0;
  #waitingForRap: boolean;

  /** `startAtRap`: deliver nothing until the first random access point (a viewer joining mid-GOP). */
  constructor(sink: Sink<T>, maxBacklogBytes: number, startAtRap = true) {
    this.sink = sink;
    this.maxBacklogBytes = maxBacklogBytes;
    this.#waitingForRap = startAtRap;
  }

  /** Offers one item; returns whether it was written. `rap` marks a random access point. */
  offer(item: T, rap: boolean): boolean {
    if (this.#waitingForRap) {
      if (!rap) {
        this.dropped++;
        return false;
      }
      this.#waitingForRap = false;
    }
    if (this.sink.backlogBytes > this.maxBacklogBytes) {
      this.#waitingForRap = true;
      this.skips++;
      this.dropped++;
      return false;
    }
    this.sink.write(item);
    this.delivered++;
    return true;
  }

  /** Forget the current position: the next item delivered is a random access point (after a new init). */
  restartAtRap(): void {
    this.#waitingForRap = true;
  }
}
