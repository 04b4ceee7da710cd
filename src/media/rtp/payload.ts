import { MediaParseError } from '../errors.ts';
import { type RtpPacket, seqAdd, seqDelta } from './packet.ts';

/** RFC 3550 §A.1: how far behind a packet may be and still count as reordered rather than a restart. */
const MAX_MISORDER = 100;

/*
 * What every RTP payload format here shares: a packetizer turns one frame into RTP payloads (the caller adds
 * the RTP headers, RFC 3550 §5.1, once per stream), a depacketizer turns RTP packets back into frames.
 */

/** The RTP payloads of one frame, in send order; all share the frame's RTP timestamp. */
export interface RtpPayloads {
  payloads: Uint8Array[];
  /** Index of the payload whose packet carries the marker bit (the frame's last), -1 when there is none. */
  markerIndex: number;
}

/** A frame assembled from RTP packets. */
export interface DepacketizedFrame {
  /** As Frame.data carries it: AVCC for H.264, the raw frame for VP8/VP9, OBUs for AV1, the Opus packet. */
  data: Uint8Array;
  /** RTP timestamp of the frame's packets. */
  timestamp: number;
  keyframe: boolean;
  /** Opus only: the packet's duration in 48 kHz samples, from its TOC byte. */
  duration?: number;
  /**
   * H.264 only: a new avcC built from SPS/PPS this frame carried in band, when they differ from the ones
   * seen before (the first time, or after the publisher changed resolution or encoder).
   */
  config?: Uint8Array;
}

/** What one pushed packet produced: at most one completed frame and at most one error. */
export interface DepacketizeResult {
  frame?: DepacketizedFrame;
  /** A malformed packet: the frame it belonged to is dropped. */
  error?: MediaParseError;
  /**
   * The depacketizer dropped data (loss or a malformed packet) and discards frames until a keyframe: the
   * receiver should ask the sender for one (PLI, RFC 4585 §6.3.1), rate-limited.
   */
  keyframeNeeded: boolean;
}

/**
 * Turns RTP packets of one SSRC, in sequence order, into frames. `push` never throws: a malformed packet is
 * reported in the result. Payload views of pushed packets are kept until their frame completes, so a caller
 * must not reuse a packet's buffer before then.
 */
export interface Depacketizer {
  push(packet: RtpPacket): DepacketizeResult;
  /** Forgets any partial frame and waits for a keyframe again (after an SSRC change, for instance). */
  reset(): void;
}

const NOTHING: DepacketizeResult = Object.freeze({ keyframeNeeded: false }) as DepacketizeResult;
const WAITING_FOR_KEYFRAME: DepacketizeResult = Object.freeze({
  keyframeNeeded: true,
}) as DepacketizeResult;

export interface FrameDepacketizerOptions {
  /**
   * After loss or a malformed packet, drop frames until the next keyframe (default true): a frame that
   * references a lost one decodes to garbage until the next keyframe anyway. When false, the next frame
   * whose packets all arrived is passed on. The first frame is always awaited to be a keyframe.
   */
  waitForKeyframe?: boolean;
}

/**
 * The frame boundary and loss logic video depacketizers share (RFC 3550 §5.1): a frame is the run of
 * packets with one timestamp, ended by the marker bit (or, for senders that forget it, by the next
 * timestamp); a sequence gap breaks the frame it falls in. Subclasses parse their payload format.
 */
export abstract class FrameDepacketizer implements Depacketizer {
  readonly #waitForKeyframe: boolean;
  #lastSeq = -1;
  #open = false;
  #timestamp = 0;
  #broken = false;
  #needKeyframe = true;
  /** A second frame completed by the same packet (only from senders that omit the marker bit). */
  #held: DepacketizedFrame | undefined;
  /** A packet far behind the last one: if its successor comes next, the sender restarted its numbering. */
  #restartPacket: RtpPacket | undefined;
  /** The malformed-payload error of the packet being pushed. */
  #error: MediaParseError | undefined;

  constructor(options: FrameDepacketizerOptions = {}) {
    this.#waitForKeyframe = options.waitForKeyframe ?? true;
  }

