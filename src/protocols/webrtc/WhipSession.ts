import { randomInt } from 'node:crypto';
import nodeDataChannel, { type Track } from 'node-datachannel';
import type { Publisher, Stream } from '../../core/Stream.ts';
import { isRtcpPacket, parseRtpPacket } from '../../media/rtp/packet.ts';
import {
  ntpToUnixMs,
  parseRtcp,
  type RtcpRecord,
  type RtcpReportBlock,
  writePli,
  writeReceiverReport,
  writeRemb,
} from '../../media/rtp/rtcp.ts';
import { RtpReceiveStatistics } from '../../media/rtp/stats.ts';
import { startsKeyframe } from './keyframe.ts';
import { type FeedKind, RtpFeed } from './RtpFeed.ts';
import type { ChosenCodec, OfferedMedia, OfferSummary } from './sdp.ts';
import { WebRtcSession } from './WebRtcSession.ts';
import { WhipFrames } from './WhipFrames.ts';

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

/** One incoming track: its codec, and the statistics of its current SSRC for receiver reports. */
class IncomingTrack {
  readonly kind: FeedKind;
  readonly codec: ChosenCodec;
  readonly track: Track;
  ssrc = 0;
  bytes = 0;
  stats: RtpReceiveStatistics | null = null;

  constructor(kind: FeedKind, codec: ChosenCodec, track: Track) {
    this.kind = kind;
    this.codec = codec;
    this.track = track;
  }

  get received(): number {
    return this.stats?.packetsReceived ?? 0;
  }

  count(sequence: number, timestamp: number, ssrc: number, size: number, nowMs: number): void {
    if (ssrc !== this.ssrc || !this.stats) {
      this.ssrc = ssrc;
      this.stats = new RtpReceiveStatistics(ssrc, this.codec.clockRate);
    }
    this.bytes += size;
    this.stats.onPacket(sequence, timestamp, nowMs);
  }
}

/** One RFC 8853 simulcast layer of the video: its RID, the SSRC it turned out to use, what arrived on it. */
class SimulcastLayer {
  readonly rid: string;
  ssrc = 0;
  packets = 0;
  bytes = 0;

  constructor(rid: string) {
    this.rid = rid;
  }
}

/** RFC 8851 §10: a rid-id is alphanumeric with '-' and '_' (and we put it back in our answer). */
const RID = /^[A-Za-z0-9_-]{1,32}$/;

/** The RFC 8852 RtpStreamId header extension of a packet, as text, or '' when it has none. */
function readRid(message: Buffer, extensionId: number): string {
  try {
    const element = parseRtpPacket(message).extensions.find((e) => e.id === extensionId);
    return element ? Buffer.from(element.data).toString('latin1') : '';
  } catch {
    return '';
  }
}

export interface WhipOptions {
  /** The bitrate announced to the publisher in REMB, bits per second. */
  readonly maxBitrate: number;
  readonly minKeyframeIntervalMs: number;
  /** While frames are consumed, a keyframe is asked for once the GOP reaches this (0: only on a gap). */
  readonly keyframeCadenceMs: number;
}

