/**
 * WHEP load generator, run as a child of run.ts (IPC): N node-datachannel peers, each POSTing a recvonly
 * H.264 offer to the server and counting what arrives, in a process of its own so its CPU is not the
 * server's. Loss is counted from RTP sequence gaps per viewer.
 *
 * Each peer's Track is held in its Receiver: node-datachannel's TrackWrapper destructor closes the track, so a
 * track whose JS object was collected (a GC triggered by the next peers' set-up) silently stopped receiving.
 */
import { networkInterfaces } from 'node:os';
import nodeDataChannel, { type PeerConnection, type Track } from 'node-datachannel';

/**
 * One IPv4 address for every receiver: with IPv4 and IPv6 host candidates on both sides, libjuice peers in one
 * process sometimes settled on different pairs than the server and received nothing.
 */
const BIND =
  Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal)?.address ?? undefined;

interface Receiver {
  pc: PeerConnection;
  /** Held for the peer's life: node-datachannel closes a track when its JS wrapper is garbage-collected. */
  track: Track;
  postedAt: number;
  firstRtpMs: number;
  packets: number;
  bytes: number;
  lost: number;
  lastSeq: number;
  /** Smallest (arrival − RTP time) seen: the reference for how late each later packet is. */
  minOffset: number;
  firstTs: number;
  cycles: number;
  lastTs: number;
}

/** How late packets arrive against the earliest one on the RTP clock (queueing and jitter), sampled. */
const delays: number[] = [];

const receivers: Receiver[] = [];

function quantile(values: number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function addReceiver(url: string): Promise<void> {
  const pc = new nodeDataChannel.PeerConnection('bench-viewer', { iceServers: [], bindAddress: BIND });
  const video = new nodeDataChannel.Video('0', 'RecvOnly');
  video.addH264Codec(102, 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f');
  const track = pc.addTrack(video);
  const r: Receiver = {
    pc,
    track,
    postedAt: 0,
    firstRtpMs: -1,
    packets: 0,
    bytes: 0,
    lost: 0,
    lastSeq: -1,
    minOffset: Number.POSITIVE_INFINITY,
    firstTs: -1,
    cycles: 0,
    lastTs: 0,
  };
  track.onMessage((m) => {
    if (m.length < 12 || (m[1] >= 192 && m[1] <= 223)) return;
    if (r.firstRtpMs < 0) r.firstRtpMs = performance.now() - r.postedAt;
    r.packets++;
    r.bytes += m.length;
    const seq = m.readUInt16BE(2);
    if (r.lastSeq >= 0) {
      const gap = (seq - r.lastSeq - 1) & 0xffff;
      if (gap > 0 && gap < 0x8000) r.lost += gap;
    }
    r.lastSeq = seq;
    const ts = m.readUInt32BE(4);
    if (r.firstTs < 0) r.firstTs = ts;
    if (ts < r.lastTs && r.lastTs - ts > 0x80000000) r.cycles += 0x100000000;
    r.lastTs = ts;
    const offset = performance.now() - (r.cycles + ts - r.firstTs) / 90;
    if (offset < r.minOffset) r.minOffset = offset;
    if ((r.packets & 15) === 0 && delays.length < 200_000) delays.push(offset - r.minOffset);
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('ICE gathering did not complete in 5 s')), 5000);
    pc.onGatheringStateChange((state) => {
      if (state === 'complete') {
        clearTimeout(timer);
        resolve();
      }
    });
    pc.setLocalDescription();
  });
  r.postedAt = performance.now();
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp' },
    body: pc.localDescription()?.sdp ?? '',
  });
  const answer = await response.text();
  if (response.status !== 201) throw new Error(`WHEP answered ${response.status}: ${answer}`);
  pc.setRemoteDescription(answer, 'answer');
  receivers.push(r);
}

type Command = { type: 'add'; count: number; url: string } | { type: 'report' } | { type: 'close' };

process.on('message', (command: Command) => {
  void (async () => {
    if (command.type === 'add') {
      // Ten offers at a time: a crowd arriving, without a thousand simultaneous handshakes.
      for (let i = 0; i < command.count; i += 10) {
        const batch = Math.min(10, command.count - i);
        await Promise.all(Array.from({ length: batch }, () => addReceiver(command.url)));
      }
      process.send?.({ type: 'added', total: receivers.length });
    } else if (command.type === 'report') {
      // Since the previous report: run.ts asks before and after each measurement window.
      const sample = delays.splice(0);
      const connected = receivers.filter((r) => r.packets > 0);
      process.send?.({
        type: 'report',
        viewers: receivers.length,
        receiving: connected.length,
        packets: receivers.reduce((a, r) => a + r.packets, 0),
        bytes: receivers.reduce((a, r) => a + r.bytes, 0),
        lost: receivers.reduce((a, r) => a + r.lost, 0),
        lateMs: { p50: quantile(sample, 0.5), p99: quantile(sample, 0.99) },
        firstRtpMs: {
          p50: quantile(
            connected.map((r) => r.firstRtpMs),
            0.5,
          ),
          p99: quantile(
            connected.map((r) => r.firstRtpMs),
            0.99,
          ),
        },
      });
    } else if (command.type === 'close') {
      for (const r of receivers) r.pc.close();
      setTimeout(() => {
        nodeDataChannel.cleanup();
        process.exit(0);
      }, 200);
    }
  })().catch((error: Error) => process.send?.({ type: 'error', message: error.message }));
});
process.on('disconnect', () => process.exit(0));
