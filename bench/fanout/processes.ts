import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

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
