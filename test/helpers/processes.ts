import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const running = new Set<ChildProcess>();

/** Kills every process started through this module (call from `after` hooks; also runs at exit). */
export function killAll(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}
process.on('exit', killAll);

export interface TestSourceOptions {
  size?: string;
  rate?: number;
  gop?: number;
  /** Bounded so a leaked publisher dies by itself. */
  seconds?: number;
  audio?: boolean;
  extra?: string[];
}

/** ffmpeg publishing testsrc2 (H.264) and a sine (AAC) in real time to an RTMP URL. */
export function publishTestSource(url: string, options: TestSourceOptions = {}): ChildProcess {
  const { size = '1280x720', rate = 30, gop = 30, seconds = 60, audio = true, extra = [] } = options;
  const args = [
    '-hide_banner',
    '-loglevel',
    'error',
    '-re',
    '-f',
    'lavfi',
    '-i',
    `testsrc2=size=${size}:rate=${rate}`,
  ];
  if (audio) args.push('-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000');
  args.push('-t', String(seconds), '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency');
  args.push('-g', String(gop), '-pix_fmt', 'yuv420p');
  if (audio) args.push('-c:a', 'aac', '-b:a', '96k');
  args.push(...extra, '-f', 'flv', url);
  const child = spawn('ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  (child as ChildProcess & { stderrText: () => string }).stderrText = () => stderr;
  running.add(child);
  child.on('exit', () => running.delete(child));
  return child;
}

export function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** Polls `check` until it returns a truthy value; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface ProbedStream {
  codec_type: string;
  codec_name: string;
  width?: number;
  height?: number;
  sample_rate?: string;
  channels?: number;
  nb_read_frames?: string;
}

/** ffprobe's view of a file: streams with decoded frame counts. */
export async function ffprobe(file: string): Promise<ProbedStream[]> {
  const { stdout } = await execFileAsync('ffprobe', [
    '-v',
    'error',
    '-count_frames',
    '-show_streams',
    '-of',
    'json',
    file,
  ]);
  return (JSON.parse(stdout) as { streams: ProbedStream[] }).streams;
}
