import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';

/**
 * The one way Subsecond connects to the cluster's Redis (ioredis: Sentinel failover, Lua scripts by SHA and
 * reconnection built in). Every client made here fails a command at once while Redis is unreachable instead of
 * queueing it: callers must see an outage (a publish answers 503, a heartbeat is retried), never wait on it.
 */
export interface RedisTarget {
  /** `redis` and `rediss` name one server; `sentinel` a master found through sentinels. */
  readonly kind: 'redis' | 'rediss' | 'sentinel';
  readonly hosts: readonly { host: string; port: number }[];
  readonly username?: string;
  readonly password?: string;
  readonly db: number;
  /** The Sentinel master name (kind `sentinel`). */
  readonly masterName?: string;
}

export class RedisUrlError extends Error {}

/** Parses `cluster.redis`; the error names what is wrong with the value. Credentials never reach the message. */
export function parseRedisUrl(url: string): RedisTarget {
  const m = /^(rediss?|redis\+sentinel):\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]+)(?:\/([^?#]*))?$/.exec(url);
  if (!m) {
    throw new RedisUrlError(
      `cluster.redis must look like redis://host:6379 or redis+sentinel://host1:26379,host2:26379/masterName, got "${redact(url)}"`,
    );
  }
  const [, scheme, user, pass, hostList, rest] = m;
  const kind = scheme === 'redis+sentinel' ? 'sentinel' : (scheme as 'redis' | 'rediss');
  const defaultPort = kind === 'sentinel' ? 26379 : 6379;
  const hosts = hostList.split(',').map((entry) => {
    const hm = /^(\[[0-9a-fA-F:]+\]|[^:[\]]+)(?::(\d+))?$/.exec(entry.trim());
    const port = hm?.[2] === undefined ? defaultPort : Number(hm[2]);
    if (!hm || port < 1 || port > 65535) {
      throw new RedisUrlError(`cluster.redis: "${entry}" is not host or host:port`);
    }
    return { host: hm[1].replace(/^\[|\]$/g, ''), port };
  });
  if (kind !== 'sentinel' && hosts.length !== 1) {
    throw new RedisUrlError(
      `cluster.redis: ${scheme}:// takes one host; list sentinels with redis+sentinel://`,
    );
  }
  let db = 0;
  let masterName: string | undefined;
  if (kind === 'sentinel') {
    const [name, dbPart] = (rest ?? '').split('/');
    if (!name) throw new RedisUrlError('cluster.redis: redis+sentinel:// needs the master name: …/mymaster');
    masterName = decodeURIComponent(name);
    if (dbPart) db = Number(dbPart);
  } else if (rest) {
    db = Number(rest);
  }
  if (!Number.isInteger(db) || db < 0)
    throw new RedisUrlError(`cluster.redis: database "${rest}" is not a number`);
  return {
    kind,
    hosts,
    username: user ? decodeURIComponent(user) : undefined,
    password: pass !== undefined ? decodeURIComponent(pass) : undefined,
    db,
    masterName,
  };
}

/** The URL with its password replaced, for logs and errors. */
export function redact(url: string): string {
  return url.replace(/^([a-z+]+:\/\/[^:@/]*:)[^@/]*@/, '$1***@');
}

export interface RedisClientOptions {
  log: Logger;
  /** Shown in Redis's CLIENT LIST and in our logs: `subsecond:<node>:<role>`. */
  connectionName: string;
  /**
   * A command Redis has not answered within this long fails ("Command timed out"): a Redis that is stuck
   * (paused, swapping, a long script) with its connection still open must not hold callers forever.
   */
  commandTimeoutMs?: number;
}

/**
 * A client for `cluster.redis`. It reconnects by itself (back-off up to 2 s) and logs each loss and recovery
 * once; the caller listens for 'ready' to re-register what Redis may have lost.
 */
export function createRedisClient(url: string, options: RedisClientOptions): Redis {
  const target = parseRedisUrl(url);
  const common: RedisOptions = {
    connectionName: options.connectionName,
    username: target.username,
    password: target.password,
    db: target.db,
    // Fail fast while disconnected: a command during an outage is an error the caller reports, not a wait.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
    connectTimeout: 2000,
    commandTimeout: options.commandTimeoutMs,
    lazyConnect: false,
  };
  const client =
    target.kind === 'sentinel'
      ? new Redis({
          ...common,
          sentinels: target.hosts.map((h) => ({ host: h.host, port: h.port })),
          name: target.masterName,
          sentinelPassword: target.password,
          sentinelRetryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
        })
      : new Redis({
          ...common,
          host: target.hosts[0].host,
          port: target.hosts[0].port,
          tls: target.kind === 'rediss' ? {} : undefined,
        });
  let down = false;
  const where = redact(url);
  client.on('error', (err: Error) => {
    if (down) return;
    down = true;
    options.log.warn(
      { redis: where, err: err.message, connection: options.connectionName },
      'Redis unreachable',
    );
  });
  client.on('ready', () => {
    if (!down) return;
    down = false;
    options.log.info({ redis: where, connection: options.connectionName }, 'Redis reachable again');
  });
  return client;
}
