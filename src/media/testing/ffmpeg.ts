/**
 * Test-only helpers around the system ffmpeg/ffprobe (an external oracle for our parsers and muxer). Not
 * imported by production code.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MAX_BUFFER = 256 * 1024 * 1024;

/** Runs ffmpeg and returns what it wrote to stdout (use `-` as the output). */
export function ffmpeg(args: readonly string[]): Uint8Array {
  const out = execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', ...args], {
    maxBuffer: MAX_BUFFER,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Runs ffprobe with JSON output and parses it. */
export function ffprobe(args: readonly string[]): FfprobeResult {
  const out = execFileSync('ffprobe', ['-v', 'error', '-of', 'json', ...args], {
    maxBuffer: MAX_BUFFER,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return JSON.parse(out) as FfprobeResult;
}

export interface FfprobeStream {
  index: number;
  codec_name: string;
  codec_type: string;
  profile?: string;
  level?: number;
  width?: number;
  height?: number;
  pix_fmt?: string;
  sample_rate?: string;
  channels?: number;
  r_frame_rate?: string;
  nb_read_frames?: string;
  nb_read_packets?: string;
  extradata?: string;
}

export interface FfprobePacket {
  stream_index: number;
  pts: number;
  dts: number;
  duration?: number;
  size: string;
  flags: string;
}

export interface FfprobeResult {
  streams?: FfprobeStream[];
  packets?: FfprobePacket[];
}

/** A temporary directory removed after `fn`, for files ffmpeg or ffprobe must read or write. */
export function withTempDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'subsecond-media-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface H264EncodeOptions {
  width: number;
  height: number;
  /** Frame rate as ffmpeg takes it, e.g. `30` or `30000/1001`. */
  rate?: string;
  profile?: string;
  pixFmt?: string;
  frames?: number;
  /** Extra ffmpeg output options placed before the output. */
  extra?: readonly string[];
}

/** An Annex B H.264 elementary stream of a test pattern, from libx264. */
export function encodeH264(o: H264EncodeOptions): Uint8Array {
  const args = [
    '-f',
    'lavfi',
    '-i',
    `testsrc2=size=${o.width}x${o.height}:rate=${o.rate ?? '30'}`,
    '-frames:v',
    String(o.frames ?? 1),
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    '-pix_fmt',
    o.pixFmt ?? 'yuv420p',
  ];
  if (o.profile) args.push('-profile:v', o.profile);
  args.push(...(o.extra ?? []), '-f', 'h264', '-');
  return ffmpeg(args);
}

/** Concatenates into a plain Uint8Array (not a Buffer, so deepStrictEqual compares like with like). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
