import { SequenceUnwrapper } from './packet.ts';

/** RFC 3550 §A.1: how far behind a packet may be and still count as reordered rather than a restart. */
const MAX_MISORDER = 100;

/*
 * Which packets a receiver should ask a sender to retransmit, and when (RFC 4585 §6.2.1 generic NACK; the
 * policy is ours, close to what browsers do): a packet counts as missing once a later one arrived; it is asked
 * for at once, again every round-trip time while it is still missing, at most `maxRetries` times, and given up
 * when older than `maxAgeMs` or when more than `capacity` are missing (the sender's retransmission cache would
 * not have it either; a keyframe request is the remedy then). Time is injected in milliseconds.
 *
 * `NackTracker.onPacket(seq, now)` records an arrival; `due(now, rttMs)` returns the sequence numbers to put in
 * a NACK now (see `writeNack` in rtcp.ts).
 */

export interface NackTrackerOptions {
  /** Requests per missing packet (default 10). */
  maxRetries?: number;
  /** A packet missing for longer is given up (default 1000 ms). */
  maxAgeMs?: number;
  /** Most packets tracked as missing; beyond it the oldest are given up (default 1000). */
  capacity?: number;
}

interface Missing {
  /** Extended sequence number. */
  seq: number;
  since: number;
  lastSent: number;
  retries: number;
}

export class NackTracker {
  readonly maxRetries: number;
  readonly maxAgeMs: number;
  readonly capacity: number;
  readonly #unwrapper = new SequenceUnwrapper();
  /** Missing packets in ascending extended sequence order. */
  #missing: Missing[] = [];
  #givenUp = 0;
  #recovered = 0;
  /** Extended number of a packet far behind the highest: if its successor follows, the sender restarted. */
  #restartCandidate = -1;

  constructor(options: NackTrackerOptions = {}) {
    this.maxRetries = options.maxRetries ?? 10;
    this.maxAgeMs = options.maxAgeMs ?? 1000;
    this.capacity = options.capacity ?? 1000;
  }

  /** Packets given up because they stayed missing too long, too often, or too many were missing. */
  get givenUp(): number {
    return this.#givenUp;
  }

  /** Missing packets that arrived after all (reordered or retransmitted). */
  get recovered(): number {
    return this.#recovered;
  }

  get missingCount(): number {
    return this.#missing.length;
  }

  onPacket(sequenceNumber: number, nowMs: number): void {
    const before = this.#unwrapper.highest;
    const seq = this.#unwrapper.unwrap(sequenceNumber);
    if (before < 0) return;
    if (seq < before - MAX_MISORDER) {
      // RFC 3550 §A.1: far behind twice in a row is a sender that restarted its numbering; start over.
      if (this.#restartCandidate === seq - 1) {
        this.#givenUp += this.#missing.length;
        this.reset();
        this.#unwrapper.unwrap(sequenceNumber);
      } else this.#restartCandidate = seq;
      return;
    }
    this.#restartCandidate = -1;
    if (seq <= before) {
      const i = this.#indexOf(seq);
      if (i >= 0) {
        this.#missing.splice(i, 1);
        this.#recovered++;
      }
      return;
    }
    const gap = seq - before - 1;
    if (gap > this.capacity) {
      // Too many to ask for: forget the older missing ones too, they are behind a hole no NACK will fill.
      this.#givenUp += this.#missing.length + gap;
      this.#missing = [];
      return;
    }
    for (let s = before + 1; s < seq; s++)
      this.#missing.push({ seq: s, since: nowMs, lastSent: -Infinity, retries: 0 });
    const excess = this.#missing.length - this.capacity;
    if (excess > 0) {
      this.#missing.splice(0, excess);
      this.#givenUp += excess;
    }
  }

  /**
   * The 16-bit sequence numbers to NACK now: missing ones not asked for within the last `rttMs` (so a
   * retransmission has had time to arrive), each counted as one more retry.
   */
  due(nowMs: number, rttMs: number): number[] {
    const out: number[] = [];
    let keep = 0;
    for (const m of this.#missing) {
      if (nowMs - m.since > this.maxAgeMs || m.retries >= this.maxRetries) {
        this.#givenUp++;
        continue;
      }
      this.#missing[keep++] = m;
      if (nowMs - m.lastSent >= rttMs) {
        m.lastSent = nowMs;
        m.retries++;
        out.push(m.seq & 0xffff);
      }
    }
    this.#missing.length = keep;
    return out;
  }

  reset(): void {
    this.#unwrapper.reset();
    this.#missing = [];
    this.#restartCandidate = -1;
  }

  #indexOf(seq: number): number {
    let lo = 0;
    let hi = this.#missing.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = this.#missing[mid].seq;
      if (s === seq) return mid;
      if (s < seq) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }
}
