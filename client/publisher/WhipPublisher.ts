import { parseStreamPath } from '../../src/shared/streamPath.ts';
import { Emitter } from '../player/Emitter.ts';
import type { MessagingPeer } from '../webrtc/MessagingPeer.ts';
import { gatherOffer, parseIceServerLinks, resourceUrl, sdpPost } from '../webrtc/whepWhip.ts';

export type PublisherState = 'idle' | 'connecting' | 'live' | 'failed' | 'stopped';
export type PublishVideoCodec = 'h264' | 'vp8' | 'vp9' | 'av1';

export interface PublisherOptions {
  /** Server origin; default the page's. */
  server?: string;
  path: string;
  /** Bearer token for remote publishing (auth.publishKey on the server). */
  token?: string;
  /** Preferred video codec; the browser's others follow as fallbacks. Default h264. */
  videoCodec?: PublishVideoCodec;
  /** Video bitrate cap in bits per second. Default 2.5 Mbit/s. */
  videoBitrate?: number;
  /** Carry messaging channels on this session's data channels (`channel(name, { peer })`). */
  messaging?: MessagingPeer;
}

export interface PublisherStats {
  state: PublisherState;
  /** Bits per second sent over the last interval, all tracks. */
  bitrate: number;
  framesPerSecond: number;
  width: number;
  height: number;
  /** Round trip from the server's receiver reports, in ms. */
  rttMs: number;
  /** Packets the server reported lost. */
  packetsLost: number;
  videoCodec: string;
}

export type PublisherEvents = {
  state: { state: PublisherState; reason?: string };
};

const MIME: Record<PublishVideoCodec, string> = {
  h264: 'video/H264',
  vp8: 'video/VP8',
  vp9: 'video/VP9',
  av1: 'video/AV1',
};

/**
 * Publishes a MediaStream over WHIP (RFC 9725): one sendonly transceiver per track, the offer POSTed to
 * `/whip/{path}`, the session ended with DELETE on its Location.
 */
export class WhipPublisher extends Emitter<PublisherEvents> {
  readonly server: string;
  readonly path: string;
  readonly #options: PublisherOptions;
  #pc: RTCPeerConnection | null = null;
  #location: string | null = null;
  #state: PublisherState = 'idle';
  #lastBytes = 0;
  #lastAt = 0;
  #bitrate = 0;

  constructor(options: PublisherOptions) {
    super();
    this.#options = options;
    this.path = parseStreamPath(options.path);
    this.server = new URL(options.server ?? globalThis.location.origin).origin;
  }

  get state(): PublisherState {
    return this.#state;
  }

  get endpoint(): string {
    return new URL(`/whip/${this.path.split('/').map(encodeURIComponent).join('/')}`, this.server).href;
  }

