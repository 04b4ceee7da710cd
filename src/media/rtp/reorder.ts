import { seqAdd, seqDelta } from './packet.ts';

/** RFC 3550 §A.1: how far behind a packet may be and still count as reordered rather than a restart. */
const MAX_MISORDER = 100;

/*
 * Restores sequence order before a depacketizer (which treats any gap as loss, payload.ts): packets that
 * arrive early wait, up to `maxDelayMs` or `capacity` packets, for the missing ones — reordered by the
 * network or retransmitted after a NACK (RFC 4585 §6.2.1; `missing()` lists what to ask for). Once the wait
 * is over the gap is declared lost and the packets after it go on. The first packet sets where the order
 * starts (one older than it is late). Time is injected (milliseconds) so the caller decides the clock and
 * calls `flush(now)` from a timer.
 */

export interface RtpReorderBufferOptions {
  /**
   * Packets held at most, a power of two so that slots stay distinct across the 16-bit wrap (default 128,
   * about 0.15 s of 8 Mbit/s video); a larger gap is given up at once.
   */
  capacity?: number;
  /** How long a packet waits for the ones before it (default 50 ms). */
  maxDelayMs?: number;
}

export class RtpReorderBuffer<P extends { sequenceNumber: number }> {
  readonly capacity: number;
  readonly maxDelayMs: number;
  readonly #release: (packet: P) => void;
  /** Held packets by sequence number modulo capacity, with their arrival times. */
  readonly #slots: (P | undefined)[];
  readonly #arrivals: Float64Array;
  #held = 0;
  /** The sequence number released next, -1 before the first packet. */
  #next = -1;
  #late = 0;
  #lost = 0;
  /** A packet far behind #next: if its successor comes next, the sender restarted its numbering. */
  #restartPacket: P | undefined;

  /** `release` receives packets in sequence order, synchronously from push/flush. */
  constructor(release: (packet: P) => void, options: RtpReorderBufferOptions = {}) {
    const capacity = options.capacity ?? 128;
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 32768 || (capacity & (capacity - 1)) !== 0)
      throw new RangeError(
        `reorder capacity must be a power of two from 1 to 32768 packets, got ${capacity}`,
      );
    this.capacity = capacity;
    this.maxDelayMs = options.maxDelayMs ?? 50;
    this.#release = release;
    this.#slots = new Array(capacity);
    this.#arrivals = new Float64Array(capacity);
  }

  /** Packets that came after their turn (duplicates, or retransmissions after their gap was given up). */
  get late(): number {
    return this.#late;
  }

  /** Packets declared lost. */
  get lost(): number {
    return this.#lost;
  }

  get waiting(): number {
    return this.#held;
  }

  push(packet: P, nowMs: number): void {
    const seq = packet.sequenceNumber;
    if (this.#next < 0) this.#next = seq;
    const ahead = seqDelta(seq, this.#next);
    if (ahead < 0) {
      // RFC 3550 §A.1: far behind, then its successor, is a sender that restarted its numbering: what is
      // held goes out and the order starts again from the first packet of the new numbering.
      const candidate = this.#restartPacket;
      if (ahead < -MAX_MISORDER && candidate && seqAdd(candidate.sequenceNumber, 1) === seq) {
        this.#restartPacket = undefined;
        while (this.#held > 0) this.#skipTo(this.#firstHeld());
        this.#next = candidate.sequenceNumber;
        this.push(candidate, nowMs);
        this.push(packet, nowMs);
        return;
      }
      this.#restartPacket = ahead < -MAX_MISORDER ? packet : undefined;
      this.#late++;
      return;
    }
    this.#restartPacket = undefined;
    if (ahead === 0) {
      this.#release(packet);
      this.#next = seqAdd(seq, 1);
      this.#drain();
      return;
    }
    if (ahead >= this.capacity) {
      // Too far ahead to hold: what is missing before it will not be waited for.
      this.#skipTo(seqAdd(seq, 1 - this.capacity));
    }
    const slot = seq % this.capacity;
    if (this.#slots[slot] !== undefined) {
      this.#late++; // a duplicate of a held packet
      return;
    }
    this.#slots[slot] = packet;
    this.#arrivals[slot] = nowMs;
    this.#held++;
    this.flush(nowMs);
  }

  /** Gives up on gaps whose later packets have waited `maxDelayMs`; call it from a timer while `waiting`. */
  flush(nowMs: number): void {
    while (this.#held > 0) {
      const first = this.#firstHeld();
      if (nowMs - this.#arrivals[first % this.capacity] < this.maxDelayMs) return;
      this.#skipTo(first);
    }
  }

  /** Sequence numbers missing before the held packets: what a NACK should ask for. */
  missing(): number[] {
    const out: number[] = [];
    if (this.#held === 0) return out;
    let remaining = this.#held;
    for (let seq = this.#next; remaining > 0; seq = seqAdd(seq, 1)) {
      if (this.#slots[seq % this.capacity] === undefined) out.push(seq);
      else remaining--;
    }
    return out;
  }

  /** Forgets held packets without releasing them (after an SSRC change, for instance). */
  reset(): void {
    this.#slots.fill(undefined);
    this.#held = 0;
    this.#next = -1;
    this.#restartPacket = undefined;
  }

  /** Every held packet lies within `capacity` of #next, so the scan is bounded. */
  #firstHeld(): number {
    let seq = this.#next;
    for (let i = 0; i < this.capacity && this.#slots[seq % this.capacity] === undefined; i++)
      seq = seqAdd(seq, 1);
    return seq;
  }

  /** Declares everything before `seq` lost (releasing what is held there), then releases the run from `seq`. */
  #skipTo(seq: number): void {
    while (seqDelta(seq, this.#next) > 0) {
      const slot = this.#next % this.capacity;
      const packet = this.#slots[slot];
      if (packet !== undefined) {
        this.#slots[slot] = undefined;
        this.#held--;
        this.#release(packet);
      } else this.#lost++;
      this.#next = seqAdd(this.#next, 1);
    }
    this.#drain();
  }

  #drain(): void {
    for (;;) {
      const slot = this.#next % this.capacity;
      const packet = this.#slots[slot];
      if (packet === undefined) return;
      this.#slots[slot] = undefined;
      this.#held--;
      this.#release(packet);
      this.#next = seqAdd(this.#next, 1);
    }
  }
}