/** A WHIP publisher (RFC 9725): its peer, the stream it claimed, and the feed WHEP viewers forward from. */
export class WhipSession extends WebRtcSession implements Publisher {
  readonly kind = 'whip' as const;
  readonly protocol = 'whip';
  feed!: WhipFeed;
  stream: Stream | null = null;
  /** RFC 8853 RIDs offered for simulcast, the offer's preference first; the first is forwarded. */
  rids: readonly string[] = [];
  /** The simulcast layers in `rids` order: every one is received and counted, the first forwarded. */
  readonly layers: SimulcastLayer[] = [];
  readonly #layerBySsrc = new Map<number, SimulcastLayer>();
  #ridExtension = 0;
  remoteUfrag = '';
  readonly incoming: Partial<Record<FeedKind, IncomingTrack>> = {};
  readonly #ssrc = randomInt(1, 0xffffffff);
  #options!: WhipOptions;
  #reports: NodeJS.Timeout | null = null;
  /** Frames for the stream's frame consumers (WS+MSE…), set once the stream is claimed. */
  frames: WhipFrames | null = null;

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
      if (media.kind === 'video') this.#acceptSimulcast(description, media);
      const track = this.addTrack(description);
      const incoming = new IncomingTrack(media.kind, codec, track);
      this.incoming[media.kind] = incoming;
      this.feed[media.kind] = {
        kind: media.kind,
        codec: codec.name,
        clockRate: codec.clockRate,
        channels: codec.channels,
        fmtp: codec.fmtp,
      };
      track.onMessage((message) => this.#onMessage(incoming, message));
      taken.push(media);
    }
    return taken;
  }

  override describe() {
    const tracks = Object.values(this.incoming).map((incoming) => ({
      kind: incoming.kind,
      codec: incoming.codec.name,
      ssrc: incoming.ssrc,
      packetsReceived: incoming.received,
      bytesReceived: incoming.bytes,
      packetsLost: incoming.stats?.cumulativeLost ?? 0,
      jitter: incoming.stats?.jitter ?? 0,
    }));
    const forwarded = this.layers[0];
    return {
      ...super.describe(),
      keyframeRequests: this.feed.keyframeRequests,
      viewers: this.feed.listeners.size,
      rids: this.rids,
      simulcast: this.layers.map((layer) => ({
        rid: layer.rid,
        ssrc: layer.ssrc,
        packetsReceived: layer.packets,
        bytesReceived: layer.bytes,
        forwarded: layer === forwarded,
      })),
      tracks,
    };
  }

  /** Starts assembling frames for `stream`'s frame consumers (they attach and leave as they like). */
  claimed(stream: Stream): void {
    this.stream = stream;
    this.frames = new WhipFrames(
      stream,
      this.incoming.video?.codec ?? null,
      this.incoming.audio?.codec ?? null,
      () => this.feed.requestKeyframe(),
      this.log,
      this.#options.keyframeCadenceMs,
    );
  }

  /** Publisher.requestKeyframe: a frame consumer saw a gap (MSE drops everything after one until a keyframe). */
  requestKeyframe(): void {
    this.feed.requestKeyframe();
  }

  sendPli(): void {
    const video = this.incoming.video;
    if (!video?.ssrc || !video.track.isOpen()) return;
    video.track.sendMessageBinary(Buffer.from(writePli(this.#ssrc, video.ssrc)));
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
    this.lastHeard = performance.now();
    if (message.length < 12) return;
    if (isRtcpPacket(message)) {
      for (const record of readRtcp(message)) {
        if (record.type !== 'sr' || record.ssrc !== incoming.ssrc) continue;
        incoming.stats?.onSenderReport(record, Date.now());
        const unixMs = ntpToUnixMs(record.ntpSeconds, record.ntpFraction);
        this.feed.anchor[incoming.kind] = { unixMs, rtp: record.rtpTimestamp, fromSr: true };
      }
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
    if (incoming.kind === 'video' && this.layers.length > 0 && !this.#fromForwardedLayer(message, ssrc))
      return;
    const now = Date.now();
    incoming.count(sequence, timestamp, ssrc, message.length, now);
    const anchor = this.feed.anchor[incoming.kind];
    if (!anchor?.fromSr) this.feed.anchor[incoming.kind] = { unixMs: now, rtp: timestamp, fromSr: false };
    const keyframeStart =
      incoming.kind === 'video' && startsKeyframe(incoming.codec.name, message.subarray(headerSize));
    // Before the feed: WHEP viewers rewrite the header of the shared packet as they send it.
    this.frames?.push(incoming.kind, message);
    this.feed.push(incoming.kind, message, sequence, timestamp, ssrc, keyframeStart);
  }

  /**
   * RFC 8853 §5.3.2: the answer receives every offered RID (so the browser sends all its layers) and the
   * RtpStreamId extension that tells which SSRC carries which.
   */
  #acceptSimulcast(description: Description, media: OfferedMedia): void {
    const rids = media.rids.filter((rid) => RID.test(rid));
    if (rids.length < 2 || media.extensions.rid === null) return;
    this.rids = rids;
    this.#ridExtension = media.extensions.rid;
    description.parseSdpLine(
      `a=extmap:${media.extensions.rid} urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id`,
    );
    if (media.extensions.mid !== null)
      description.parseSdpLine(`a=extmap:${media.extensions.mid} urn:ietf:params:rtp-hdrext:sdes:mid`);
    for (const rid of rids) {
      description.parseSdpLine(`a=rid:${rid} recv`);
      this.layers.push(new SimulcastLayer(rid));
    }
    description.parseSdpLine(`a=simulcast:recv ${rids.join(';')}`);
  }

  /**
   * Counts a simulcast packet on its layer and says whether it is the forwarded one's. A layer's SSRC is
   * learnt from the RtpStreamId its first packets carry (browsers send it until our receiver reports
   * acknowledge the SSRC); packets of an SSRC not known yet are dropped.
   */
  #fromForwardedLayer(message: Buffer, ssrc: number): boolean {
    let layer = this.#layerBySsrc.get(ssrc);
    if (!layer) {
      const rid = readRid(message, this.#ridExtension);
      layer = this.layers.find((l) => l.rid === rid);
      if (!layer) return false;
      if (layer.ssrc) this.#layerBySsrc.delete(layer.ssrc);
      layer.ssrc = ssrc;
      this.#layerBySsrc.set(ssrc, layer);
    }
    layer.packets++;
    layer.bytes += message.length;
    return layer === this.layers[0];
  }

  #sendReports(): void {
    const now = Date.now();
    const blocks: RtcpReportBlock[] = [];
    const ssrcs: number[] = [];
    for (const incoming of Object.values(this.incoming)) {
      const block = incoming.stats?.reportBlock(now);
      if (block) blocks.push(block);
      if (incoming.kind === 'video' && incoming.ssrc) ssrcs.push(incoming.ssrc);
    }
    // REMB covers every simulcast layer: browsers enable their upper layers only as the estimate allows,
    // and without it the forwarded (highest) layer never starts.
    for (const layer of this.layers) if (layer.ssrc && !ssrcs.includes(layer.ssrc)) ssrcs.push(layer.ssrc);
    const carrier = this.incoming.video ?? this.incoming.audio;
    if (!carrier?.track.isOpen() || (blocks.length === 0 && ssrcs.length === 0)) return;
    const rr = writeReceiverReport({ ssrc: this.#ssrc, reports: blocks });
    const parts = ssrcs.length ? [rr, writeRemb(this.#ssrc, this.#options.maxBitrate, ssrcs)] : [rr];
    const packet = Buffer.concat(parts);
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
  session.addTrack(description);
}

const NO_RECORDS: RtcpRecord[] = [];

/** A compound RTCP packet's records; a malformed one is ignored (RTCP is advisory, the media keeps flowing). */
export function readRtcp(message: Uint8Array): RtcpRecord[] {
  try {
    return parseRtcp(message);
  } catch {
    return NO_RECORDS;
  }
}
