import type { NodeInfo } from './NodeRegistry.ts';

/** A stream's media viewers summed over the cluster's live nodes. */
export interface ClusterViewers {
  readonly total: number;
  readonly byProtocol: Record<string, number>;
  /** Nodes with at least one viewer of it. */
  readonly nodes: number;
}

/**
 * Media viewers per stream across nodes. Each node's heartbeat entry (NodeRegistry: refreshed every second,
 * expiring after 3 s) carries its viewers per stream, so the totals are the sum over the entries alive at the
 * last heartbeat: a node that dies leaves them within about 4 s, as messaging presence does. This node's own
 * counts are read live, the others' are at most one heartbeat old.
 */
export class StreamViewerTotals {
  /** Remote nodes' viewers per stream as of the last heartbeat, path → protocol → count. */
  #remote = new Map<string, Map<string, number>>();
  /** Remote nodes with a viewer of the path. */
  #remoteNodes = new Map<string, number>();
  /** Paths some live node is the origin of or relays. */
  #remoteLive = new Set<string>();
  readonly #changed = new Set<(path: string) => void>();

  /** Takes a heartbeat's node list; tells listeners about every path whose remote viewers changed. */
  update(nodes: readonly NodeInfo[], selfId: string): void {
    const remote = new Map<string, Map<string, number>>();
    const remoteNodes = new Map<string, number>();
    const live = new Set<string>();
    for (const node of nodes) {
      if (node.id === selfId) continue;
      for (const path of node.streams.origin) live.add(path);
      for (const path of node.streams.relayed) live.add(path);
      for (const [path, byProtocol] of Object.entries(node.load.streamViewers ?? {})) {
        const sum = remote.get(path) ?? new Map<string, number>();
        remote.set(path, sum);
        remoteNodes.set(path, (remoteNodes.get(path) ?? 0) + 1);
        for (const [protocol, n] of Object.entries(byProtocol))
          sum.set(protocol, (sum.get(protocol) ?? 0) + n);
      }
    }
    const before = this.#remote;
    this.#remote = remote;
    this.#remoteNodes = remoteNodes;
    this.#remoteLive = live;
    if (this.#changed.size === 0) return;
    for (const path of new Set([...before.keys(), ...remote.keys()])) {
      if (sameCounts(before.get(path), remote.get(path))) continue;
      for (const listener of this.#changed) listener(path);
    }
  }

  onChanged(listener: (path: string) => void): void {
    this.#changed.add(listener);
  }

  /**
   * The stream's viewers on every live node, this node's `local` counts (its registry's, by protocol)
   * included; null when no node carries the stream and none counts a viewer of it.
   */
  of(path: string, local: ReadonlyMap<string, number> | undefined): ClusterViewers | null {
    const remote = this.#remote.get(path);
    if (!local && !remote && !this.#remoteLive.has(path)) return null;
    const byProtocol: Record<string, number> = {};
    let total = 0;
    let nodes = this.#remoteNodes.get(path) ?? 0;
    for (const counts of [local, remote]) {
      for (const [protocol, n] of counts ?? []) {
        byProtocol[protocol] = (byProtocol[protocol] ?? 0) + n;
        total += n;
      }
    }
    if (local && [...local.values()].some((n) => n > 0)) nodes++;
    return { total, byProtocol, nodes };
  }
}

function sameCounts(a: Map<string, number> | undefined, b: Map<string, number> | undefined): boolean {
  if ((a?.size ?? 0) !== (b?.size ?? 0)) return false;
  for (const [k, v] of a ?? []) if (b?.get(k) !== v) return false;
  return true;
}
