import { gatherOffer, parseIceServerLinks, resourceUrl, sdpPost } from '../../webrtc/whepWhip.ts';
import type {
  Transport,
  TransportContext,
  TransportObserver,
  TransportStats,
  WebRtcStats,
} from '../transport/Transport.ts';

/** WebRTC must show a frame within this, or the player falls back to the next transport. */
const CONNECT_TIMEOUT_MS = 5000;
const STATS_INTERVAL_MS = 1000;
/**
 * A server that ends the session (the publisher left) closes its peer, but a browser notices only when ICE
 * consent runs out (~30 s): media that stops for this long ends the session on our side.
 */
const MEDIA_SILENCE_MS = 3000;

/** The WHEP endpoint of a stream. */
export function whepUrl(server: string, path: string): string {
  return new URL(`/whep/${path.split('/').map(encodeURIComponent).join('/')}`, server).href;
}

const NO_WEBRTC_STATS: WebRtcStats = {
  jitterBufferMs: 0,
  packetsLost: 0,
  nacks: 0,
  freezes: 0,
  rttMs: 0,
  framesPerSecond: 0,
  senderToPlayoutMs: null,
};

/**
 * WHEP playback: a recvonly peer connection whose tracks play in the video element with the browser's own
 * jitter buffer, the lowest latency a browser offers. The session is a WHEP resource (POST offer → 201 +
 * Location; DELETE on close).
 */
export class WhepTransport implements Transport {
  static readonly kind = 'webrtc';
  readonly kind = 'webrtc';
  readonly #context: TransportContext;
  readonly #observer: TransportObserver;
  #pc: RTCPeerConnection | null = null;
  #location: string | null = null;
  #session = 0;
  #connectTimer: ReturnType<typeof setTimeout> | null = null;
  #statsTimer: ReturnType<typeof setInterval> | null = null;
  #playing = false;
  #stats: TransportStats = WhepTransport.#emptyStats(0);
  #lastBytes = 0;
  #lastBytesAt = 0;
  #lastGrowthAt = 0;

  static isSupported(): boolean {
    return typeof RTCPeerConnection !== 'undefined' && typeof fetch !== 'undefined';
  }

