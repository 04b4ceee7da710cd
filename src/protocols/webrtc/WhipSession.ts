import { randomInt } from 'node:crypto';
import nodeDataChannel, { type Track } from 'node-datachannel';
import type { Publisher, Stream } from '../../core/Stream.ts';
import { isRtcpPacket } from '../../media/rtp/packet.ts';
import { startsKeyframe } from './keyframe.ts';
import { type FeedKind, RtpFeed } from './RtpFeed.ts';
import {
  ntpToUnixMs,
  type ReportBlock,
  readFeedback,
  writePli,
  writeReceiverReport,
  writeRemb,
} from './rtcp.ts';
import type { ChosenCodec, OfferedMedia, OfferSummary } from './sdp.ts';
import { WebRtcSession } from './WebRtcSession.ts';

const REPORT_INTERVAL_MS = 1000;

/** The feed of a WHIP publisher: its packets exactly as they arrived. */
export class WhipFeed extends RtpFeed {
  readonly #session: WhipSession;
  /** Per kind: the last NTP↔RTP mapping, from the publisher's SR, else from packet arrival. */
  readonly anchor: Record<FeedKind, { unixMs: number; rtp: number; fromSr: boolean } | null> = {
    video: null,
    audio: null,
  };

  constructor(session: WhipSession, minKeyframeIntervalMs: number) {
    super(session.path, minKeyframeIntervalMs);
    this.#session = session;
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

  finish(reason: string): void {
    this.end(reason);
  }

  protected askSourceForKeyframe(): void {
    this.#session.sendPli();
  }
}

/** What we know of one incoming RTP stream, for receiver reports (RFC 3550 §6.4.1, appendix A.3). */
class IncomingTrack {
  readonly kind: FeedKind;
  readonly codec: ChosenCodec;
  readonly track: Track;
  ssrc = 0;
  /** Packets of the current SSRC. */
  received = 0;
  bytes = 0;
  lastSrMiddle = 0;
  lastSrAt = 0;
  #baseSeq = -1;
  #cycles = 0;
  #maxSeq = 0;
  #expectedPrior = 0;
  #receivedPrior = 0;

  constructor(kind: FeedKind, codec: ChosenCodec, track: Track) {
    this.kind = kind;
    this.codec = codec;
    this.track = track;
  }

