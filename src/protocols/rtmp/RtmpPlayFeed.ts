import type { GopCacheLimits } from '../../core/GopCache.ts';
import { type FeedListener, SharedFeed } from '../../core/SharedFeed.ts';
import type { Stream } from '../../core/Stream.ts';
import type { AudioCodec, Frame, Track, VideoCodec } from '../../media/Frame.ts';
import { audioFrameTagHeader, audioSequenceStartTag } from '../../media/flv/audio.ts';
import { videoFrameTagHeader, videoSequenceStartTag } from '../../media/flv/video.ts';
import { Amf0EcmaArray, type Amf0Object, encodeAmf0 } from './amf0.ts';
import { encodeChunks } from './chunk.ts';
import { metadataAudioCodecId, metadataVideoCodecId } from './codecs.ts';
import { Csid, MessageType } from './messages.ts';
import { RtmpIngest } from './RtmpIngest.ts';

/**
 * A media message built once per stream and sent to every RTMP player of it.
 *
 * How the bytes are shared: every media message starts with a type 0 chunk header (absolute timestamp, length,
 * type, message stream id) and continues with type 3 headers, so its chunked bytes do not depend on anything
 * sent before on its chunk stream. They depend only on the chunk size, which is one per server (announced at
 * connect), and on the message stream id, which is 1 for every client that calls createStream once. So the
 * FLV tag is built and chunked once, and each player's socket gets the same Uint8Array. A client on another
 * message stream id gets its own copy, built once and cached here as well. The price is the 7-11 header bytes a
 * type 1-3 header would have saved per message.
 */
export class SharedMediaMessage {
  readonly timestamp: number;
  readonly typeId: number;
  /** A random access point for the whole stream: players start and resume here. */
  readonly rap: boolean;
  readonly parts: readonly Uint8Array[];
  readonly byteLength: number;
  readonly #chunkSize: number;
  #streamId = 1;
  #bytes: Uint8Array | null = null;
  #others: Map<number, Uint8Array> | null = null;

  constructor(
    timestamp: number,
    typeId: number,
    rap: boolean,
    parts: readonly Uint8Array[],
    chunkSize: number,
  ) {
    this.timestamp = timestamp;
    this.typeId = typeId;
    this.rap = rap;
    this.parts = parts;
    this.#chunkSize = chunkSize;
    let n = 0;
    for (const p of parts) n += p.length;
    this.byteLength = n;
  }

  /** The chunked bytes on message stream `streamId`, built on first use and shared from then on. */
  bytesFor(streamId: number): Uint8Array {
    if (streamId === this.#streamId && this.#bytes) return this.#bytes;
    if (this.#bytes === null) {
      this.#streamId = streamId;
      this.#bytes = this.#encode(streamId);
      return this.#bytes;
    }
    this.#others ??= new Map();
    let bytes = this.#others.get(streamId);
    if (!bytes) {
      bytes = this.#encode(streamId);
      this.#others.set(streamId, bytes);
    }
    return bytes;
  }

  #encode(streamId: number): Uint8Array {
    const csid = this.typeId === MessageType.Video ? Csid.Video : Csid.Audio;
    return encodeChunks(
      { csid, timestamp: this.timestamp, typeId: this.typeId, streamId },
      this.parts,
      this.#chunkSize,
    );
  }
}

/** What a player sends before any frame of a track set: onMetaData and each track's sequence header. */
export interface RtmpPlayInit {
  readonly tracks: readonly Track[];
  readonly metadata: Amf0Object;
  /** `onMetaData` and the metadata encoded once as a data message body, for every player. */
  readonly metadataPayload: Uint8Array;
  readonly sequenceHeaders: readonly { readonly typeId: number; readonly body: Uint8Array }[];
}

export type RtmpPlayListener = FeedListener<RtmpPlayInit, SharedMediaMessage>;

/**
 * The stream as RTMP media messages: each frame becomes one FLV tag, chunked once (see SharedMediaMessage),
 * handed to every RTMP player of the stream. Attached to the stream while it has players.
 */
export class RtmpPlayFeed extends SharedFeed<RtmpPlayInit, SharedMediaMessage> {
  readonly chunkSize: number;
  readonly #onEmpty: () => void;
  #tracks = new Map<number, Track>();
  /** Added to every timestamp, so a republish (whose clock restarts) continues where the last one ended. */
  #offsetMs = 0;
  #lastMs = -1;
  #rebase = false;