  static #emptyStats(targetBuffer: number): TransportStats {
    return {
      bufferAhead: 0,
      targetBuffer,
      latency: 0,
      playbackRate: 1,
      bitrate: 0,
      bytesReceived: 0,
      codecs: '',
      skippedFrames: 0,
      stallRecoveries: 0,
      liveSeeks: 0,
      underruns: 0,
      webrtc: NO_WEBRTC_STATS,
    };
  }

  constructor(context: TransportContext, observer: TransportObserver) {
    this.#context = context;
    this.#observer = observer;
    this.#stats = WhepTransport.#emptyStats(context.targetBuffer);
  }

  connect(): void {
    this.#teardown();
    const session = ++this.#session;
    this.#playing = false;
    void this.#start(session).catch((error: Error) => {
      if (session !== this.#session) return;
      this.#teardown();
      this.#observer.onClosed({ reason: `WebRTC: ${error.message}`, unavailable: true });
    });
  }

  close(): void {
    this.#session++;
    this.#teardown();
    const video = this.#context.video;
    if (video.srcObject) video.srcObject = null;
  }

  stats(): TransportStats {
    return this.#stats;
  }

  async #start(session: number): Promise<void> {
    const { video, server, path } = this.#context;
    const pc = new RTCPeerConnection();
    this.#pc = pc;
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    // Before the offer, so it negotiates the SCTP m-section messaging rides on.
    this.#context.messaging?.attach(pc);
    const media = new MediaStream();
    pc.ontrack = (event) => {
      media.addTrack(event.track);
      if (video.srcObject !== media) video.srcObject = media;
      void video.play().catch(() => {
        // Autoplay with sound refused: the page offers a button; muted playback still counts frames.
      });
    };
    pc.onconnectionstatechange = () => {
      if (session !== this.#session) return;
      const state = pc.connectionState;
      if (state === 'failed' || state === 'closed') this.#lost(`WebRTC connection ${state}`);
    };
    this.#connectTimer = setTimeout(() => {
      if (session !== this.#session || this.#playing) return;
      this.#teardown();
      this.#observer.onClosed({
        reason: `WebRTC showed no frame within ${CONNECT_TIMEOUT_MS / 1000} s`,
        unavailable: true,
      });
    }, CONNECT_TIMEOUT_MS);

    const offer = await gatherOffer(pc);
    if (session !== this.#session) return;
    const endpoint = whepUrl(server, path);
    const response = await sdpPost(endpoint, offer, this.#context.token);
    if (session !== this.#session) {
      if (response.status === 201 && response.location)
        void fetch(resourceUrl(endpoint, response.location), { method: 'DELETE' });
      return;
    }
    if (response.status !== 201) {
      this.#teardown();
      // 404 "not live": retry later on WebRTC. Any other refusal (a server without WHEP answers 404 "no route",
      // a stream WebRTC cannot carry 409, codecs 406) means WebRTC cannot play this stream here.
      const refusedToken = response.status === 401 || response.status === 403;
      const closed =
        response.status === 404 && /not live/.test(response.error)
          ? { reason: 'stream not live' }
          : refusedToken
            ? { reason: `WHEP refused (${response.status}): ${response.error}`, fatal: true }
            : { reason: `WHEP refused (${response.status}): ${response.error}`, unavailable: true };
      this.#observer.onClosed(closed);
      return;
    }
    this.#location = response.location ? resourceUrl(endpoint, response.location) : null;
    const iceServers = parseIceServerLinks(response.links);
    if (iceServers.length > 0) pc.setConfiguration({ iceServers });
    await pc.setRemoteDescription({ type: 'answer', sdp: response.body });
    if (session !== this.#session) return;
    this.#watchFrames(session);
    this.#statsTimer = setInterval(() => void this.#poll(session), STATS_INTERVAL_MS);
  }

  /** Playing means a frame was presented (requestVideoFrameCallback), not merely connected. */
  #watchFrames(session: number): void {
    const video = this.#context.video;
    const onFrame = () => {
      if (session !== this.#session || this.#playing) return;
      this.#playing = true;
      if (this.#connectTimer) clearTimeout(this.#connectTimer);
      this.#connectTimer = null;
      this.#observer.onPlaying();
    };
    if (typeof video.requestVideoFrameCallback === 'function') video.requestVideoFrameCallback(onFrame);
    else video.addEventListener('playing', onFrame, { once: true });
  }

  #lost(reason: string): void {
    const wasPlaying = this.#playing;
    this.#teardown();
    this.#observer.onClosed(wasPlaying ? { reason } : { reason, unavailable: true });
  }

  async #poll(session: number): Promise<void> {
    const pc = this.#pc;
    if (!pc || session !== this.#session) return;
    const report = await pc.getStats();
    if (session !== this.#session) return;
    let bytes = 0;
    let jitterDelay = 0;
    let jitterEmitted = 0;
    let packetsLost = 0;
    let nacks = 0;
    let freezes = 0;
    let dropped = 0;
    let fps = 0;
    let rtt = 0;
    let playoutNtpMs = 0;
    const codecIds: string[] = [];
    const codecs = new Map<string, string>();
    for (const s of report.values()) {
      if (s.type === 'inbound-rtp') {
        bytes += s.bytesReceived ?? 0;
        packetsLost += s.packetsLost ?? 0;
        nacks += s.nackCount ?? 0;
        if (s.codecId) codecIds.push(s.codecId);
        if (s.kind === 'video') {
          jitterDelay = s.jitterBufferDelay ?? 0;
          jitterEmitted = s.jitterBufferEmittedCount ?? 0;
          freezes = s.freezeCount ?? 0;
          dropped = s.framesDropped ?? 0;
          fps = s.framesPerSecond ?? 0;
          playoutNtpMs = s.estimatedPlayoutTimestamp ?? 0;
        }
      } else if (s.type === 'codec') {
        codecs.set(s.id, String(s.mimeType ?? '').replace(/^(video|audio)\//, ''));
      } else if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
        rtt = (s.currentRoundTripTime ?? 0) * 1000;
      }
    }
    const now = performance.now();
    if (bytes > this.#lastBytes || this.#lastGrowthAt === 0) this.#lastGrowthAt = now;
    else if (this.#playing && now - this.#lastGrowthAt > MEDIA_SILENCE_MS) {
      this.#lost(`no media from the server for ${MEDIA_SILENCE_MS / 1000} s`);
      return;
    }
    const bitrate = this.#lastBytesAt
      ? ((bytes - this.#lastBytes) * 8 * 1000) / (now - this.#lastBytesAt)
      : 0;
    this.#lastBytes = bytes;
    this.#lastBytesAt = now;
    const jitterBufferMs = jitterEmitted > 0 ? (jitterDelay / jitterEmitted) * 1000 : 0;
    const senderToPlayoutMs =
      playoutNtpMs > 0 ? plausibleDelay(Date.now() - (playoutNtpMs - NTP_TO_UNIX_MS)) : null;
    this.#stats = {
      bufferAhead: jitterBufferMs / 1000,
      targetBuffer: this.#context.targetBuffer,
      // From the sender reports' clock when the clocks agree (the whole path from the source's capture or
      // ingest); else what the browser holds back plus half the round trip, the part of the path it can see.
      latency: (senderToPlayoutMs ?? jitterBufferMs + rtt / 2) / 1000,
      playbackRate: 1,
      bitrate: Math.max(0, Math.round(bitrate)),
      bytesReceived: bytes,
      codecs: codecIds
        .map((id) => codecs.get(id) ?? '')
        .filter(Boolean)
        .join(','),
      skippedFrames: dropped,
      stallRecoveries: 0,
      liveSeeks: 0,
      underruns: freezes,
      webrtc: {
        jitterBufferMs,
        packetsLost,
        nacks,
        freezes,
        rttMs: rtt,
        framesPerSecond: fps,
        senderToPlayoutMs,
      },
    };
  }

  #teardown(): void {
    if (this.#connectTimer) clearTimeout(this.#connectTimer);
    this.#connectTimer = null;
    if (this.#statsTimer) clearInterval(this.#statsTimer);
    this.#statsTimer = null;
    if (this.#location) {
      // RFC 9725 §4.2: the client ends the session with DELETE; keepalive lets it leave with the page.
      void fetch(this.#location, { method: 'DELETE', keepalive: true }).catch(() => {});
      this.#location = null;
    }
    if (this.#pc) {
      this.#pc.ontrack = null;
      this.#pc.onconnectionstatechange = null;
      this.#context.messaging?.detach(this.#pc);
      this.#pc.close();
      this.#pc = null;
    }
    this.#lastBytes = 0;
    this.#lastBytesAt = 0;
    this.#lastGrowthAt = 0;
  }
}

/** Milliseconds from the NTP epoch (1900) to the Unix epoch (1970), RFC 5905. */
const NTP_TO_UNIX_MS = 2_208_988_800_000;

/** A delay from two machines' clocks, kept only when it could be real (clocks apart give nonsense). */
function plausibleDelay(ms: number): number | null {
  return ms >= 0 && ms <= 30_000 ? ms : null;
}
