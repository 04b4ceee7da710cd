import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

/** Kernel clock ticks per second for /proc/PID/stat times (`getconf CLK_TCK`; 100 on Linux x86 and arm64). */
const CLK_TCK = 100;

/** CPU time and resident memory of one process, read from /proc. */
export interface ProcSample {
  /** performance.now() when read. */
  readonly at: number;
  /** utime + stime, seconds. */
  readonly cpuSeconds: number;
  /** stime alone: the kernel's share (on loopback that includes delivering to the receiving socket). */
  readonly systemSeconds: number;
  readonly rssBytes: number;
}

export function readProc(pid: number): ProcSample {
  const at = performance.now();
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  // proc(5): the command name (field 2) is in parentheses and may hold spaces; count fields after it.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  const rss = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!rss) throw new Error(`no VmRSS in /proc/${pid}/status: is the process still running?`);
  return {
    at,
    cpuSeconds: (utime + stime) / CLK_TCK,
    systemSeconds: stime / CLK_TCK,
    rssBytes: Number(rss[1]) * 1024,
  };
}

/** CPU used between two samples, in % of one core. */
export function cpuPercent(from: ProcSample, to: ProcSample): number {
  const seconds = (to.at - from.at) / 1000;
  return seconds > 0 ? ((to.cpuSeconds - from.cpuSeconds) / seconds) * 100 : 0;
}

/** Kernel (system) CPU between two samples, in % of one core. */
export function systemPercent(from: ProcSample, to: ProcSample): number {
  const seconds = (to.at - from.at) / 1000;
  return seconds > 0 ? ((to.systemSeconds - from.systemSeconds) / seconds) * 100 : 0;
}

/** A free TCP port on 127.0.0.1 (bound and released; the window for a race is tiny on a bench machine). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}

/**
 * `--pin` for a benchmark: the server gets CPU 0, everything else the other CPUs (`pinCpus().others`). A
 * one-CPU machine is refused rather than silently measured unpinned.
 */
export function pinCpus(): { server: string; others: string } {
  const cpus = availableParallelism();
  if (cpus < 2)
    throw new Error(`--pin needs at least 2 CPUs (the server takes CPU 0); this machine has ${cpus}`);
  return { server: '0', others: `1-${cpus - 1}` };
}

