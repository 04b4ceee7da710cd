import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A real redis-server (Debian's package; scripts/setup installs it) in its own folder on a free loopback port. */
export interface TestRedis {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  /** SIGKILLs the server (no save); `start()` brings it back on the same port and folder. */
  kill(): Promise<void>;
  start(): Promise<void>;
  /**
   * SIGSTOPs the server: its connections stay open and nothing answers, as a Redis that is stuck (swapping, a
   * long script, a frozen VM); `resume()` SIGCONTs it. Also resumed at exit, so it is never left frozen.
   */
  pause(): void;
  resume(): void;
  /** Kills it and removes its folder. */
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
    socket.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

async function untilPing(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server exited at start: ${log()}`);
    if (await answersPing(port)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server on port ${port} did not answer PING within 10 s: ${log()}`);
}

function spawnRedis(args: string[]): { child: ChildProcess; log: () => string } {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { child, log: () => out };
}

/**
 * Starts redis-server. `persistent: true` keeps data across kill/start (appendonly, fsync always), for a test
 * that restarts Redis and expects what it had; by default nothing is saved, as a Redis without persistence.
 * `replicaOf`: a replica of that server.
 */
export async function startRedis(
  options: { persistent?: boolean; replicaOf?: TestRedis } = {},
): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'subsecond-redis-'));
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', ''];
  args.push('--appendonly', options.persistent ? 'yes' : 'no');
  // A replica of another test Redis (for Sentinel failover); diskless so it needs no RDB file on either side.
  if (options.replicaOf) {
    args.push(
      '--replicaof',
      '127.0.0.1',
      String(options.replicaOf.port),
      '--repl-diskless-load',
      'on-empty-db',
    );
  }
  if (options.persistent) args.push('--appendfsync', 'always');
  let current: ReturnType<typeof spawnRedis> | null = null;
  const start = async () => {
    current = spawnRedis(args);
    await untilPing(port, current.child, current.log);
  };
  const kill = async () => {
    const c = current?.child;
    current = null;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  };
  process.on('exit', () => {
    current?.child.kill('SIGCONT');
    current?.child.kill('SIGKILL');
  });
  await start();
  const signal = (name: NodeJS.Signals) => {
    const c = current?.child;
    if (!c || c.exitCode !== null) throw new Error(`redis-server on port ${port} is not running`);
    c.kill(name);
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    kill,
    start,
    pause: () => signal('SIGSTOP'),
    resume: () => signal('SIGCONT'),
    async stop() {
      current?.child.kill('SIGCONT');
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A Sentinel watching `master` under the name `masterName`; the URL for cluster.redis is `sentinelUrl`. */
export async function startSentinel(
  master: TestRedis,
  masterName = 'subsecond',
): Promise<{ port: number; sentinelUrl: string; stop(): Promise<void> }> {
  const port = await freePort();
  const conf = join(master.dir, `sentinel-${port}.conf`);
  writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${master.dir}`,
      `sentinel monitor ${masterName} 127.0.0.1 ${master.port} 1`,
      `sentinel down-after-milliseconds ${masterName} 1000`,
      `sentinel failover-timeout ${masterName} 2000`,
      '',
    ].join('\n'),
  );
  const { child, log } = spawnRedis([conf, '--sentinel']);
  process.on('exit', () => child.kill('SIGKILL'));
  await untilPing(port, child, log);
  return {
    port,
    sentinelUrl: `redis+sentinel://127.0.0.1:${port}/${masterName}`,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}
