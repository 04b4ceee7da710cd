/**
 * WHEP load generator, run as a child of run.ts (IPC): node-datachannel peers that each join the stream and
 * count what arrives, in a process of their own so their CPU is not the server's. run.ts spreads the viewers
 * over several such processes (--per-process), so that one JavaScript thread handling every packet callback
 * does not itself become the delay it measures.
 *
 * Two ways to join: WHEP (the peer POSTs a recvonly H.264 offer to Subsecond) or Janus's HTTP API (watch the
 * streaming mountpoint, answer Janus's offer, start).
 *
 * Per viewer: packets, bytes, loss from RTP sequence gaps, offer → first RTP packet, offer → first whole
 * keyframe (its last packet, marker bit set), and the delivery delay of every frame: this process's clock at
 * the onMessage callback of the frame's stamp packet minus the source's clock when it sent it (stamp.ts; one
 * machine, one clock). The delay therefore holds the server, both UDP hops, the receiver's DTLS/SRTP in
 * libdatachannel and the wait for this process's event loop.
 *
 * Each peer's Track is held in its Receiver: node-datachannel's TrackWrapper destructor closes the track, so a
 * track whose JS object was collected (a GC triggered by the next peers' set-up) silently stopped receiving.
 */
import { networkInterfaces } from 'node:os';
import nodeDataChannel, { type PeerConnection, type Track } from 'node-datachannel';
import { JanusViewers } from './janus.ts';
import { H264_FMTP } from './source.ts';
import { nowMs, readStamp } from './stamp.ts';

/**
 * One IPv4 address for every peer: with IPv4 and IPv6 host candidates on both sides, libjuice peers in one
 * process sometimes settled on different pairs than the server. A non-loopback one, because Janus gathers
 * no loopback candidates (janus.ts).
 */
export const BIND =
  Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal)?.address ?? undefined;

interface Receiver {
  pc: PeerConnection;
  track: Track | undefined;
  postedAt: number;
  /** Offer (or watch request) → the peer connection's 'connected' state: ICE and DTLS done. */
  connectedMs: number;
  firstRtpMs: number;
  keyframeStarted: boolean;
  firstFrameMs: number;
  packets: number;
  bytes: number;
  lost: number;
  lastSeq: number;
  /** This viewer's delivery delays (ms) since the last report. */
  delays: number[];
}

const receivers: Receiver[] = [];
/** 30 stamped frames a second: room for windows of several minutes. */
const MAX_DELAYS_PER_VIEWER = 30 * 600;
let janus: JanusViewers | undefined;

/** RFC 6184: does this payload begin an IDR (single NAL, STAP-A holding one, or the first FU-A fragment)? */
function startsKeyframe(m: Buffer, p: number): boolean {
  const type = m[p] & 0x1f;
  if (type === 5 || type === 7) return true;
  if (type === 24) return (m[p + 3] & 0x1f) === 7 || (m[p + 3] & 0x1f) === 5;
  if (type === 28) return (m[p + 1] & 0x80) !== 0 && (m[p + 1] & 0x1f) === 5;
  return false;
}

function onPacket(r: Receiver, m: Buffer): void {
  if (m.length < 12 || (m[1] >= 192 && m[1] <= 223)) return;
  const now = performance.now();
  if (r.firstRtpMs < 0) r.firstRtpMs = now - r.postedAt;
  r.packets++;
  r.bytes += m.length;
  const seq = m.readUInt16BE(2);
  if (r.lastSeq >= 0) {
    const gap = (seq - r.lastSeq - 1) & 0xffff;
    if (gap > 0 && gap < 0x8000) r.lost += gap;
  }
  r.lastSeq = seq;
  let p = 12 + 4 * (m[0] & 0x0f);
  if (m[0] & 0x10 && p + 4 <= m.length) p += 4 + 4 * m.readUInt16BE(p + 2);
  if (p >= m.length) return;
  if (r.firstFrameMs < 0) {
    if (!r.keyframeStarted) r.keyframeStarted = startsKeyframe(m, p);
    if (r.keyframeStarted && m[1] & 0x80) r.firstFrameMs = now - r.postedAt;
  }
  const sent = readStamp(m, p);
  if (sent >= 0 && r.delays.length < MAX_DELAYS_PER_VIEWER) r.delays.push(nowMs() - sent);
}

