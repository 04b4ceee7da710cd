import { randomBytes, randomUUID } from 'node:crypto';
import type { Audio, PeerConnection, Track, Video } from 'node-datachannel';
import type { Logger } from '../../core/log.ts';
import { newResourceId } from './resource.ts';
import { addCandidates, parseTrickleFragment, SdpError, takeCandidates } from './sdp.ts';
import type { WebRtcEngine } from './WebRtcEngine.ts';

export type SessionKind = 'whip' | 'whep';

export interface SessionTimeouts {
  /** ICE + DTLS must complete within this after the answer, or the session ends. */
  readonly connectTimeoutMs: number;
  /** A connected session that loses consent (ICE disconnected) ends if it does not come back within this. */
  readonly disconnectTimeoutMs: number;
  /** A connected session from which no packet arrives for this long ends. */
  readonly inactivityTimeoutMs: number;
}

const GATHER_TIMEOUT_MS = 2000;
/**
 * How long after answering we start checking the offer's candidates ourselves. Until then the client's checks
 * (sent once it has the answer) are what connect; we learn its address from them (RFC 8445 §7.3.1.3).
 */
const OFFER_CANDIDATES_DELAY_MS = 250;

/**
 * One WHIP or WHEP resource (RFC 9725 §4): a peer connection on the shared UDP port, its ETag, its ICE
 * lifecycle and timeouts. Closing it closes the peer and runs every `onClose` callback once.
 */
export abstract class WebRtcSession {
  abstract readonly kind: SessionKind;
  readonly id = randomUUID();
  /** The capability in the resource URL (resource.ts); never in listings or logs. */
  readonly resource = newResourceId();
  readonly path: string;
  readonly remoteAddress: string;
  readonly createdAt = Date.now();
  /** RFC 9725 §4.3.1: identifies the ICE session; a PATCH with another If-Match is refused. */
  etag = `"${randomBytes(8).toString('hex')}"`;
  readonly pc: PeerConnection;
  connectedAt = 0;
  closedReason = '';
  protected readonly log: Logger;
  readonly #closers: (() => void)[] = [];
  readonly #engine: WebRtcEngine;
  readonly #timeouts: SessionTimeouts;
  #timer: NodeJS.Timeout | null = null;
  #watchdog: NodeJS.Timeout | null = null;
  #closed = false;
  /** performance.now() of the last packet from the peer (set by subclasses, which see every packet). */
  protected lastHeard = 0;

