/**
 * WHEP viewers for run.ts: node-datachannel peers in this child process (run.ts starts several, so no one
 * process holds hundreds of libjuice agents), each POSTing a recvonly H.264 offer and counting the RTP it gets
 * and the sequence gaps. Commands over IPC: add, report, close.
 */
import { networkInterfaces } from 'node:os';
import nodeDataChannel, { type PeerConnection } from 'node-datachannel';

/** One IPv4 address for every peer here (with several candidate pairs per peer, some peers never settled). */
const BIND = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

interface Viewer {
  readonly pc: PeerConnection;
  packets: number;
  lost: number;
  lastSequence: number;
}

const viewers: Viewer[] = [];

function gathered(pc: PeerConnection): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('ICE gathering did not complete within 5 s')), 5000);
    pc.onGatheringStateChange((state) => {
      if (state !== 'complete') return;
      clearTimeout(timer);
      resolve();
    });
    pc.setLocalDescription();
  });
}

async function add(url: string): Promise<void> {
  const pc = new nodeDataChannel.PeerConnection('bench-viewer', { iceServers: [], bindAddress: BIND });
  const video = new nodeDataChannel.Video('0', 'RecvOnly');
  video.addH264Codec(102, 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f');
  const track = pc.addTrack(video);
  const viewer: Viewer = { pc, packets: 0, lost: 0, lastSequence: -1 };
  track.onMessage((m) => {
    // RTCP (sender reports) shares the port: payload types 192-223 in the second byte (RFC 5761 §4).
    if (m.length < 12 || (m[1] >= 192 && m[1] <= 223)) return;
    viewer.packets++;
    const sequence = m.readUInt16BE(2);
    if (viewer.lastSequence >= 0) {
      const gap = (sequence - viewer.lastSequence - 1) & 0xffff;
      if (gap > 0 && gap < 0x8000) viewer.lost += gap;
    }
    viewer.lastSequence = sequence;
  });
  await gathered(pc);
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp' },
    body: pc.localDescription()?.sdp ?? '',
  });
  const answer = await response.text();
  if (response.status !== 201) throw new Error(`WHEP answered ${response.status}: ${answer.slice(0, 200)}`);
  pc.setRemoteDescription(answer, 'answer');
  viewers.push(viewer);
}

type Command = { type: 'add'; count: number; url: string } | { type: 'report' } | { type: 'close' };

process.on('message', (command: Command) => {
  void (async () => {
    if (command.type === 'add') {
      // Five offers at a time: a crowd arriving without a burst of simultaneous handshakes.
      for (let i = 0; i < command.count; i += 5) {
        await Promise.all(Array.from({ length: Math.min(5, command.count - i) }, () => add(command.url)));
      }
      process.send?.({ type: 'added', total: viewers.length });
    } else if (command.type === 'report') {
      process.send?.({
        type: 'report',
        viewers: viewers.length,
        receiving: viewers.filter((v) => v.packets > 0).length,
        packets: viewers.reduce((a, v) => a + v.packets, 0),
        lost: viewers.reduce((a, v) => a + v.lost, 0),
      });
    } else {
      for (const v of viewers) v.pc.close();
      // No nodeDataChannel.cleanup(): racing the peers' close callbacks it aborted the process
      // (napi_release_threadsafe_function); exiting frees everything anyway.
      setTimeout(() => process.exit(0), 500);
    }
  })().catch((error: Error) => process.send?.({ type: 'error', message: error.message }));
});
process.on('disconnect', () => process.exit(0));
