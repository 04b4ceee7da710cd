import nodeDataChannel, { type DataChannel, type PeerConnection, type Track } from 'node-datachannel';

/**
 * A WebRTC client in Node (node-datachannel, a separate peer from the server's), for protocol tests that do
 * not need a browser: it builds real offers, connects over real ICE/DTLS/SRTP and sends or receives RTP.
 */
export interface TestPeer {
  readonly pc: PeerConnection;
  readonly tracks: Track[];
  /** The data channel created before the offer (`dataChannel` option), so the offer has an SCTP m-section. */
  readonly dataChannel: DataChannel | null;
  readonly offer: string;
  close(): void;
}

/** Sets the local offer and resolves once every candidate is gathered (non-trickle, as RFC 9725 allows). */
function offerGathered(pc: PeerConnection): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`ICE gathering not complete after 5 s: ${pc.gatheringState()}`)),
      5000,
    );
    pc.onGatheringStateChange((state) => {
      if (state === 'complete') {
        clearTimeout(timer);
        resolve();
      }
    });
    pc.setLocalDescription();
    // Creating a data channel negotiates by itself: gathering may be complete already.
    if (pc.gatheringState() === 'complete') {
      clearTimeout(timer);
      resolve();
    }
  });
}

export async function createTestPeer(options: {
  video?: 'H264' | 'VP8' | null;
  audio?: boolean;
  direction: 'SendOnly' | 'RecvOnly';
  ssrcs?: { video?: number; audio?: number };
  /** Label of a data channel to open with the session. */
  dataChannel?: string;
}): Promise<TestPeer> {
  const pc = new nodeDataChannel.PeerConnection('test-client', { iceServers: [] });
  const tracks: Track[] = [];
  let mid = 0;
  if (options.video !== null) {
    const video = new nodeDataChannel.Video(String(mid++), options.direction);
    if ((options.video ?? 'H264') === 'H264') {
      video.addH264Codec(102, 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f');
    } else {
      video.addVP8Codec(96);
    }
    if (options.direction === 'SendOnly')
      video.addSSRC(options.ssrcs?.video ?? 0x1234, 'test-cname', 'test', 'v');
    tracks.push(pc.addTrack(video));
  }
  if (options.audio) {
    const audio = new nodeDataChannel.Audio(String(mid++), options.direction);
    audio.addOpusCodec(111);
    if (options.direction === 'SendOnly')
      audio.addSSRC(options.ssrcs?.audio ?? 0x5678, 'test-cname', 'test', 'a');
    tracks.push(pc.addTrack(audio));
  }
  const dataChannel = options.dataChannel ? pc.createDataChannel(options.dataChannel) : null;
  await offerGathered(pc);
  const offer = pc.localDescription()?.sdp ?? '';
  return {
    pc,
    tracks,
    dataChannel,
    offer,
    close() {
      try {
        pc.close();
      } catch {
        // already closed
      }
    },
  };
}

/** Resolves once the peer is connected; rejects after `timeoutMs`. */
export function connected(pc: PeerConnection, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (pc.state() === 'connected') return resolve();
    const timer = setTimeout(
      () => reject(new Error(`peer not connected after ${timeoutMs} ms: ${pc.state()}`)),
      timeoutMs,
    );
    pc.onStateChange((state) => {
      if (state === 'connected') {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}