  push(packet: RtpPacket): DepacketizeResult {
    const seq = packet.sequenceNumber;
    let carried: DepacketizeResult | undefined;
    if (this.#lastSeq >= 0 && seqDelta(seq, this.#lastSeq) <= 0) {
      // RFC 3550 §A.1: a packet far behind followed by its successor is a sender that restarted its sequence
      // numbers (a new encoder, say): the cut frame is dropped and the new numbering followed from that first
      // packet. Anything else behind is a duplicate or a late retransmission whose frame is gone.
      const candidate = this.#restartPacket;
      const farBehind = seqDelta(seq, this.#lastSeq) < -MAX_MISORDER;
      if (!(farBehind && candidate && seqAdd(candidate.sequenceNumber, 1) === seq)) {
        this.#restartPacket = farBehind ? packet : undefined;
        const held = this.#held;
        this.#held = undefined;
        return held ? { frame: held, keyframeNeeded: this.#needKeyframe } : this.#nothing();
      }
      this.#restartPacket = undefined;
      if (this.#open) {
        this.#break();
        this.#finish();
      }
      this.#lastSeq = -1;
      carried = this.push(candidate);
    }
    this.#restartPacket = undefined;
    let frame = carried?.frame;
    if (!frame) {
      frame = this.#held;
      this.#held = undefined;
    }
    this.#error = carried?.error;
    const gap = this.#lastSeq >= 0 && seqDelta(seq, this.#lastSeq) !== 1;
    this.#lastSeq = seq;
    if (this.#open && packet.timestamp !== this.#timestamp) {
      // The lost packets may have held the end of the open frame.
      if (gap) this.#break();
      const done = this.#finish();
      if (done) frame = done;
    }
    const opened = !this.#open;
    if (opened) {
      this.#open = true;
      this.#timestamp = packet.timestamp;
      this.#broken = false;
      this.begin();
    }
    // The lost packets belonged to this frame, or to frames in between, which this one may reference; a
    // format whose payload header marks a frame's first packet can tell the first case apart.
    if (gap && !(opened && this.startsFrame(packet))) this.#break();
    if (!this.#broken) {
      try {
        this.append(packet);
      } catch (err) {
        if (!(err instanceof MediaParseError)) throw err;
        this.#error = err;
        this.#break();
      }
    }
    if (packet.marker) {
      const done = this.#finish();
      if (done) {
        if (frame) this.#held = done;
        else frame = done;
      }
    }
    if (!frame && !this.#error) return this.#nothing();
    const result: DepacketizeResult = { keyframeNeeded: this.#needKeyframe };
    if (frame) result.frame = frame;
    if (this.#error) result.error = this.#error;
    return result;
  }

  reset(): void {
    this.#lastSeq = -1;
    this.#restartPacket = undefined;
    this.#open = false;
    this.#broken = false;
    this.#needKeyframe = true;
    this.#held = undefined;
    this.discard();
  }

  #nothing(): DepacketizeResult {
    return this.#needKeyframe ? WAITING_FOR_KEYFRAME : NOTHING;
  }

  #break(): void {
    this.#broken = true;
    if (this.#waitForKeyframe) this.#needKeyframe = true;
  }

  #finish(): DepacketizedFrame | undefined {
    this.#open = false;
    if (!this.#broken && !this.complete()) this.#break();
    if (this.#broken) {
      this.discard();
      return undefined;
    }
    let frame: DepacketizedFrame | undefined;
    try {
      frame = this.build(this.#timestamp);
    } catch (err) {
      if (!(err instanceof MediaParseError)) throw err;
      this.#error = err;
      if (this.#waitForKeyframe) this.#needKeyframe = true;
    }
    this.discard();
    if (!frame || (this.#needKeyframe && !frame.keyframe)) return undefined;
    this.#needKeyframe = false;
    return frame;
  }

  /**
   * Whether the payload header says this is the first packet of a frame, so that a gap before it lost only
   * earlier frames. H.264 cannot tell (a slice may be a frame's second), so it keeps the default.
   */
  protected startsFrame(_packet: RtpPacket): boolean {
    return false;
  }

  /** A new frame starts: forget the previous one's state. */
  protected abstract begin(): void;
  /** Adds one packet's payload to the open frame; throws MediaParseError on a malformed payload. */
  protected abstract append(packet: RtpPacket): void;
  /** Whether the open frame is whole (no fragment left open) once its last packet arrived. */
  protected abstract complete(): boolean;
  /** Assembles the frame; undefined when it holds nothing to decode. */
  protected abstract build(timestamp: number): DepacketizedFrame | undefined;
  /** Drops the open frame's state and references to packet payloads. */
  protected abstract discard(): void;
}
