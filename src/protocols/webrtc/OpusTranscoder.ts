import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import type { Logger } from '../../core/log.ts';

/*
 * AAC cannot travel over WebRTC, so an AAC stream with WHEP viewers gets an Opus rendition from an ffmpeg
 * process: AAC access units go in on stdin as ADTS (ISO/IEC 14496-3 §1.A.2), Opus comes back as RTP
 * (RFC 7587) on a loopback UDP socket, one datagram per packet. It runs only while WHEP viewers watch.
 */

const SFI_ESCAPE = 15;

/** The ADTS header fields of an AudioSpecificConfig, or why it cannot be carried in ADTS. */
export function adtsParameters(asc: Uint8Array): { profile: number; sfi: number; channels: number } | string {
  if (asc.length < 2) return `AudioSpecificConfig of ${asc.length} bytes is too short`;
  const objectType = asc[0] >> 3;
  const sfi = ((asc[0] & 0x07) << 1) | (asc[1] >> 7);
  const channels = (asc[1] >> 3) & 0x0f;
  if (sfi === SFI_ESCAPE) return 'an explicit AAC sample rate cannot be carried in ADTS';
  if (channels === 0 || channels > 7)
    return `AAC channel configuration ${channels} cannot be carried in ADTS`;
  // HE-AAC (5) and HE-AACv2 (29) are LC cores with SBR/PS, which the decoder finds implicitly.
  const core = objectType === 5 || objectType === 29 ? 2 : objectType;
  if (core < 1 || core > 4) return `AAC object type ${objectType} cannot be carried in ADTS`;
  return { profile: core - 1, sfi, channels };
}

/** A 7-byte ADTS header without CRC for a raw access unit of `payloadLength` bytes. */
export function adtsHeader(
  p: { profile: number; sfi: number; channels: number },
  payloadLength: number,
): Buffer {
  const length = payloadLength + 7;
  const h = Buffer.allocUnsafe(7);
  h[0] = 0xff;
  h[1] = 0xf1; // MPEG-4, layer 0, protection_absent
  h[2] = (p.profile << 6) | (p.sfi << 2) | (p.channels >> 2);
  h[3] = ((p.channels & 3) << 6) | (length >> 11);
  h[4] = (length >> 3) & 0xff;
  h[5] = ((length & 7) << 5) | 0x1f; // buffer fullness 0x7FF: variable bitrate
  h[6] = 0xfc;
  return h;
}

export interface OpusTranscoderOptions {
  readonly asc: Uint8Array;
  readonly bitrate: number;
  readonly ffmpegPath: string;
  readonly log: Logger;
  /** One Opus RTP packet from ffmpeg. */
  readonly onPacket: (packet: Buffer) => void;
  /** ffmpeg could not start or died: why, for the stream's warnings. */
  readonly onFailure: (reason: string) => void;
}

export class OpusTranscoder {
  readonly #options: OpusTranscoderOptions;
  readonly #adts: { profile: number; sfi: number; channels: number };
  #socket: Socket | null = null;
  #ffmpeg: ChildProcess | null = null;
  #stopped = false;
  #stderr = '';

  /** Throws when the AAC configuration cannot be carried in ADTS (the stream then plays without audio). */
  constructor(options: OpusTranscoderOptions) {
    this.#options = options;
    const adts = adtsParameters(options.asc);
    if (typeof adts === 'string') throw new Error(adts);
    this.#adts = adts;
  }

  get running(): boolean {
    return this.#ffmpeg !== null && !this.#stopped;
  }

  start(): void {
    const socket = createSocket('udp4');
    this.#socket = socket;
    socket.on('message', (packet) => {
      if (!this.#stopped && packet.length > 12) this.#options.onPacket(packet);
    });
    socket.on('error', (err) => this.#fail(`transcoder socket: ${err.message}`));
    socket.bind(0, '127.0.0.1', () => {
      if (this.#stopped) return;
      const { port } = socket.address();
      const args = [
        '-hide_banner',
        '-loglevel',
        'error',
        '-fflags',
        'nobuffer',
        '-probesize',
        '32',
        '-analyzeduration',
        '0',
        '-f',
        'aac',
        '-i',
        'pipe:0',
        '-vn',
        '-c:a',
        'libopus',
        '-b:a',
        String(this.#options.bitrate),
        '-application',
        'lowdelay',
        '-frame_duration',
        '20',
        '-ar',
        '48000',
        '-ac',
        '2',
        '-f',
        'rtp',
        '-payload_type',
        '111',
        `rtp://127.0.0.1:${port}?pkt_size=1200`,
      ];
      const ffmpeg = spawn(this.#options.ffmpegPath, args, { stdio: ['pipe', 'ignore', 'pipe'] });
      this.#ffmpeg = ffmpeg;
      ffmpeg.stderr?.on('data', (d: Buffer) => {
        this.#stderr = (this.#stderr + d.toString()).slice(-2000);
      });
      ffmpeg.stdin?.on('error', () => {
        // ffmpeg exited; the exit handler reports why
      });
      ffmpeg.on('error', (err) => this.#fail(`cannot run ${this.#options.ffmpegPath}: ${err.message}`));
      ffmpeg.on('exit', (code, signal) => {
        if (this.#stopped) return;
        this.#fail(
          `ffmpeg exited (${signal ?? `code ${code}`}): ${this.#stderr.trim().split('\n').pop() ?? ''}`,
        );
      });
    });
  }

  /** One raw AAC access unit (Frame.data). Dropped when ffmpeg is not keeping up. */
  push(accessUnit: Uint8Array): void {
    const stdin = this.#ffmpeg?.stdin;
    if (!stdin || this.#stopped || !stdin.writable) return;
    if (stdin.writableLength > 256 * 1024) return;
    stdin.cork();
    stdin.write(adtsHeader(this.#adts, accessUnit.length));
    stdin.write(accessUnit);
    stdin.uncork();
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#ffmpeg?.stdin?.destroy();
    this.#ffmpeg?.kill('SIGKILL');
    this.#ffmpeg = null;
    this.#socket?.close();
    this.#socket = null;
  }

  #fail(reason: string): void {
    if (this.#stopped) return;
    this.stop();
    this.#options.log.warn({ reason }, 'Opus transcoder failed');
    this.#options.onFailure(reason);
  }
}