/** `command args` on `cpus` through taskset(1), which execs it (the pid stays the command's); as is without. */
export function onCpus(cpus: string | undefined, command: string, args: string[]): [string, string[]] {
  return cpus === undefined ? [command, args] : ['taskset', ['-c', cpus, command, ...args]];
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves with `promise`, or rejects saying what took too long. */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** One child this benchmark started, with the tail of its output kept for error messages. */
export class Child {
  readonly name: string;
  readonly process: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<number | null>;
  #tail: string[] = [];

  constructor(name: string, proc: ChildProcess) {
    this.name = name;
    this.process = proc;
    // A spawn failure (ENOENT…) arrives as an 'error' event; keep it for the message instead of crashing.
    proc.on('error', (err) => this.#tail.push(`${name}: ${err.message}`));
    if (proc.pid === undefined) throw new Error(`${name} did not start: is it installed and on PATH?`);
    this.pid = proc.pid;
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) if (line.trim()) this.#tail.push(line);
      if (this.#tail.length > 40) this.#tail.splice(0, this.#tail.length - 40);
    };
    proc.stderr?.on('data', keep);
  }

  get running(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  /** The last lines the child wrote to stderr. */
  get tail(): string {
    return this.#tail.join('\n');
  }

  /** SIGTERM, then SIGKILL if it is still there after `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.running) return;
    this.process.kill('SIGTERM');
    const timer = setTimeout(() => this.process.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/**
 * Every process the benchmark starts, so that an error, Ctrl-C or the end of the run stops them all, each by
 * its own pid.
 */
export class Children {
  readonly #all = new Set<Child>();

  spawn(name: string, command: string, args: string[], options: SpawnOptions = {}): Child {
    const child = new Child(name, spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options }));
    this.#all.add(child);
    child.exited.then(() => this.#all.delete(child));
    return child;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.#all].map((c) => c.stop()));
  }

  /** Synchronous last resort, for process 'exit'. */
  killAll(): void {
    for (const child of this.#all) if (child.running) child.process.kill('SIGKILL');
  }
}

/** Busy and total jiffies of the whole machine, from the first line of /proc/stat. */
export interface MachineSample {
  readonly busy: number;
  readonly total: number;
}

export function readMachine(): MachineSample {
  const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0];
  // proc(5): user nice system idle iowait irq softirq steal …
  const t = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const idle = t[3] + t[4];
  const total = t.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** CPU the machine spent between two samples, in % of one core (so 200 % is both cores of a 2-core machine). */
export function machinePercent(from: MachineSample, to: MachineSample, cores: number): number {
  const total = to.total - from.total;
  return total > 0 ? ((to.busy - from.busy) / total) * 100 * cores : 0;
}

/**
 * Sends `message` to a child over IPC and resolves with its first reply of `type`; rejects on a reply
 * `{ type: 'error', message }`, on the child's exit, or after `ms`.
 */
export function ask<T>(child: Child | ChildProcess, message: object, type: string, ms = 180_000): Promise<T> {
  const proc = child instanceof Child ? child.process : child;
  const name = child instanceof Child ? child.name : `child ${proc.pid}`;
  return within(
    ms,
    `${name} answering ${JSON.stringify(message).slice(0, 40)}`,
    new Promise<T>((resolve, reject) => {
      const onMessage = (reply: { type?: string; message?: string }) => {
        if (reply?.type !== type && reply?.type !== 'error') return;
        cleanup();
        if (reply.type === 'error') reject(new Error(`${name}: ${reply.message}`));
        else resolve(reply as T);
      };
      const onExit = () => {
        cleanup();
        const tail = child instanceof Child ? `:\n${child.tail}` : '';
        reject(new Error(`${name} exited while asked for "${type}"${tail}`));
      };
      const cleanup = () => {
        proc.off('message', onMessage);
        proc.off('exit', onExit);
      };
      proc.on('message', onMessage);
      proc.once('exit', onExit);
      proc.send(message);
    }),
  );
}

/**
 * Resolves once `check` is true (a throw counts as false), polling every 100 ms; rejects after `ms`, or as
 * soon as `child` (the process that should bring it about) has exited, with the tail of its output.
 */
export async function waitUntil(
  what: string,
  ms: number,
  check: () => boolean | Promise<boolean>,
  child?: Child,
): Promise<void> {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    if (child && !child.running) throw new Error(`${child.name} exited before ${what}:\n${child.tail}`);
    if (
      await Promise.resolve()
        .then(check)
        .catch(() => false)
    )
      return;
    await sleep(100);
  }
  throw new Error(`${what}: not within ${ms} ms${child ? `:\n${child.tail}` : ''}`);
}

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

const REPO = join(import.meta.dirname, '../..');

export interface SubsecondProcess {
  readonly child: Child;
  /** http://127.0.0.1:PORT */
  readonly base: string;
  readonly rtmpPort: number;
  readonly udpPort: number;
}

/**
 * `subsecond serve` from this checkout with bench/fanout/probe.ts preloaded, HTTP, RTMP and WebRTC UDP on free
 * loopback ports, `--log.level warn` and `args` after those; resolves once /healthz answers.
 */
export async function startSubsecond(
  children: Children,
  args: string[],
  stdio: SpawnOptions['stdio'] = ['ignore', 'pipe', 'pipe', 'ipc'],
): Promise<SubsecondProcess> {
  const http = await freePort();
  const rtmpPort = await freePort();
  const udpPort = await freePort();
  const child = children.spawn(
    'subsecond',
    process.execPath,
    [
      ...['--import', './bench/fanout/probe.ts', 'src/cli/main.ts', 'serve'],
      ...['--http.host', '127.0.0.1', '--http.port', String(http)],
      ...['--rtmp.host', '127.0.0.1', '--rtmp.port', String(rtmpPort)],
      ...['--webrtc.udpPort', String(udpPort), '--log.level', 'warn'],
      ...args,
    ],
    { cwd: REPO, stdio },
  );
  // Drained: a pipe nobody reads fills at 64 KiB and then blocks the writer (stdout to a pipe is synchronous).
  child.process.stdout?.resume();
  const base = `http://127.0.0.1:${http}`;
  await waitUntil('Subsecond /healthz', 15_000, async () => (await fetch(`${base}/healthz`)).ok, child);
  return { child, base, rtmpPort, udpPort };
}

/** Resolves once Subsecond's stream `path` has its tracks (the source is live). */
export function waitForTracks(base: string, path: string, ms = 15_000): Promise<void> {
  return waitUntil(`${path} to go live`, ms, async () => {
    const r = await fetch(`${base}/api/v1/streams/${path}`);
    return r.ok && ((await r.json()) as { tracks: unknown[] }).tracks.length > 0;
  });
}

/**
 * ffmpeg arguments for the WHEP benches' RTMP source: a noisy 640×360 test pattern in real time, libx264 at
 * 1.5 Mbit/s, 30 fps, a keyframe a second, no audio, for `maxSeconds` at most.
 */
export function x264RtmpSourceArgs(rtmpUrl: string, maxSeconds?: number): string[] {
  return [
    ...['-hide_banner', '-loglevel', 'error', '-re', '-f', 'lavfi'],
    ...['-i', 'testsrc2=size=640x360:rate=30,noise=alls=40:allf=t+u'],
    ...(maxSeconds === undefined ? [] : ['-t', String(maxSeconds)]),
    ...['-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-g', '30', '-pix_fmt', 'yuv420p'],
    ...['-b:v', '1500k', '-maxrate', '1500k', '-bufsize', '750k', '-an', '-f', 'flv'],
    rtmpUrl,
  ];
}
