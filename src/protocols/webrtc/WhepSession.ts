import { randomInt, randomUUID } from 'node:crypto';
import nodeDataChannel, { type Track } from 'node-datachannel';
import { isRtcpPacket, rewriteRtpHeader } from '../../media/rtp/packet.ts';
import { ntpFromUnixMs, ntpMiddle32, writeDlrr, writeSenderReport } from '../../media/rtp/rtcp.ts';
import type { FeedKind, RtpFeed, RtpFeedListener } from './RtpFeed.ts';
import type { ChosenCodec, OfferedMedia, OfferSummary } from './sdp.ts';
import { WebRtcSession } from './WebRtcSession.ts';
import { addCodec, addInactive, readRtcp } from './WhipSession.ts';

const REPORT_INTERVAL_MS = 1000;

/** The NTP↔RTP mapping of a feed's track, in the source's RTP clock (WhipFeed.anchor, RtmpRtpFeed.anchor). */
export interface FeedClock {
  readonly anchor: Record<FeedKind, { unixMs: number; rtp: number } | null>;
}

/**
 * One viewer's copy of a source track: its own SSRC, sequence numbers and timestamps (RFC 3550 §5.1 lets each
 * sender pick random ones), mapped from the source's by fixed offsets that are re-based when the source SSRC
 * changes, so the viewer sees one continuous stream.
 */
export class OutgoingTrack {
  readonly kind: FeedKind;
  readonly track: Track;
  readonly ssrc: number;
  readonly payloadType: number;
  readonly clockRate: number;
  readonly codec: ChosenCodec['name'];
  /** Video waits for the start of a keyframe before anything is sent. */
  waitingForKeyframe: boolean;
  sourceSsrc = -1;
  seqOffset = 0;
  tsOffset = 0;
  lastSequence = randomInt(0, 0x10000);
  lastTimestamp = randomInt(0, 0x7fffffff);
  lastSentAt = 0;
  packets = 0;
  octets = 0;
  nacked = 0;
  retransmitted = 0;

  constructor(kind: FeedKind, track: Track, codec: ChosenCodec, ssrc: number) {
    this.kind = kind;
    this.track = track;
    this.ssrc = ssrc;
    this.payloadType = codec.payloadType;
    this.clockRate = codec.clockRate;
    this.codec = codec.name;
    this.waitingForKeyframe = kind === 'video';
  }

  /** Maps the next source packet: re-bases the offsets on a new source SSRC (first packet, republish, switch). */
  rebase(sequence: number, timestamp: number, ssrc: number, now: number): void {
    const elapsed = this.lastSentAt
      ? Math.max(1, Math.round(((now - this.lastSentAt) * this.clockRate) / 1000))
      : 0;
    this.seqOffset = (this.lastSequence + 1 - sequence) & 0xffff;
    this.tsOffset = (this.lastTimestamp + elapsed - timestamp) >>> 0;
    this.sourceSsrc = ssrc;
  }
}

/** What a viewer does when its feed's source is gone; by default it closes. */
export type SourceEndedHandler = (session: WhepSession, reason: string) => void;

/**
 * A WHEP viewer: forwards a feed's packets with its own header rewrite, answers NACKs, passes PLI/FIR up. It
 * may have no feed for a while (the stream is not live yet, or its publisher left): it stays connected and
 * starts at the next keyframe once `bind` gives it one whose codecs match what it negotiated.
 */
export class WhepSession extends WebRtcSession implements RtpFeedListener {
  readonly kind = 'whep' as const;
  feed: (RtpFeed & FeedClock) | null = null;
  remoteUfrag = '';
  /** Set by the server: called instead of closing when the source ends. */
  onSourceEnded: SourceEndedHandler | null = null;
  readonly outgoing: Partial<Record<FeedKind, OutgoingTrack>> = {};
  keyframeRequestsFromViewer = 0;
  #removeListener: (() => void) | null = null;
  #reports: NodeJS.Timeout | null = null;
  #open = false;