function newReceiver(): Receiver {
  const pc = new nodeDataChannel.PeerConnection('bench-viewer', { iceServers: [], bindAddress: BIND });
  pc.onStateChange((state) => {
    if (state === 'connected' && r.connectedMs < 0) r.connectedMs = performance.now() - r.postedAt;
  });
  const r: Receiver = {
    pc,
    track: undefined,
    postedAt: 0,
    connectedMs: -1,
    firstRtpMs: -1,
    keyframeStarted: false,
    firstFrameMs: -1,
    packets: 0,
    bytes: 0,
    lost: 0,
    lastSeq: -1,
    delays: [],
  };
  return r;
}

function gathered(pc: PeerConnection, start: () => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('ICE gathering did not complete in 5 s')), 5000);
    pc.onGatheringStateChange((state) => {
      if (state === 'complete') {
        clearTimeout(timer);
        resolve();
      }
    });
    start();
  });
}

async function addWhepReceiver(url: string): Promise<void> {
  const r = newReceiver();
  const video = new nodeDataChannel.Video('0', 'RecvOnly');
  video.addH264Codec(102, H264_FMTP);
  const track = r.pc.addTrack(video);
  r.track = track;
  track.onMessage((m) => onPacket(r, m));
  await gathered(r.pc, () => r.pc.setLocalDescription());
  r.postedAt = performance.now();
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp' },
    body: r.pc.localDescription()?.sdp ?? '',
  });
  const answer = await response.text();
  if (response.status !== 201) throw new Error(`WHEP answered ${response.status}: ${answer}`);
  r.pc.setRemoteDescription(answer, 'answer');
  receivers.push(r);
}

/** Offer → first RTP for Janus counts from the watch request, the moment the viewer asks to join. */
async function addJanusReceiver(base: string): Promise<void> {
  janus ??= new JanusViewers(base);
  const r = newReceiver();
  r.pc.onTrack((track) => {
    r.track = track;
    track.onMessage((m) => onPacket(r, m));
  });
  r.postedAt = performance.now();
  const { handle, offer } = await janus.watch();
  await gathered(r.pc, () => r.pc.setRemoteDescription(offer, 'offer'));
  await janus.start(handle, r.pc.localDescription()?.sdp ?? '');
  receivers.push(r);
}

export interface ViewerReport {
  packets: number;
  bytes: number;
  lost: number;
  connectedMs: number;
  firstRtpMs: number;
  firstFrameMs: number;
  /** Delivery delay since the previous report: median, 99th percentile, frames counted. */
  delayP50: number;
  delayP99: number;
  frames: number;
}

export interface ReceiversReport {
  type: 'report';
  viewers: ViewerReport[];
  /** Delivery delays of every viewer since the previous report, rounded to 0.1 ms. */
  delays: number[];
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted.length === 0 ? -1 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

type Command =
  | { type: 'add'; count: number; whep?: string; janus?: string }
  | { type: 'report' }
  | { type: 'close' };

process.on('message', (command: Command) => {
  void (async () => {
    if (command.type === 'add') {
      // Ten joins at a time: a crowd arriving, without hundreds of simultaneous handshakes.
      for (let i = 0; i < command.count; i += 10) {
        const batch = Math.min(10, command.count - i);
        await Promise.all(
          Array.from({ length: batch }, () =>
            command.whep ? addWhepReceiver(command.whep) : addJanusReceiver(command.janus ?? ''),
          ),
        );
      }
      process.send?.({ type: 'added', total: receivers.length });
    } else if (command.type === 'report') {
      const all: number[] = [];
      const viewers = receivers.map((r): ViewerReport => {
        const sorted = r.delays.sort((a, b) => a - b);
        for (const d of sorted) all.push(Math.round(d * 10) / 10);
        r.delays = [];
        return {
          packets: r.packets,
          bytes: r.bytes,
          lost: r.lost,
          connectedMs: r.connectedMs,
          firstRtpMs: r.firstRtpMs,
          firstFrameMs: r.firstFrameMs,
          delayP50: quantile(sorted, 0.5),
          delayP99: quantile(sorted, 0.99),
          frames: sorted.length,
        };
      });
      const report: ReceiversReport = { type: 'report', viewers, delays: all };
      process.send?.(report);
    } else if (command.type === 'close') {
      janus?.close();
      for (const r of receivers) r.pc.close();
      setTimeout(() => {
        nodeDataChannel.cleanup();
        process.exit(0);
      }, 300);
    }
  })().catch((error: Error) => process.send?.({ type: 'error', message: error.message }));
});
process.on('disconnect', () => process.exit(0));
