import { SequenceUnwrapper } from './packet.ts';
import { ntpFromUnixMs, ntpMiddle32, type RtcpReportBlock, type RtcpSenderReport } from './rtcp.ts';

/*
 * The statistics RTCP reports carry, RFC 3550 §6.4 and Appendix A. `RtpReceiveStatistics` follows one
 * incoming SSRC and builds its report block (§A.3 loss, §A.8 interarrival jitter, LSR/DLSR from the last SR);
 * `RtpSendStatistics` counts what one outgoing SSRC sent and builds a sender report whose RTP timestamp is the
 * media time at the report's wall-clock time (§6.4.1), the mapping receivers use for lip sync. Times are
 * injected (milliseconds, e.g. Date.now()) so the arithmetic is testable.
 */

export class RtpReceiveStatistics {
  readonly ssrc: number;
  readonly clockRate: number;
  readonly #seq = new SequenceUnwrapper();
  #baseSeq = -1;
  #received = 0;
  #expectedPrior = 0;
  #receivedPrior = 0;
  #transit: number | undefined;
  #jitter = 0;
  #lastSrMiddle = 0;
  #lastSrArrivalMs = 0;

  constructor(ssrc: number, clockRate: number) {
    this.ssrc = ssrc;
    this.clockRate = clockRate;
  }

  /** Counts one received packet (duplicates count too, as in §A.3, which can make the loss negative). */
  onPacket(sequenceNumber: number, rtpTimestamp: number, arrivalMs: number): void {
    const extended = this.#seq.unwrap(sequenceNumber);
    if (this.#baseSeq < 0 || extended < this.#baseSeq) this.#baseSeq = extended;
    this.#received++;
    // §A.8: transit time in RTP units; its variation, smoothed with gain 1/16, is the jitter.
    const transit = (arrivalMs * this.clockRate) / 1000 - rtpTimestamp;
    if (this.#transit !== undefined) {
      let d = Math.abs(transit - this.#transit);
      // An RTP timestamp wrap shows up as a 2^32 jump in transit, not as jitter.
      if (d > 0x80000000) d = Math.abs(d - 0x100000000);
      this.#jitter += (d - this.#jitter) / 16;
    }
    this.#transit = transit;
  }

  /** Remembers the middle of an SR's NTP time and when it arrived, for LSR/DLSR. */
  onSenderReport(sr: Pick<RtcpSenderReport, 'ntpSeconds' | 'ntpFraction'>, arrivalMs: number): void {
    this.#lastSrMiddle = ntpMiddle32(sr.ntpSeconds, sr.ntpFraction);
    this.#lastSrArrivalMs = arrivalMs;
  }

  get packetsReceived(): number {
    return this.#received;
  }

  /** Packets expected but not received so far (§A.3). */
  get cumulativeLost(): number {
    return this.#baseSeq < 0 ? 0 : this.#seq.highest - this.#baseSeq + 1 - this.#received;
  }

  /** Interarrival jitter in RTP timestamp units. */
  get jitter(): number {
    return Math.floor(this.#jitter);
  }

  /**
   * The report block for this source at `nowMs`; starts a new interval for the fraction lost, so call it once
   * per report sent. Undefined before the first packet.
   */
  reportBlock(nowMs: number): RtcpReportBlock | undefined {
    if (this.#baseSeq < 0) return undefined;
    const expected = this.#seq.highest - this.#baseSeq + 1;
    const expectedInterval = expected - this.#expectedPrior;
    const receivedInterval = this.#received - this.#receivedPrior;
    this.#expectedPrior = expected;
    this.#receivedPrior = this.#received;
    const lostInterval = expectedInterval - receivedInterval;
    const fractionLost =
      expectedInterval === 0 || lostInterval <= 0 ? 0 : Math.floor((lostInterval * 256) / expectedInterval);
    const delay = this.#lastSrMiddle === 0 ? 0 : Math.round(((nowMs - this.#lastSrArrivalMs) / 1000) * 65536);
    return {
      ssrc: this.ssrc,
      fractionLost: Math.min(fractionLost, 255),
      cumulativeLost: expected - this.#received,
      highestSequence: this.#seq.highest >>> 0,
      jitter: this.jitter,
      lastSenderReport: this.#lastSrMiddle,
      delaySinceLastSenderReport: Math.max(0, delay) >>> 0,
    };
  }
}

export class RtpSendStatistics {
  readonly ssrc: number;
  readonly clockRate: number;
  #packets = 0;
  #octets = 0;
  #lastRtpTimestamp = 0;
  #lastWallMs: number | undefined;

  constructor(ssrc: number, clockRate: number) {
    this.ssrc = ssrc;
    this.clockRate = clockRate;
  }

  /**
   * Counts one sent packet. `captureMs` is the wall-clock time at which `rtpTimestamp` was sampled (for a
   * forwarded or packetized live frame, its arrival time is the best estimate).
   */
  onPacket(payloadBytes: number, rtpTimestamp: number, captureMs: number): void {
    this.#packets++;
    this.#octets += payloadBytes;
    this.#lastRtpTimestamp = rtpTimestamp;
    this.#lastWallMs = captureMs;
  }

  get packetsSent(): number {
    return this.#packets;
  }

  get octetsSent(): number {
    return this.#octets;
  }

  /**
   * The sender report at `nowMs`: NTP time `nowMs`, and the RTP timestamp the media clock shows then,
   * extrapolated from the last packet (§6.4.1: not the last packet's own timestamp). Undefined before the
   * first packet, when there is no mapping to report.
   */
  senderReport(nowMs: number, reports: RtcpReportBlock[] = []): Omit<RtcpSenderReport, 'type'> | undefined {
    if (this.#lastWallMs === undefined) return undefined;
    const ntp = ntpFromUnixMs(nowMs);
    const elapsed = Math.round(((nowMs - this.#lastWallMs) * this.clockRate) / 1000);
    return {
      ssrc: this.ssrc,
      ntpSeconds: ntp.seconds,
      ntpFraction: ntp.fraction,
      rtpTimestamp: (this.#lastRtpTimestamp + elapsed) >>> 0,
      packetCount: this.#packets >>> 0,
      octetCount: this.#octets >>> 0,
      reports,
    };
  }
}
