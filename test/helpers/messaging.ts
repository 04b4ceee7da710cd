import type { ConfigInput } from '../../src/config/schema.ts';
import { type RunningServer, startServer } from '../../src/server.ts';

/** What a messaging test changes from the defaults below. */
export interface MessagingTestServer {
  messaging?: ConfigInput['messaging'];
  http?: ConfigInput['http'];
  log?: 'warn' | 'silent';
  /** A node of a cluster (test/helpers/cluster.ts): cluster.redis and cluster.secret. */
  cluster?: ConfigInput['cluster'];
}

/**
 * The server the messaging integration tests run against: HTTP on 127.0.0.1 at a free port, RTMP off, log
 * `warn`, and publish limits lifted to 10,000/s (burst 10,000) unless `messaging` sets its own.
 */
export function startMessagingServer(options: MessagingTestServer = {}): Promise<RunningServer> {
  const { messaging = {}, http = {}, log = 'warn', cluster } = options;
  return startServer({
    http: { host: '127.0.0.1', port: 0, ...http },
    rtmp: { enabled: false },
    log: { level: log },
    messaging: { publishRatePerSecond: 10_000, publishBurst: 10_000, ...messaging },
    ...(cluster ? { cluster } : {}),
  });
}

/** Closes what a test file's `before` started (some may not have, when it failed). */
export async function closeServers(...servers: (RunningServer | undefined)[]): Promise<void> {
  await Promise.all(servers.map((s) => s?.close()));
}
