import type { IncomingHttpHeaders } from 'node:http';
import type { DataChannel } from 'node-datachannel';

/** The WHEP/WHIP session a data channel was opened on, as the layer that serves the channel sees it. */
export interface DataChannelPeer {
  readonly kind: 'whep' | 'whip';
  readonly path: string;
  readonly sessionId: string;
  readonly remoteAddress: string;
  /** The WHEP/WHIP POST's headers and query: what identifies the client. */
  readonly headers: IncomingHttpHeaders;
  readonly query: URLSearchParams;
}

/**
 * Serves the data channels a WebRTC peer opens (RFC 8831) on its session. The WebRTC server knows nothing of
 * what runs on them: server.ts plugs in the messaging layer's handler.
 */
export interface DataChannelHandler {
  /**
   * Takes a channel the peer just opened: a function that ends what it serves (called when the session
   * closes), or null when the label is not one it serves (the channel is then closed).
   */
  open(channel: DataChannel, peer: DataChannelPeer): (() => void) | null;
}
