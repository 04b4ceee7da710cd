import { createSocket } from 'node:dgram';
import nodeDataChannel, {
  type Audio,
  type DataChannel,
  type PeerConnection,
  type Track,
  type Video,
} from 'node-datachannel';
import type { WebRtcConfig } from '../../config/schema.ts';
import type { Logger } from '../../core/log.ts';
import { hostCandidate } from './sdp.ts';

/*
 * The thin layer over node-datachannel (libdatachannel): every peer on one UDP port through libjuice's ICE UDP
 * mux, libdatachannel logs into pino, and the native threads stopped when the last engine closes so the
 * process can exit.
 */

let liveEngines = 0;
let loggerTarget: Logger | null = null;

const LOG_LEVELS = {
  Verbose: 'trace',
  Debug: 'debug',
  Info: 'debug',
  Warning: 'warn',
  Error: 'error',
  Fatal: 'fatal',
} as const;

/** How long closed peers get to deliver their close events before libdatachannel is cleaned up. */
const CLOSE_SETTLE_MS = 250;
/**
 * How long a closed peer's tracks and data channels stay referenced: their native close callbacks (which
 * take them out of node-datachannel's instance lists) run on this thread shortly after they close.
 */
const RELEASE_AFTER_CLOSE_MS = 5000;
/** The longest the last engine waits for its peers to reach `closed` before cleaning up anyway. */
const CLOSE_WAIT_MS = 2000;
/** A free UDP port on `host`, for `webrtc.udpPort: 0` (tests). */
function freeUdpPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    socket.once('error', reject);
    socket.bind(0, host, () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

export class WebRtcEngine {
  readonly udpPort: number;
  readonly #config: WebRtcConfig;
  /** Every peer this engine made that was not yet seen closed, including ones still being negotiated. */
  readonly #peers = new Set<PeerConnection>();
  /**
   * Every track and data channel of those peers, referenced until well after it closed. node-datachannel
   * keeps a raw pointer to each wrapper in a static list that only its close callback or cleanup() clears;
   * a wrapper garbage-collected while still listed is freed memory that cleanup() then calls close() on
   * (SIGSEGV in rtc::Track::close under TrackWrapper::CloseAll / RtcWrapper::cleanup, seen in a core dump of
   * an e2e test process; a glibc mutex assertion in other runs).
   */
  readonly #owned = new Map<PeerConnection, { tracks: Track[]; channels: DataChannel[] }>();
  #closed = false;

  private constructor(config: WebRtcConfig, udpPort: number) {
    this.#config = config;
    this.udpPort = udpPort;
  }

  static async start(config: WebRtcConfig, log: Logger): Promise<WebRtcEngine> {
    const bind = config.bindAddress === '0.0.0.0' ? '0.0.0.0' : config.bindAddress;
    const port = config.udpPort === 0 ? await freeUdpPort(bind) : config.udpPort;
    loggerTarget = log.child({ component: 'libdatachannel' });
    if (liveEngines === 0) {
      nodeDataChannel.initLogger('Warning', (level, message) => {
        const method = LOG_LEVELS[level] ?? 'info';
        loggerTarget?.[method](message);
      });
    }
    liveEngines++;
    return new WebRtcEngine(config, port);
  }

  /** A peer on the shared UDP port. Negotiation is driven by the WHIP/WHEP session, not automatic. */
  createPeer(name: string): PeerConnection {
    if (this.#closed) throw new Error('WebRTC engine is closed');
    for (const peer of this.#peers) {
      if (peer.state() !== 'closed') continue;
      this.#peers.delete(peer);
      this.#closeTracks(peer);
    }
    const peer = new nodeDataChannel.PeerConnection(name, {
      iceServers: [],
      enableIceUdpMux: true,
      portRangeBegin: this.udpPort,
      portRangeEnd: this.udpPort,
      bindAddress: this.#config.bindAddress === '0.0.0.0' ? undefined : this.#config.bindAddress,
      disableAutoNegotiation: true,
      // Room for SRTP and header overhead under a 1500-byte path; our packetizer stays below it.
      mtu: 1280,
    });
    this.#peers.add(peer);
    return peer;
  }

  /** A track on one of this engine's peers, closed by closePeer. */
  addTrack(peer: PeerConnection, description: Video | Audio): Track {
    const track = peer.addTrack(description);
    // The wrapper leaves node-datachannel's instance list only through a registered close callback.
    track.onClosed(() => {});
    this.#ownedBy(peer).tracks.push(track);
    return track;
  }

  /**
   * A data channel the remote opened on one of this engine's peers: referenced until after it closed. Whoever
   * serves it must register its own onClosed (which takes it out of the native list); `refuseDataChannel`
   * does for one nobody serves.
   */
  adoptDataChannel(peer: PeerConnection, dc: DataChannel): void {
    this.#ownedBy(peer).channels.push(dc);
  }

  refuseDataChannel(peer: PeerConnection, dc: DataChannel): void {
    this.adoptDataChannel(peer, dc);
    dc.onClosed(() => {});
    dc.close();
  }

  /** Closes a peer's tracks, then the peer; what it owned is released a while after. */
  closePeer(peer: PeerConnection): void {
    this.#closeTracks(peer);
    try {
      peer.close();
    } catch {
      // already closed by the stack
    }
  }

  #ownedBy(peer: PeerConnection): { tracks: Track[]; channels: DataChannel[] } {
    let owned = this.#owned.get(peer);
    if (!owned) {
      owned = { tracks: [], channels: [] };
      this.#owned.set(peer, owned);
    }
    return owned;
  }

  #closeTracks(peer: PeerConnection): void {
    const owned = this.#owned.get(peer);
    if (!owned) return;
    for (const track of owned.tracks) {
      try {
        track.close();
      } catch {
        // already closed
      }
    }
    // After cleanup() the lists are gone anyway; until then the close callbacks must have run first.
    if (!this.#closed) {
      setTimeout(() => {
        if (this.#owned.get(peer) === owned) this.#owned.delete(peer);
      }, RELEASE_AFTER_CLOSE_MS).unref();
    }
  }

  /**
   * Host candidates libdatachannel cannot know: the configured public addresses (NAT, containers) and, for a
   * client on this machine, loopback (libjuice skips loopback interfaces when gathering).
   */
  extraCandidates(clientIsLoopback: boolean): string[] {
    const out: string[] = [];
    let foundation = 100;
    for (const address of this.#config.announcedAddresses) {
      out.push(hostCandidate(foundation++, address, this.udpPort, 2130706431 - foundation));
    }
    if (clientIsLoopback && this.#config.loopbackCandidate) {
      out.push(hostCandidate(foundation++, '127.0.0.1', this.udpPort, 2122260223));
    }
    return out;
  }

  /**
   * Call after closing every peer. The last engine of the process stops libdatachannel's threads, once the
   * close events of those peers have been delivered: cleanup() racing a track's pending close callback released
   * its thread-safe function twice and crashed the process (SIGSEGV in TrackWrapper::CleanupAll).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // A peer whose answer was still being gathered belongs to no session yet, so nobody else closes it; one
    // left gathering ICE candidates while cleanup() ran aborted the process ("Failed to gather local ICE
    // candidates" thrown on a libdatachannel thread).
    for (const peer of this.#peers) this.closePeer(peer);
    for (const peer of this.#owned.keys()) this.#closeTracks(peer);
    const deadline = performance.now() + CLOSE_WAIT_MS;
    while (performance.now() < deadline && [...this.#peers].some((p) => p.state() !== 'closed'))
      await new Promise((resolve) => setTimeout(resolve, 20));
    this.#peers.clear();
    liveEngines--;
    if (liveEngines !== 0) return;
    await new Promise((resolve) => setTimeout(resolve, CLOSE_SETTLE_MS));
    // Another engine may have started meanwhile (a test starting the next server): its threads stay.
    if (liveEngines === 0) {
      loggerTarget = null;
      nodeDataChannel.cleanup();
    }
    this.#owned.clear();
  }
}
