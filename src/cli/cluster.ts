import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const USAGE = `subsecond cluster [--nodes N] [--base-port P] [--redis-port R]

Starts a local redis-server in its own folder and N nodes (default 3) on loopback: node i serves HTTP on
P+i (default 8080), RTMP on 1935+i and WebRTC UDP on 8189+10*i. Ctrl-C stops everything.`;

function flag(args: string[], name: string, def: number): number {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(args[i + 1]);
  if (!Number.isInteger(v) || v <= 0)
    throw new Error(`--${name} needs a positive integer, got "${args[i + 1] ?? ''}"`);
  return v;
}

/** `subsecond cluster`: a whole cluster on this machine, for trying it out. */
export async function runLocalCluster(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const nodes = flag(args, 'nodes', 3);
  const basePort = flag(args, 'base-port', 8080);
  const redisPort = flag(args, 'redis-port', 6390);
  if (nodes > 16) throw new Error(`--nodes ${nodes}: at most 16 on one machine`);
  const dir = mkdtempSync(join(tmpdir(), 'subsecond-cluster-redis-'));
  const children: ChildProcess[] = [];
  const stopAll = () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  };
  const redis = spawn(
    'redis-server',
    ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  redis.on('error', (err) => {
    process.stderr.write(
      `subsecond cluster: cannot start redis-server (${err.message}); install it (scripts/setup)\n`,
    );
  });
  children.push(redis);
  await new Promise((r) => setTimeout(r, 300));
  if (redis.exitCode !== null) {
    rmSync(dir, { recursive: true, force: true });
    process.stderr.write(
      `subsecond cluster: redis-server exited (is port ${redisPort} taken? try --redis-port)\n`,
    );
    return 1;
  }
  const secret = randomBytes(16).toString('hex');
  const main = fileURLToPath(new URL('./main.ts', import.meta.url));
  const lines: string[] = [];
  for (let i = 0; i < nodes; i++) {
    const id = `node-${String.fromCharCode(97 + i)}`;
    const child = spawn(
      process.execPath,
      [
        main,
        'serve',
        ...['--http.host', '127.0.0.1', '--http.port', String(basePort + i)],
        ...['--rtmp.host', '127.0.0.1', '--rtmp.port', String(1935 + i)],
        ...['--webrtc.udpPort', String(8189 + 10 * i)],
        ...['--cluster.redis', `redis://127.0.0.1:${redisPort}`, '--cluster.secret', secret],
        ...['--cluster.nodeId', id, '--log.level', 'warn'],
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    children.push(child);
    child.on('exit', (code, signal) => {
      if (code !== 0 && signal === null)
        process.stderr.write(`subsecond cluster: ${id} exited with ${code}\n`);
    });
    lines.push(
      `  ${id}  dashboard http://127.0.0.1:${basePort + i}/   publish rtmp://127.0.0.1:${1935 + i}/live/cam1`,
    );
  }
  process.stdout.write(
    `\n  Subsecond cluster: ${nodes} nodes, Redis on 127.0.0.1:${redisPort} (folder ${dir})\n${lines.join('\n')}\n  publish to any node, watch from any node; Ctrl-C stops everything\n\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = () => {
      stopAll();
      setTimeout(resolve, 500);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  // Nodes first (they release their claims), Redis last.
  redis.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
  return 0;
}