  async start(media: MediaStream): Promise<void> {
    if (this.#pc) throw new Error('already publishing; stop() first');
    this.#setState('connecting');
    const pc = new RTCPeerConnection();
    this.#pc = pc;
    const preferred = this.#options.videoCodec ?? 'h264';
    for (const track of media.getTracks()) {
      const transceiver = pc.addTransceiver(track, { direction: 'sendonly', streams: [media] });
      if (track.kind === 'video') this.#preferCodec(transceiver, preferred);
    }
    this.#options.messaging?.attach(pc);
    pc.onconnectionstatechange = () => {
      if (this.#pc !== pc) return;
      if (pc.connectionState === 'connected') this.#setState('live');
      else if (pc.connectionState === 'failed') this.#setState('failed', 'the WebRTC connection failed');
    };
    try {
      const offer = await gatherOffer(pc);
      const response = await sdpPost(this.endpoint, offer, this.#options.token);
      if (response.status !== 201) throw new Error(`WHIP refused (${response.status}): ${response.error}`);
      this.#location = response.location ? resourceUrl(this.endpoint, response.location) : null;
      const iceServers = parseIceServerLinks(response.links);
      if (iceServers.length > 0) pc.setConfiguration({ iceServers });
      await pc.setRemoteDescription({ type: 'answer', sdp: response.body });
      await this.#capBitrate(pc);
    } catch (error) {
      this.#pc = null;
      this.#options.messaging?.detach(pc);
      pc.close();
      this.#setState('failed', (error as Error).message);
      throw error;
    }
  }

  async stop(): Promise<void> {
    const pc = this.#pc;
    const location = this.#location;
    this.#pc = null;
    this.#location = null;
    if (pc) this.#options.messaging?.detach(pc);
    pc?.close();
    if (location) await fetch(location, { method: 'DELETE', keepalive: true }).catch(() => {});
    this.#setState('stopped');
  }

  async stats(): Promise<PublisherStats> {
    const out: PublisherStats = {
      state: this.#state,
      bitrate: 0,
      framesPerSecond: 0,
      width: 0,
      height: 0,
      rttMs: 0,
      packetsLost: 0,
      videoCodec: '',
    };
    const pc = this.#pc;
    if (!pc) return out;
    const report = await pc.getStats();
    let bytes = 0;
    const codecs = new Map<string, string>();
    let videoCodecId = '';
    for (const s of report.values()) {
      if (s.type === 'outbound-rtp') {
        bytes += s.bytesSent ?? 0;
        if (s.kind === 'video') {
          out.framesPerSecond = s.framesPerSecond ?? 0;
          out.width = s.frameWidth ?? 0;
          out.height = s.frameHeight ?? 0;
          videoCodecId = s.codecId ?? '';
        }
      } else if (s.type === 'remote-inbound-rtp') {
        out.packetsLost += s.packetsLost ?? 0;
        if (s.roundTripTime !== undefined) out.rttMs = Math.max(out.rttMs, s.roundTripTime * 1000);
      } else if (s.type === 'codec') {
        codecs.set(s.id, s.mimeType ?? '');
      }
    }
    out.videoCodec = codecs.get(videoCodecId) ?? '';
    // Measured over at least half a second, however often stats() is called (page timer, tests, console).
    const now = performance.now();
    if (!this.#lastAt || now - this.#lastAt >= 500) {
      if (this.#lastAt)
        this.#bitrate = Math.round(((bytes - this.#lastBytes) * 8 * 1000) / (now - this.#lastAt));
      this.#lastBytes = bytes;
      this.#lastAt = now;
    }
    out.bitrate = this.#bitrate;
    return out;
  }

  /** The chosen codec first (H.264: packetization-mode 1 first), the rest after as fallbacks. */
  #preferCodec(transceiver: RTCRtpTransceiver, codec: PublishVideoCodec): void {
    const capabilities = RTCRtpSender.getCapabilities?.('video')?.codecs;
    if (!capabilities || typeof transceiver.setCodecPreferences !== 'function') return;
    const mime = MIME[codec].toLowerCase();
    const rank = (c: RTCRtpCodec) => {
      if (c.mimeType.toLowerCase() !== mime) return 2;
      return codec === 'h264' && !/packetization-mode=1/.test(c.sdpFmtpLine ?? '') ? 1 : 0;
    };
    transceiver.setCodecPreferences([...capabilities].sort((a, b) => rank(a) - rank(b)));
  }

  async #capBitrate(pc: RTCPeerConnection): Promise<void> {
    const bitrate = this.#options.videoBitrate ?? 2_500_000;
    for (const sender of pc.getSenders()) {
      if (sender.track?.kind !== 'video') continue;
      const parameters = sender.getParameters();
      if (!parameters.encodings?.length) parameters.encodings = [{}];
      for (const encoding of parameters.encodings) encoding.maxBitrate = bitrate;
      await sender.setParameters(parameters).catch(() => {});
    }
  }

  #setState(state: PublisherState, reason?: string): void {
    if (state === this.#state) return;
    this.#state = state;
    this.emit('state', reason ? { state, reason } : { state });
  }
}