  count(sequence: number, ssrc: number, size: number): void {
    this.bytes += size;
    if (ssrc !== this.ssrc || this.#baseSeq < 0) {
      this.ssrc = ssrc;
      this.#baseSeq = sequence;
      this.#maxSeq = sequence;
      this.#cycles = 0;
      this.received = 1;
      this.#expectedPrior = 0;
      this.#receivedPrior = 0;
      return;
    }
    this.received++;
    const delta = (sequence - this.#maxSeq) & 0xffff;
    if (delta > 0 && delta < 0x8000) {
      if (sequence < this.#maxSeq) this.#cycles += 0x10000;
      this.#maxSeq = sequence;
    }
  }

  reportBlock(now: number): ReportBlock | null {
    if (this.#baseSeq < 0) return null;
    const extendedMax = this.#cycles + this.#maxSeq;
    const expected = extendedMax - this.#baseSeq + 1;
    const expectedInterval = expected - this.#expectedPrior;
    const receivedInterval = this.received - this.#receivedPrior;
    this.#expectedPrior = expected;
    this.#receivedPrior = this.received;
    const lostInterval = expectedInterval - receivedInterval;
    return {
      ssrc: this.ssrc,
      fractionLost:
        expectedInterval > 0 && lostInterval > 0 ? Math.floor((lostInterval * 256) / expectedInterval) : 0,
      cumulativeLost: Math.max(0, expected - this.received),
      extendedHighestSequence: extendedMax,
      jitter: 0,
      lastSr: this.lastSrMiddle,
      delaySinceLastSr: this.lastSrAt ? Math.floor(((now - this.lastSrAt) / 1000) * 65536) : 0,
    };
  }
}

export interface WhipOptions {
  /** The bitrate announced to the publisher in REMB, bits per second. */
  readonly maxBitrate: number;
  readonly minKeyframeIntervalMs: number;
}

/** A WHIP publisher (RFC 9725): its peer, the stream it claimed, and the feed WHEP viewers forward from. */
export class WhipSession extends WebRtcSession implements Publisher {
  readonly kind = 'whip' as const;
  readonly protocol = 'whip';
  feed!: WhipFeed;
  stream: Stream | null = null;
  /** RFC 8853 RIDs offered for simulcast; a single layer is received for now. */
  rids: readonly string[] = [];
  remoteUfrag = '';
  readonly incoming: Partial<Record<FeedKind, IncomingTrack>> = {};
  readonly #ssrc = randomInt(1, 0xffffffff);
  #options!: WhipOptions;
  #reports: NodeJS.Timeout | null = null;
  /** Set by the server: called with each packet while a frame consumer needs frames (WHIP → MSE). */
  onMedia: ((kind: FeedKind, packet: Buffer) => void) | null = null;

  /** Adds the receiving tracks the offer asks for; returns the m-sections we take (the rest go inactive). */
  setup(summary: OfferSummary, options: WhipOptions): OfferedMedia[] {
    this.#options = options;
    this.feed = new WhipFeed(this, options.minKeyframeIntervalMs);
    this.remoteUfrag = summary.iceUfrag;
    const taken: OfferedMedia[] = [];
    for (const media of summary.media) {
      const sends = media.direction === 'sendonly' || media.direction === 'sendrecv';
      const codec = media.codec;
      if (!codec || !sends || this.incoming[media.kind]) {
        addInactive(this, media);
        continue;
      }
      const description =
        media.kind === 'video'
          ? new nodeDataChannel.Video(media.mid, 'RecvOnly')
          : new nodeDataChannel.Audio(media.mid, 'RecvOnly');
      addCodec(description, codec);
      const track = this.pc.addTrack(description);
      const incoming = new IncomingTrack(media.kind, codec, track);
      this.incoming[media.kind] = incoming;
      this.feed[media.kind] = {
        kind: media.kind,
        codec: codec.name,
        clockRate: codec.clockRate,
        channels: codec.channels,
        fmtp: codec.fmtp,
      };
      if (media.rids.length > 0) this.rids = media.rids;
      track.onMessage((message) => this.#onMessage(incoming, message));
      taken.push(media);
    }
    this.pc.onDataChannel((channel) => {
      this.log.debug({ path: this.path, label: channel.getLabel() }, 'WHIP data channel opened');
    });
    return taken;
  }

  sendPli(): void {
    const video = this.incoming.video;
    if (!video?.ssrc || !video.track.isOpen()) return;
    video.track.sendMessageBinary(writePli(this.#ssrc, video.ssrc));
  }

  protected override onConnected(): void {
    this.#reports = setInterval(() => this.#sendReports(), REPORT_INTERVAL_MS);
    this.#reports.unref();
  }

  protected onClosing(): void {
    if (this.#reports) clearInterval(this.#reports);
    this.#reports = null;
    this.feed?.finish(`the WHIP publisher left: ${this.closedReason}`);
  }

  #onMessage(incoming: IncomingTrack, message: Buffer): void {
    if (message.length < 12) return;
    if (isRtcpPacket(message)) {
      readFeedback(message, (feedback) => {
        if (feedback.type !== 'sr' || feedback.ssrc !== incoming.ssrc) return;
        incoming.lastSrMiddle = ((feedback.ntpSeconds & 0xffff) << 16) | (feedback.ntpFraction >>> 16);
        incoming.lastSrAt = performance.now();
        const unixMs = ntpToUnixMs(feedback.ntpSeconds, feedback.ntpFraction);
        this.feed.anchor[incoming.kind] = { unixMs, rtp: feedback.rtpTimestamp, fromSr: true };
      });
      return;
    }
    const csrcs = message[0] & 0x0f;
    let headerSize = 12 + 4 * csrcs;
    if (message[0] & 0x10) {
      if (headerSize + 4 > message.length) return;
      headerSize += 4 + 4 * message.readUInt16BE(headerSize + 2);
    }
    if (headerSize > message.length) return;
    const sequence = message.readUInt16BE(2);
    const timestamp = message.readUInt32BE(4);
    const ssrc = message.readUInt32BE(8);
    incoming.count(sequence, ssrc, message.length);
    const anchor = this.feed.anchor[incoming.kind];
    if (!anchor?.fromSr)
      this.feed.anchor[incoming.kind] = { unixMs: Date.now(), rtp: timestamp, fromSr: false };
    const keyframeStart =
      incoming.kind === 'video' && startsKeyframe(incoming.codec.name, message.subarray(headerSize));
    this.feed.push(incoming.kind, message, sequence, timestamp, ssrc, keyframeStart);
    this.onMedia?.(incoming.kind, message);
  }

  #sendReports(): void {
    const now = performance.now();
    const blocks: ReportBlock[] = [];
    const ssrcs: number[] = [];
    for (const incoming of Object.values(this.incoming)) {
      const block = incoming.reportBlock(now);
      if (block) blocks.push(block);
      if (incoming.kind === 'video' && incoming.ssrc) ssrcs.push(incoming.ssrc);
    }
    const carrier = this.incoming.video ?? this.incoming.audio;
    if (!carrier?.track.isOpen() || blocks.length === 0) return;
    const rr = writeReceiverReport(this.#ssrc, blocks);
    const packet = ssrcs.length
      ? Buffer.concat([rr, writeRemb(this.#ssrc, this.#options.maxBitrate, ssrcs)])
      : rr;
    try {
      carrier.track.sendMessageBinary(packet);
    } catch (err) {
      this.log.debug({ path: this.path, err: (err as Error).message }, 'receiver report not sent');
    }
  }
}

type Description = InstanceType<typeof nodeDataChannel.Video> | InstanceType<typeof nodeDataChannel.Audio>;

export function addCodec(description: Description, codec: ChosenCodec): void {
  if (description instanceof nodeDataChannel.Audio) {
    description.addOpusCodec(codec.payloadType, codec.fmtp || undefined);
    return;
  }
  const video = description as InstanceType<typeof nodeDataChannel.Video>;
  switch (codec.name) {
    case 'H264':
      video.addH264Codec(codec.payloadType, codec.fmtp);
      break;
    case 'VP8':
      video.addVP8Codec(codec.payloadType);
      break;
    case 'VP9':
      video.addVP9Codec(codec.payloadType);
      break;
    case 'AV1':
      video.addAV1Codec(codec.payloadType);
      break;
    default:
      throw new Error(`${codec.name} is not a video codec`);
  }
}

/** An m-section we do not take: answered inactive with one of its own formats, as RFC 8829 §5.3.1 allows. */
export function addInactive(session: WebRtcSession, media: OfferedMedia): void {
  const description =
    media.kind === 'video'
      ? new nodeDataChannel.Video(media.mid, 'Inactive')
      : new nodeDataChannel.Audio(media.mid, 'Inactive');
  const format = media.firstFormat;
  if (format) {
    if (description instanceof nodeDataChannel.Video)
      description.addVideoCodec(format.payloadType, format.name);
    else description.addAudioCodec(format.payloadType, format.name);
  }
  session.pc.addTrack(description);
}