  /**
   * Adds a sending track per m-section `pick` gives a codec for; the rest are answered inactive. Without a feed
   * the viewer waits for one (`bind`).
   */
  setup(
    summary: OfferSummary,
    feed: (RtpFeed & FeedClock) | null,
    pick: (media: OfferedMedia) => ChosenCodec | null,
  ): OfferedMedia[] {
    this.feed = feed;
    this.remoteUfrag = summary.iceUfrag;
    const cname = `subsecond-${randomUUID().slice(0, 8)}`;
    const msid = `subsecond-${this.path.replace(/[^A-Za-z0-9]/g, '-')}`;
    const taken: OfferedMedia[] = [];
    for (const media of summary.media) {
      const receives = media.direction === 'recvonly' || media.direction === 'sendrecv';
      const codec = receives && !this.outgoing[media.kind] ? pick(media) : null;
      if (!codec) {
        addInactive(this, media);
        continue;
      }
      const description =
        media.kind === 'video'
          ? new nodeDataChannel.Video(media.mid, 'SendOnly')
          : new nodeDataChannel.Audio(media.mid, 'SendOnly');
      addCodec(description, codec);
      // RFC 3611 RRTR/DLRR: a receive-only browser has no round-trip time without it, and without one it
      // cannot place our sender reports on its clock (no estimatedPlayoutTimestamp, no A/V sync by NTP).
      description.parseSdpLine(`a=rtcp-fb:${codec.payloadType} rrtr`);
      const ssrc = randomInt(1, 0xffffffff);
      description.addSSRC(ssrc, cname, msid, `${media.kind}-${media.mid}`);
      const out = new OutgoingTrack(media.kind, this.addTrack(description), codec, ssrc);
      const track = out.track;
      this.outgoing[media.kind] = out;
      track.onMessage((message) => this.#onViewerRtcp(out, message));
      taken.push(media);
    }
    return taken;
  }

  onRtp(
    kind: FeedKind,
    packet: Buffer,
    sequence: number,
    timestamp: number,
    ssrc: number,
    keyframeStart: boolean,
  ): void {
    const out = this.outgoing[kind];
    if (!out || !this.#open) return;
    if (out.waitingForKeyframe) {
      if (!keyframeStart) return;
      out.waitingForKeyframe = false;
    }
    const now = performance.now();
    if (ssrc !== out.sourceSsrc) out.rebase(sequence, timestamp, ssrc, now);
    out.lastSequence = (sequence + out.seqOffset) & 0xffff;
    out.lastTimestamp = (timestamp + out.tsOffset) >>> 0;
    out.lastSentAt = now;
    rewriteRtpHeader(packet, out.payloadType, out.lastSequence, out.lastTimestamp, out.ssrc);
    try {
      out.track.sendMessageBinary(packet);
    } catch {
      return;
    }
    out.packets++;
    out.octets += packet.length - 12;
  }

  /** Why `feed` cannot serve this viewer (a codec it did not negotiate), or null when it can. */
  mismatch(feed: RtpFeed): string | null {
    for (const out of Object.values(this.outgoing)) {
      const source = feed[out.kind];
      if (source && source.codec !== out.codec) {
        return `the stream's ${out.kind} is ${source.codec}, this viewer negotiated ${out.codec}`;
      }
    }
    return null;
  }

  /** Starts forwarding `feed` (the caller checked `mismatch`): video from its next keyframe. */
  bind(feed: RtpFeed & FeedClock): void {
    this.unbind();
    this.feed = feed;
    for (const out of Object.values(this.outgoing)) {
      out.waitingForKeyframe = out.kind === 'video';
      // Re-based on the new source's first packet; no sender report until then.
      out.sourceSsrc = -1;
    }
    this.lastHeard = performance.now();
    if (this.#open) this.#listen();
  }

  /** Stops forwarding the current feed; the viewer waits, connected, for the next `bind`. */
  unbind(): void {
    this.#removeListener?.();
    this.#removeListener = null;
    this.feed = null;
  }

  onTracksChanged(): void {
    const why = this.feed && this.mismatch(this.feed);
    if (why) {
      this.close(`the stream changed codecs: ${why}`);
      return;
    }
    // Same codecs, new parameters (another resolution or profile): the decoder restarts at a keyframe.
    for (const out of Object.values(this.outgoing)) out.waitingForKeyframe = out.kind === 'video';
  }

  onEnd(reason: string): void {
    // The feed drops its listeners after this; the handler may bind the viewer to the next source.
    this.#removeListener = null;
    if (this.onSourceEnded) this.onSourceEnded(this, reason);
    else this.close(reason);
  }

  override describe() {
    const tracks = Object.values(this.outgoing).map((out) => ({
      kind: out.kind,
      ssrc: out.ssrc,
      packetsSent: out.packets,
      bytesSent: out.octets,
      nacks: out.nacked,
      retransmitted: out.retransmitted,
      waitingForKeyframe: out.waitingForKeyframe,
    }));
    return {
      ...super.describe(),
      waitingForPublisher: this.feed === null,
      keyframeRequests: this.keyframeRequestsFromViewer,
      tracks,
    };
  }

  protected override onConnected(): void {
    this.#open = true;
    if (this.feed) this.#listen();
    this.#reports = setInterval(() => this.#sendReports(), REPORT_INTERVAL_MS);
    this.#reports.unref();
  }

  /** A viewer waiting for a publisher receives nothing and may send no RTCP, which is fine. */
  protected override expectsTraffic(): boolean {
    return this.feed !== null;
  }

  #listen(): void {
    const feed = this.feed!;
    this.#removeListener = feed.addListener(this);
    feed.requestKeyframe();
  }

  protected onClosing(): void {
    this.#open = false;
    if (this.#reports) clearInterval(this.#reports);
    this.#reports = null;
    this.#removeListener?.();
    this.#removeListener = null;
  }

  #onViewerRtcp(out: OutgoingTrack, message: Buffer): void {
    if (!isRtcpPacket(message)) return;
    this.lastHeard = performance.now();
    for (const record of readRtcp(message)) {
      if (record.type === 'pli' || record.type === 'fir') {
        if (out.kind !== 'video') continue;
        this.keyframeRequestsFromViewer++;
        this.feed?.requestKeyframe();
      } else if (record.type === 'nack' && record.mediaSsrc === out.ssrc) {
        this.#retransmit(out, record.lost);
      } else if (record.type === 'rrtr') {
        // Answered at once, so the delay since it arrived is ~0.
        const dlrr = writeDlrr(
          out.ssrc,
          record.senderSsrc,
          ntpMiddle32(record.ntpSeconds, record.ntpFraction),
          0,
        );
        try {
          out.track.sendMessageBinary(Buffer.from(dlrr.buffer, dlrr.byteOffset, dlrr.byteLength));
        } catch {
          // the track closed meanwhile
        }
      }
    }
  }

  /** RFC 4585 §6.2.1: resend what the viewer lost, from the feed's cache, with this viewer's header. */
  #retransmit(out: OutgoingTrack, sequences: readonly number[]): void {
    if (!this.feed) return;
    const cache = this.feed.cache[out.kind];
    for (const sequence of sequences) {
      out.nacked++;
      const cached = cache.get((sequence - out.seqOffset) & 0xffff);
      if (!cached) continue;
      rewriteRtpHeader(
        cached.packet,
        out.payloadType,
        sequence,
        (cached.timestamp + out.tsOffset) >>> 0,
        out.ssrc,
      );
      try {
        out.track.sendMessageBinary(cached.packet);
        out.retransmitted++;
      } catch {
        return;
      }
    }
  }

  /** RFC 3550 §6.4.1: the source's NTP↔RTP mapping in this viewer's timestamps, so audio and video line up. */
  #sendReports(): void {
    const now = Date.now();
    if (!this.feed) return;
    for (const out of Object.values(this.outgoing)) {
      const anchor = this.feed.anchor[out.kind];
      if (!anchor || out.sourceSsrc < 0 || !out.track.isOpen()) continue;
      const rtp = anchor.rtp + Math.round(((now - anchor.unixMs) * out.clockRate) / 1000) + out.tsOffset;
      try {
        const ntp = ntpFromUnixMs(now);
        const sr = writeSenderReport({
          ssrc: out.ssrc,
          ntpSeconds: ntp.seconds,
          ntpFraction: ntp.fraction,
          rtpTimestamp: rtp >>> 0,
          packetCount: out.packets >>> 0,
          octetCount: out.octets >>> 0,
          reports: [],
        });
        out.track.sendMessageBinary(Buffer.from(sr.buffer, sr.byteOffset, sr.byteLength));
      } catch {
        // the track closed between the check and the send
      }
    }
  }
}