  constructor(
    engine: WebRtcEngine,
    path: string,
    remoteAddress: string,
    timeouts: SessionTimeouts,
    log: Logger,
  ) {
    this.#engine = engine;
    this.path = path;
    this.remoteAddress = remoteAddress;
    this.#timeouts = timeouts;
    this.log = log;
    this.pc = engine.createPeer(`${path}#${this.id.slice(0, 8)}`);
    this.pc.onStateChange((state) => this.#onState(state));
  }

  /** A track for one of the offer's m-sections, closed before the peer when the session ends. */
  addTrack(description: Video | Audio): Track {
    return this.#engine.addTrack(this.pc, description);
  }

  get closed(): boolean {
    return this.#closed;
  }

  get state(): string {
    return this.#closed ? 'closed' : this.connectedAt ? 'connected' : 'connecting';
  }

  onClose(fn: () => void): void {
    if (this.#closed) fn();
    else this.#closers.push(fn);
  }

  /**
   * Applies the offer (tracks must already be added for every m-section) and returns the answer with every
   * candidate gathered, plus the ones only we know (announced addresses, loopback).
   */
  async answer(offer: string, clientIsLoopback: boolean): Promise<string> {
    const taken = takeCandidates(offer);
    const candidates = taken.candidates;
    // RFC 8842 §5.3: to an actpass offer we answer passive, so the client starts DTLS once it has our answer
    // and its own ICE is up; our media can then never reach a client whose DTLS is not finished. libdatachannel
    // answers active to actpass, so it is told the client is active.
    const sdp = taken.sdp.replace(/^a=setup:actpass$/gm, 'a=setup:active');
    try {
      this.pc.setRemoteDescription(sdp, 'offer');
    } catch (err) {
      throw new SdpError(400, `SDP offer refused by the WebRTC stack: ${(err as Error).message}`);
    }
    this.pc.setLocalDescription('answer');
    await new Promise<void>((resolve) => {
      if (this.pc.gatheringState() === 'complete') return resolve();
      const timer = setTimeout(resolve, GATHER_TIMEOUT_MS);
      this.pc.onGatheringStateChange((state) => {
        if (state === 'complete') {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    if (this.#closed) throw new Error(`session closed while answering: ${this.closedReason}`);
    const local = this.pc.localDescription();
    if (!local) throw new Error('the WebRTC stack produced no answer');
    this.#arm(this.#timeouts.connectTimeoutMs, 'ICE/DTLS did not connect in time');
    if (candidates.length > 0) {
      setTimeout(() => {
        if (this.#closed) return;
        for (const { mid, candidate } of candidates) {
          try {
            this.pc.addRemoteCandidate(candidate, mid);
          } catch (err) {
            this.log.debug(
              { path: this.path, candidate, err: (err as Error).message },
              'offer candidate refused',
            );
          }
        }
      }, OFFER_CANDIDATES_DELAY_MS).unref();
    }
    return addCandidates(local.sdp, this.#engine.extraCandidates(clientIsLoopback));
  }

  /**
   * RFC 9725 §4.3.1 trickle: candidates from an `application/trickle-ice-sdpfrag` body. Returns false for an
   * ICE restart (new ufrag), which libdatachannel cannot do on a live peer.
   */
  trickle(body: string, remoteUfrag: string): boolean {
    const fragment = parseTrickleFragment(body);
    if (fragment.iceUfrag && fragment.iceUfrag !== remoteUfrag) return false;
    for (const { mid, candidate } of fragment.candidates) {
      try {
        this.pc.addRemoteCandidate(candidate, mid || '0');
      } catch (err) {
        throw new SdpError(400, `trickle candidate refused: ${(err as Error).message} (${candidate})`);
      }
    }
    return true;
  }

  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.closedReason = reason;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#watchdog) clearInterval(this.#watchdog);
    this.#watchdog = null;
    this.log.info(
      { path: this.path, session: this.id, remote: this.remoteAddress, reason },
      `${this.kind} session closed`,
    );
    try {
      this.onClosing();
    } finally {
      // What hangs off the peer connection (its data channels) is closed while the connection still exists:
      // libdatachannel crashed the process (SIGSEGV) closing a data channel after its peer connection.
      for (const fn of this.#closers.splice(0)) fn();
      this.#engine.closePeer(this.pc);
    }
  }

  describe() {
    return {
      id: this.id,
      kind: this.kind,
      path: this.path,
      remoteAddress: this.remoteAddress,
      state: this.state,
      createdAt: new Date(this.createdAt).toISOString(),
      connectedAt: this.connectedAt ? new Date(this.connectedAt).toISOString() : null,
      rttMs: this.#closed ? 0 : this.pc.rtt(),
    };
  }

  /** Release what the subclass holds (stream claim, feed listener, timers). The peer closes after. */
  protected abstract onClosing(): void;

  /** Media may flow. */
  protected onConnected(): void {}

  /** Whether silence from the peer means it is gone (a viewer with nothing to watch may be quiet). */
  protected expectsTraffic(): boolean {
    return true;
  }

  /**
   * libjuice reports a vanished peer late, so liveness is judged from traffic too: a publisher sends RTP, a
   * viewer sends receiver reports about once a second (RFC 3550 §6.2).
   */
  #watch(): void {
    const limit = this.#timeouts.inactivityTimeoutMs;
    this.lastHeard = performance.now();
    this.#watchdog = setInterval(
      () => {
        if (!this.expectsTraffic()) this.lastHeard = performance.now();
        else if (performance.now() - this.lastHeard > limit) this.close(`nothing received for ${limit} ms`);
      },
      Math.min(1000, limit / 2),
    );
    this.#watchdog.unref();
  }

  #arm(ms: number, reason: string): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.close(reason), ms);
    this.#timer.unref();
  }

  #onState(state: string): void {
    if (this.#closed) return;
    if (state === 'connected') {
      if (this.#timer) clearTimeout(this.#timer);
      this.#timer = null;
      if (!this.connectedAt) {
        this.connectedAt = Date.now();
        this.log.info(
          { path: this.path, session: this.id, remote: this.remoteAddress },
          `${this.kind} session connected`,
        );
        this.#watch();
        this.onConnected();
      }
    } else if (state === 'disconnected') {
      // Consent freshness lost (RFC 7675): give ICE a moment to recover before freeing everything.
      this.#arm(this.#timeouts.disconnectTimeoutMs, 'ICE consent lost');
    } else if (state === 'failed') {
      setImmediate(() => this.close('ICE failed'));
    } else if (state === 'closed') {
      setImmediate(() => this.close('peer closed'));
    }
  }
}
