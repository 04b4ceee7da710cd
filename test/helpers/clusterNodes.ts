import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { waitFor } from './processes.ts';

const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
export const CLUSTER_SECRET = 'test-cluster-secret';

/** A Subsecond node as its own process (so a test can SIGKILL it), HTTP and RTMP on free loopback ports. */
export interface ClusterNodeProcess {
  readonly id: string;
  readonly httpUrl: string;
  readonly rtmpUrl: string;
  readonly child: ChildProcess;
  /** The last 20 kB of its output (logs), for assertion messages. */
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** GET on the node's HTTP port, parsed as JSON. */
  json<T = Record<string, unknown>>(path: string): Promise<T>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

export async function startClusterNode(
  id: string,
  redisUrl: string,
  flags: string[] = [],
): Promise<ClusterNodeProcess> {
  const args = [
    '--max-semi-space-size=2',
    CLI,
    'serve',
    '--http.host',
    '127.0.0.1',
    '--http.port',
    '0',
    '--rtmp.host',
    '127.0.0.1',
    '--rtmp.port',
    '0',
    '--webrtc.udpPort',
    '0',
    '--cluster.redis',
    redisUrl,
    '--cluster.secret',
    CLUSTER_SECRET,
    '--cluster.nodeId',
    id,
    '--log.level',
    'info',
    ...flags,
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  child.on('exit', () => running.delete(child));
  let out = '';
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const urls = await waitFor(
    `node ${id} to listen`,
    () => {
      if (child.exitCode !== null) throw new Error(`node ${id} exited at start: ${out}`);
      const http = /dashboard\s+(http:\/\/\S+?)\/\s/.exec(out)?.[1];
      const rtmp = /-f flv (rtmp:\/\/\S+?)\/live\/cam1/.exec(out)?.[1];
      return http && rtmp ? { http, rtmp } : null;
    },
    20_000,
  ).catch((error: unknown) => {
    // A node that never came up must not outlive the test: the file's process would wait on it forever.
    child.kill('SIGKILL');
    throw new Error(`${(error as Error).message}; its output: ${out.slice(-2000)}`);
  });
  if (!urls) {
    child.kill('SIGKILL');
    throw new Error(`node ${id} printed no URLs`);
  }
  return {
    id,
    httpUrl: urls.http,
    rtmpUrl: urls.rtmp,
    child,
    output: () => out,
    kill: (signal = 'SIGKILL') =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill(signal);
      }),
    async json<T>(path: string): Promise<T> {
      const res = await fetch(`${urls.http}${path}`);
      return (await res.json()) as T;
    },
  };
}

export interface ClusterView {
  node: string;
  degraded: boolean;
  nodes: {
    id: string;
    streams: { origin: string[]; relayed: string[] };
    relaysOut: Record<string, string[]>;
  }[];
  relaysIn: { path: string; origin: string; live: boolean }[];
  relaysOut: { path: string; edge: string; bytes: number }[];
}

/**
 * A WebSocket + MSE viewer that stays connected: counts the fragments and init messages it gets (a republish
 * sends a new init), and keeps the first `keep` fragments after the first init for ffprobe.
 */
export class MseViewer {
  readonly ws: WebSocket;
  fragments = 0;
  inits = 0;
  init: Buffer | null = null;
  readonly kept: Buffer[] = [];
  closed = false;
  status = 0;
  #expectInit = false;

  constructor(url: string, keep = 0) {
    this.ws = new WebSocket(url);
    this.ws.on('unexpected-response', (_req, res) => {
      this.status = res.statusCode ?? 0;
      res.resume();
    });
    this.ws.on('message', (data: Buffer, isBinary) => {
      if (!isBinary) {
        if ((JSON.parse(data.toString()) as { type?: string }).type === 'init') {
          this.inits++;
          this.#expectInit = true;
        }
        return;
      }
      if (this.#expectInit) {
        this.#expectInit = false;
        this.init ??= data;
        return;
      }
      this.fragments++;
      if (this.kept.length < keep && this.inits === 1) this.kept.push(data);
    });
    this.ws.on('error', () => {});
    this.ws.on('close', () => {
      this.closed = true;
    });
  }

  /** Resolves once `n` more fragments arrived. */
  async advances(what: string, n = 30, timeoutMs = 10_000): Promise<void> {
    const start = this.fragments;
    await waitFor(what, () => this.fragments >= start + n, timeoutMs);
  }

  close(): void {
    this.ws.close(1000);
  }
}
