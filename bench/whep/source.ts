/**
 * The WHEP benchmark's video source: a real libx264 encode (1.5 Mbit/s, 30 fps, GOP 1 s, constrained
 * baseline, so no B-frames), encoded once to a clip and then sent in a loop as RTP, paced at 30 frames per
 * second, each frame preceded by a send-time stamp (stamp.ts). Sent either as a WHIP publisher (a
 * node-datachannel peer, answering PLI/FIR with the clip's next IDR as an encoder would) or as plain RTP to a
 * UDP port (Janus's streaming plugin): the same packets to both servers.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodeDataChannel, { type PeerConnection, type Track } from 'node-datachannel';
import { nalusToAvcc, splitAnnexB } from '../../src/media/nalu.ts';
import { H264Packetizer } from '../../src/media/rtp/h264.ts';
import { writeRtpPacket } from '../../src/media/rtp/packet.ts';
import { nowMs, stampNal } from './stamp.ts';

export const FPS = 30;
export const VIDEO_PT = 96;
export const H264_FMTP = 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f';

/** The ffmpeg arguments that make the clip (recorded in the results). */
export function clipArgs(seconds: number, file: string): string[] {
  return [
    ...['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi'],
    // Noise keeps the encoder at its 1.5 Mbit/s cap with real picture data.
    ...['-i', `testsrc2=size=640x360:rate=${FPS},noise=alls=40:allf=t+u`, '-t', String(seconds)],
    ...['-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-profile:v', 'baseline'],
    ...['-g', String(FPS), '-pix_fmt', 'yuv420p', '-b:v', '1500k', '-maxrate', '1500k', '-bufsize', '750k'],
    // An access unit delimiter before each frame marks where frames begin in the Annex B stream.
    ...['-bsf:v', 'h264_metadata=aud=insert', '-f', 'h264', file],
  ];
}

export interface Clip {
  /** RTP payloads of each frame, in order; the stamp goes in front at send time. */
  readonly frames: readonly (readonly Uint8Array[])[];
  readonly keyframes: readonly boolean[];
  readonly bitrate: number;
  readonly args: readonly string[];
}

