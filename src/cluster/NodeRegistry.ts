import type { Redis } from 'ioredis';

/**
 * The cluster's nodes in Redis: each node's key holds what it is (URLs) and how loaded it is, written every
 * HEARTBEAT_MS with a NODE_TTL_MS expiry, so a node that stops refreshing (killed, frozen, cut off) is gone from
 * every other node's view within NODE_TTL_MS + HEARTBEAT_MS. Liveness is the TTL, never a notification.
 */
export const HEARTBEAT_MS = 1000;
export const NODE_TTL_MS = 3000;
const PREFIX = 'subsecond:cluster:';
const INDEX = `${PREFIX}nodes`;

export interface NodeLoad {
  /** Viewers by transport (mse, whep, rtmp, hls…) over every stream on the node. */
  readonly viewers: Record<string, number>;
  readonly viewersTotal: number;
  /** Estimated egress: each stream's bitrate times its viewers, plus relays out. */
  readonly egressBitsPerSecond: number;
  /** CPU time of the process over the last heartbeat, in cores (1.0 = one core busy). */
  readonly cpu: number;
  /** Viewers of each stream watched on the node, path → protocol → count (absent from older nodes). */
  readonly streamViewers?: Record<string, Record<string, number>>;
}

export interface NodeInfo {
  readonly id: string;
  /** Public HTTP base URL (pages, API, WHIP/WHEP, WS+MSE, LL-HLS/DASH, relay). */
  readonly http: string;
  /** `rtmp://host:port`, or '' without RTMP. */
  readonly rtmp: string;
  /** `host:port` of the WebRTC UDP port, or ''. */
  readonly webrtcUdp: string;
  readonly startedAt: number;
  readonly load: NodeLoad;
  /** `cluster.maxViewers` / `cluster.maxEgressBitrate` (0: unlimited). */
  readonly capacity: { readonly maxViewers: number; readonly maxEgressBitrate: number };
  /** Streams this node is the origin of, and those it pulls from another node. */
  readonly streams: { readonly origin: readonly string[]; readonly relayed: readonly string[] };
  /** Relays this node serves to edges: path → edge node ids. */
  readonly relaysOut: Readonly<Record<string, readonly string[]>>;
}

export function atCapacity(node: NodeInfo): boolean {
  const { maxViewers, maxEgressBitrate } = node.capacity;
  return (
    (maxViewers > 0 && node.load.viewersTotal >= maxViewers) ||
    (maxEgressBitrate > 0 && node.load.egressBitsPerSecond >= maxEgressBitrate)
  );
}

function nodeKey(id: string): string {
  return `${PREFIX}node:${id}`;
}

export class NodeRegistry {
  readonly #redis: Redis;
  readonly counters = { operations: 0, failures: 0 };

  constructor(redis: Redis) {
    this.#redis = redis;
  }

  /** Writes this node's entry and returns every live node's (this one included). One round trip. */
  async heartbeat(self: NodeInfo): Promise<NodeInfo[]> {
    this.counters.operations++;
    try {
      const result = await this.#redis
        .multi()
        .set(nodeKey(self.id), JSON.stringify(self), 'PX', NODE_TTL_MS)
        .zadd(INDEX, Date.now() + NODE_TTL_MS, self.id)
        .zremrangebyscore(INDEX, '-inf', Date.now() - 60_000)
        .zrange(INDEX, 0, -1)
        .exec();
      const ids = (result?.[3]?.[1] ?? []) as string[];
      if (ids.length === 0) return [self];
      this.counters.operations++;
      const values = await this.#redis.mget(ids.map(nodeKey));
      const nodes: NodeInfo[] = [];
      for (const v of values) {
        if (!v) continue;
        try {
          nodes.push(JSON.parse(v) as NodeInfo);
        } catch {
          // A node written by an incompatible version: not routable, not ours to delete.
        }
      }
      return nodes;
    } catch (err) {
      this.counters.failures++;
      throw err;
    }
  }

  /** Removes this node's entry at shutdown, so it leaves routing at once rather than after its TTL. */
  async leave(id: string): Promise<void> {
    this.counters.operations++;
    await this.#redis.multi().del(nodeKey(id)).zrem(INDEX, id).exec();
  }
}
