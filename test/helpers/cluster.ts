import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, type Server, Socket } from 'node:net';
import { join } from 'node:path';
import type { ConfigInput } from '../../src/config/schema.ts';
import type { RunningServer } from '../../src/server.ts';
import { startMessagingServer } from './messaging.ts';
import { waitFor } from './processes.ts';
import { freePort } from './redis.ts';

const root = join(import.meta.dirname, '../..');

/** What every node of a test cluster shares: the Redis, the relay secret, the anonymous-identity secret. */
function clusterSettings(redisUrl: string) {
  return {
    cluster: { redis: redisUrl, secret: 'test-cluster-secret' },
    identitySecret: 'test-identity-secret',
  };
}

/** A messaging node in this process on the cluster's Redis (startMessagingServer with cluster.redis). */
export function startClusterNode(
  redisUrl: string,
  messaging: ConfigInput['messaging'] = {},
  cluster: ConfigInput['cluster'] = {},
): Promise<RunningServer> {
  const shared = clusterSettings(redisUrl);
  return startMessagingServer({
    messaging: { identitySecret: shared.identitySecret, ...messaging },
    cluster: { ...shared.cluster, ...cluster },
  });
}

/** A node in a child process (the `subsecond serve` CLI), so a test can SIGKILL it. */
export interface ChildNode {
  readonly httpUrl: string;
  readonly port: number;
  readonly child: ChildProcess;
  kill(): Promise<void>;
}

export async function spawnClusterNode(
  redisUrl: string,
  messaging: Record<string, string | number> = {},
): Promise<ChildNode> {
  const port = await freePort();
  const shared = clusterSettings(redisUrl);
  const flags: Record<string, string | number> = {
    'http.host': '127.0.0.1',
    'http.port': port,
    'rtmp.enabled': 'false',
    'webrtc.enabled': 'false',
    'log.level': 'warn',
    'cluster.redis': shared.cluster.redis,
    'cluster.secret': shared.cluster.secret,
    'messaging.identitySecret': shared.identitySecret,
    'messaging.publishRatePerSecond': 10_000,
    'messaging.publishBurst': 10_000,
    ...Object.fromEntries(Object.entries(messaging).map(([k, v]) => [`messaging.${k}`, v])),
  };
  const args = ['src/cli/main.ts', 'serve'];
  for (const [k, v] of Object.entries(flags)) args.push(`--${k}`, String(v));
  const child = spawn(join(root, 'node_modules/.bin/node'), args, {
    cwd: root,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  process.on('exit', () => child.kill('SIGKILL'));
  const httpUrl = `http://127.0.0.1:${port}`;
  await waitFor(
    `the child node on port ${port} to answer (${stderr})`,
    async () => {
      if (child.exitCode !== null) throw new Error(`child node exited: ${stderr}`);
      return fetch(`${httpUrl}/api/v1/server`)
        .then((r) => r.status < 500)
        .catch(() => false);
    },
    // Loading the server's TypeScript in a fresh process takes seconds on a loaded 2-core machine.
    60_000,
  );
  return {
    httpUrl,
    port,
    child,
    kill: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

/**
 * A TCP load balancer in front of the nodes, as clients of a cluster meet one: each new connection goes to
 * the next node in turn, skipping one that refuses, so a client that reconnects lands on another node.
 */
export class RoundRobinProxy {
  readonly #server: Server;
  readonly #backends: number[];
  readonly #sockets = new Set<Socket>();
  #next = 0;
  port = 0;

  constructor(backends: number[]) {
    this.#backends = backends;
    this.#server = createServer((client) => this.#route(client, 0));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as { port: number }).port;
  }

  #route(client: Socket, tries: number): void {
    const port = this.#backends[this.#next++ % this.#backends.length];
    const upstream = new Socket();
    client.pause();
    upstream.once('error', () => {
      upstream.destroy();
      if (tries + 1 < this.#backends.length && !client.destroyed) this.#route(client, tries + 1);
      else client.destroy();
    });
    upstream.connect(port, '127.0.0.1', () => {
      upstream.removeAllListeners('error');
      this.#sockets.add(client).add(upstream);
      const end = () => {
        client.destroy();
        upstream.destroy();
        this.#sockets.delete(client);
        this.#sockets.delete(upstream);
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
  }

  close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