export function encodeClip(seconds: number): Clip {
  const dir = mkdtempSync(join(tmpdir(), 'whep-bench-'));
  const file = join(dir, 'clip.h264');
  const args = clipArgs(seconds, file);
  try {
    execFileSync('ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
    const data = readFileSync(file);
    const units: Uint8Array[][] = [];
    for (const nal of splitAnnexB(data)) {
      const type = nal[0] & 0x1f;
      if (type === 9) units.push([]);
      else if (units.length > 0 && type !== 12) units.at(-1)?.push(nal);
    }
    const packetizer = new H264Packetizer();
    const frames: Uint8Array[][] = [];
    const keyframes: boolean[] = [];
    let bytes = 0;
    for (const nalus of units) {
      if (nalus.length === 0) continue;
      const keyframe = nalus.some((n) => (n[0] & 0x1f) === 5);
      if (keyframe && !nalus.some((n) => (n[0] & 0x1f) === 7))
        throw new Error('clip: an IDR without SPS in front of it (x264 repeats headers for raw H.264)');
      const { payloads } = packetizer.packetize(nalusToAvcc(nalus), keyframe);
      frames.push(payloads.map((p) => p.slice()));
      keyframes.push(keyframe);
      for (const p of payloads) bytes += p.length;
    }
    if (!keyframes[0]) throw new Error('clip does not start with an IDR');
    return { frames, keyframes, bitrate: (bytes * 8 * FPS) / frames.length, args };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Sends the clip in a loop at 30 fps through `send`, one RTP packet at a time. */
export class ClipSender {
  readonly #clip: Clip;
  readonly #send: (packet: Buffer) => void;
  readonly #ssrc = (Math.random() * 0xffffffff) >>> 0;
  #seq = (Math.random() * 0xffff) & 0xffff;
  readonly #ts0 = (Math.random() * 0xffffffff) >>> 0;
  #frame = 0;
  #index = 0;
  #startedAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #keyframeWanted = false;
  keyframeRequests = 0;
  packetsSent = 0;
  /** Largest lateness of a frame's send against its schedule, ms: how steady the source itself was. */
  #maxLateMs = 0;

  constructor(clip: Clip, send: (packet: Buffer) => void) {
    this.#clip = clip;
    this.#send = send;
  }

  /** An encoder answers PLI/FIR with an IDR: the next frame sent is the clip's next keyframe. */
  requestKeyframe(): void {
    this.#keyframeWanted = true;
    this.keyframeRequests++;
  }

  /** The largest lateness since the previous call. */
  takeMaxLateMs(): number {
    const late = this.#maxLateMs;
    this.#maxLateMs = 0;
    return late;
  }

  start(): void {
    this.#startedAt = performance.now();
    this.#tick();
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #tick = (): void => {
    const due = this.#startedAt + (this.#frame * 1000) / FPS;
    this.#maxLateMs = Math.max(this.#maxLateMs, performance.now() - due);
    const clip = this.#clip;
    if (this.#keyframeWanted) {
      this.#keyframeWanted = false;
      while (!clip.keyframes[this.#index]) this.#index = (this.#index + 1) % clip.frames.length;
    }
    const payloads = clip.frames[this.#index];
    const timestamp = (this.#ts0 + this.#frame * (90_000 / FPS)) >>> 0;
    const header = { payloadType: VIDEO_PT, ssrc: this.#ssrc, timestamp, sequenceNumber: 0, marker: false };
    header.sequenceNumber = this.#nextSeq();
    this.#send(Buffer.from(writeRtpPacket(header, stampNal(nowMs()))));
    for (let i = 0; i < payloads.length; i++) {
      header.sequenceNumber = this.#nextSeq();
      header.marker = i === payloads.length - 1;
      this.#send(Buffer.from(writeRtpPacket(header, payloads[i])));
    }
    this.packetsSent += payloads.length + 1;
    this.#index = (this.#index + 1) % clip.frames.length;
    this.#frame++;
    const next = this.#startedAt + (this.#frame * 1000) / FPS;
    this.#timer = setTimeout(this.#tick, Math.max(0, next - performance.now()));
  };

  #nextSeq(): number {
    const s = this.#seq;
    this.#seq = (s + 1) & 0xffff;
    return s;
  }
}

/** True when a compound RTCP packet holds a PLI or FIR (RFC 4585 §6.3.1, RFC 5104 §4.3.1). */
function asksForKeyframe(m: Buffer): boolean {
  let p = 0;
  while (p + 4 <= m.length) {
    const fmt = m[p] & 0x1f;
    if (m[p + 1] === 206 && (fmt === 1 || fmt === 4)) return true;
    p += (m.readUInt16BE(p + 2) + 1) * 4;
  }
  return false;
}

/** A WHIP publisher sending the clip: resolves once the track is open and frames flow. */
export class WhipClipPublisher {
  readonly sender: ClipSender;
  readonly #pc: PeerConnection;
  /** Held: node-datachannel closes a track whose JS wrapper is garbage-collected. */
  readonly #track: Track;
  #location = '';

  constructor(clip: Clip, bindAddress: string | undefined) {
    this.#pc = new nodeDataChannel.PeerConnection('bench-source', { iceServers: [], bindAddress });
    const video = new nodeDataChannel.Video('0', 'SendOnly');
    video.addH264Codec(VIDEO_PT, H264_FMTP);
    this.#track = this.#pc.addTrack(video);
    this.sender = new ClipSender(clip, (packet) => {
      if (this.#track.isOpen()) this.#track.sendMessageBinary(packet);
    });
    this.#track.onMessage((m) => {
      if (m.length >= 8 && m[1] >= 192 && m[1] <= 223 && asksForKeyframe(m)) this.sender.requestKeyframe();
    });
  }

  async publish(url: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error('source: ICE gathering did not complete in 5 s')),
        5000,
      );
      this.#pc.onGatheringStateChange((state) => {
        if (state === 'complete') {
          clearTimeout(timer);
          resolve();
        }
      });
      this.#pc.setLocalDescription();
    });
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp' },
      body: this.#pc.localDescription()?.sdp ?? '',
    });
    const answer = await response.text();
    if (response.status !== 201) throw new Error(`WHIP answered ${response.status}: ${answer}`);
    this.#location = new URL(response.headers.get('location') ?? '', url).href;
    const open = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('source: WHIP track did not open in 10 s')), 10_000);
      this.#track.onOpen(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.#pc.setRemoteDescription(answer, 'answer');
    await open;
    this.sender.start();
  }

  async close(): Promise<void> {
    this.sender.stop();
    if (this.#location) await fetch(this.#location, { method: 'DELETE' }).catch(() => undefined);
    this.#pc.close();
  }
}