  constructor(stream: Stream, chunkSize: number, gopLimits: GopCacheLimits | undefined, onEmpty: () => void) {
    super(stream, gopLimits);
    this.chunkSize = chunkSize;
    this.#onEmpty = onEmpty;
  }

  /** Timestamp (ms) players should give their init messages: where the cached GOP, or the stream, is. */
  get currentTimestamp(): number {
    const first = this.gop.entries[0];
    if (first) return first.item.timestamp;
    return Math.max(0, this.#lastMs);
  }

  protected onIdle(): void {
    this.#onEmpty();
  }

  onTracks(tracks: readonly Track[]): void {
    this.#tracks = new Map(tracks.map((t) => [t.id, t]));
    const sequenceHeaders: { typeId: number; body: Uint8Array }[] = [];
    for (const t of tracks) {
      if (t.kind === 'video')
        sequenceHeaders.push({ typeId: MessageType.Video, body: videoSequenceStartTag(t) });
      else sequenceHeaders.push({ typeId: MessageType.Audio, body: audioSequenceStartTag(t) });
    }
    const metadata = this.#metadata(tracks);
    const metadataPayload = encodeAmf0('onMetaData', metadata);
    this.publishInit({ tracks, metadata, metadataPayload, sequenceHeaders });
  }

  onFrame(frame: Frame): void {
    const track = this.#tracks.get(frame.trackId);
    if (!track || !this.init) return;
    let ms = Math.round((frame.dts * 1000) / track.timescale);
    if (this.#rebase) {
      this.#rebase = false;
      this.#offsetMs = this.#lastMs < 0 ? 0 : this.#lastMs + 1 - ms;
    }
    ms = Math.max(0, ms + this.#offsetMs);
    if (ms > this.#lastMs) this.#lastMs = ms;
    const rap = this.stream.isRandomAccess(frame);
    let message: SharedMediaMessage;
    if (track.kind === 'video') {
      const cts = Math.round(((frame.pts - frame.dts) * 1000) / track.timescale);
      const header = videoFrameTagHeader(track, frame.keyframe, cts);
      message = new SharedMediaMessage(ms, MessageType.Video, rap, [header, frame.data], this.chunkSize);
    } else {
      const header = audioFrameTagHeader(track);
      message = new SharedMediaMessage(ms, MessageType.Audio, rap, [header, frame.data], this.chunkSize);
    }
    // Chunked now for message stream 1, while the frame is hot: every player of the common kind reuses it.
    if (this.listeners.size > 0) message.bytesFor(1);
    this.publishItem(message, rap, message.byteLength);
  }

  override onUnpublish(): void {
    this.#rebase = true;
    super.onUnpublish();
  }

  /**
   * onMetaData for players: what the publisher said (an RTMP publisher's own onMetaData), with the fields that
   * describe the tracks taken from the tracks themselves.
   */
  #metadata(tracks: readonly Track[]): Amf0Object {
    const meta = new Amf0EcmaArray();
    const publisher = this.stream.publisher;
    if (publisher instanceof RtmpIngest && publisher.metadata) {
      for (const [k, v] of Object.entries(publisher.metadata)) {
        if (k === 'duration' || k === 'filesize') continue;
        meta[k] = v;
      }
    }
    const video = tracks.find((t) => t.kind === 'video');
    const audio = tracks.find((t) => t.kind === 'audio');
    meta.hasVideo = video !== undefined;
    meta.hasAudio = audio !== undefined;
    if (video) {
      meta.videocodecid = metadataVideoCodecId(video.codec as VideoCodec);
      if (video.width) meta.width = video.width;
      if (video.height) meta.height = video.height;
    } else {
      for (const k of ['videocodecid', 'width', 'height', 'framerate', 'videodatarate']) delete meta[k];
    }
    if (audio) {
      meta.audiocodecid = metadataAudioCodecId(audio.codec as AudioCodec);
      if (audio.sampleRate) meta.audiosamplerate = audio.sampleRate;
      if (audio.channels) {
        meta.audiochannels = audio.channels;
        meta.stereo = audio.channels > 1;
      }
    } else {
      for (const k of ['audiocodecid', 'audiosamplerate', 'audiochannels', 'stereo', 'audiodatarate'])
        delete meta[k];
    }
    return meta;
  }
}
