/** The label the server serves messaging on (src/messaging/datachannel/DataChannelServer.ts). */
export const MESSAGING_DATA_CHANNEL_LABEL = 'subsecond.messaging';

/**
 * A WebRTC session (a player's WHEP peer connection or a WhipPublisher's) lent to messaging: channels ride
 * its data channels instead of opening a WebSocket. Give the same instance to the player (`messaging` option)
 * and to `channel(name, { peer })`.
 *
 * The first data channel must be in the offer for the SCTP m-section to be negotiated (RFC 8841), so the
 * WHEP/WHIP client calls `attach` before createOffer; later channels open in-band (RFC 8832) with no new
 * offer.
 */
export class MessagingPeer {
  #pc: RTCPeerConnection | null = null;
  /** The channel created with the offer, kept for the first messaging transport that asks. */
  #spare: RTCDataChannel | null = null;
  #everAttached = false;

  /** Called by the WHEP/WHIP client on its new peer connection, before createOffer. */
  attach(pc: RTCPeerConnection): void {
    this.#pc = pc;
    this.#everAttached = true;
    this.#spare = pc.createDataChannel(MESSAGING_DATA_CHANNEL_LABEL);
  }

  /** Called when that peer connection closes. */
  detach(pc: RTCPeerConnection): void {
    if (this.#pc !== pc) return;
    this.#pc = null;
    this.#spare = null;
  }

  /** False until a WHEP/WHIP client attached a peer connection: then there is nothing to wait for. */
  get everAttached(): boolean {
    return this.#everAttached;
  }

  /** True while a peer connection can carry messaging. */
  get available(): boolean {
    const state = this.#pc?.connectionState;
    return state !== undefined && state !== 'closed' && state !== 'failed';
  }

  /**
   * A messaging data channel on the current peer connection, or null when there is none. Reliable and
   * ordered unless `init` says otherwise (`{ ordered: false, maxRetransmits: 0 }` for reactions).
   */
  openChannel(init?: RTCDataChannelInit): RTCDataChannel | null {
    if (!this.available || !this.#pc) return null;
    const spare = this.#spare;
    this.#spare = null;
    if (spare && !init && spare.readyState !== 'closing' && spare.readyState !== 'closed') return spare;
    return this.#pc.createDataChannel(MESSAGING_DATA_CHANNEL_LABEL, init);
  }
}
