import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { ClusterNode } from '../cluster/ClusterNode.ts';
import type { StreamRegistry } from '../core/StreamRegistry.ts';
import type { HlsServer } from '../protocols/hls/HlsServer.ts';
import type { MseServer } from '../protocols/mse/MseServer.ts';

/**
 * Prometheus metrics. Everything is read from the live objects when scraped, so nothing on the media path
 * pays for metrics beyond the counters it already keeps.
 */
export function createMetrics(registry: StreamRegistry, mse: MseServer, hls?: HlsServer | null): Registry {
  const metrics = new Registry();
  collectDefaultMetrics({ register: metrics, prefix: 'subsecond_' });

  new Gauge({
    name: 'subsecond_streams_live',
    help: 'Streams with a publisher',
    registers: [metrics],
    collect() {
      this.set(registry.live().length);
    },
  });
  new Gauge({
    name: 'subsecond_viewers',
    help: 'Viewers by protocol',
    labelNames: ['protocol'],
    registers: [metrics],
    collect() {
      this.reset();
      const totals = new Map<string, number>();
      for (const s of registry.list()) {
        for (const [p, n] of s.viewers) totals.set(p, (totals.get(p) ?? 0) + n);
      }
      for (const [protocol, n] of totals) this.set({ protocol }, n);
    },
  });
  new Gauge({
    name: 'subsecond_stream_bitrate_bits_per_second',
    help: 'Ingest bitrate per live stream over the last 2 s',
    labelNames: ['path'],
    registers: [metrics],
    collect() {
      this.reset();
      for (const s of registry.live()) this.set({ path: s.path }, s.bitrate);
    },
  });
  const mseCounter = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [metrics],
      collect() {
        this.set(read());
      },
    });
  mseCounter(
    'subsecond_mse_fragments_sent_total',
    'fMP4 fragments written to WebSocket viewers',
    () => mse.counters.fragmentsSent,
  );
  mseCounter(
    'subsecond_mse_fragments_dropped_total',
    'Fragments skipped for viewers that fell behind',
    () => mse.counters.fragmentsDropped,
  );
  mseCounter(
    'subsecond_mse_bytes_sent_total',
    'Bytes of fragments written to WebSocket viewers',
    () => mse.counters.bytesSent,
  );
  new Gauge({
    name: 'subsecond_mse_delivery_delay_ms',
    help: 'Frame arrival to socket write for WebSocket viewers, since start',
    labelNames: ['quantile'],
    registers: [metrics],
    collect() {
      for (const q of [0.5, 0.9, 0.99]) this.set({ quantile: String(q) }, mse.deliveryDelay.quantile(q));
    },
  });
  if (hls) addHlsMetrics(metrics, hls);
  return metrics;
}

function addHlsMetrics(metrics: Registry, hls: HlsServer): void {
  new Gauge({
    name: 'subsecond_hls_media_bytes',
    help: 'Bytes of segments and parts an LL-HLS/DASH packager holds, per stream',
    labelNames: ['path'],
    registers: [metrics],
    collect() {
      this.reset();
      for (const p of hls.packagers.values()) this.set({ path: p.path }, p.bytes);
    },
  });
  new Gauge({
    name: 'subsecond_hls_held_requests',
    help: 'Blocking playlist requests waiting for their part, per stream',
    labelNames: ['path'],
    registers: [metrics],
    collect() {
      this.reset();
      for (const p of hls.packagers.values()) this.set({ path: p.path }, p.waiting);
    },
  });
  new Gauge({
    name: 'subsecond_hls_responses_total',
    help: 'LL-HLS responses by resource since start',
    labelNames: ['resource'],
    registers: [metrics],
    collect() {
      const c = hls.counters;
      this.set({ resource: 'playlist' }, c.playlists);
      this.set({ resource: 'blocked_playlist' }, c.blockedPlaylists);
      this.set({ resource: 'part' }, c.parts);
      this.set({ resource: 'segment' }, c.segments);
      this.set({ resource: 'init' }, c.inits);
    },
  });
  new Gauge({
    name: 'subsecond_hls_held_response_delay_ms',
    help: 'Part completion to the held playlist response being written, since start',
    labelNames: ['quantile'],
    registers: [metrics],
    collect() {
      for (const q of [0.5, 0.9, 0.99]) this.set({ quantile: String(q) }, hls.responseDelay.quantile(q));
    },
  });
}

/** Cluster health and traffic between nodes (cluster.redis set). */
export function addClusterMetrics(metrics: Registry, cluster: ClusterNode): void {
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [metrics],
      collect() {
        this.set(read());
      },
    });
  gauge(
    'subsecond_cluster_degraded',
    'cluster degraded: 1 while Redis is unreachable (streams keep flowing; registry and directory wait)',
    () => (cluster.degraded ? 1 : 0),
  );
  gauge(
    'subsecond_cluster_nodes',
    'Live nodes of the cluster as of the last heartbeat',
    () => cluster.nodes.length,
  );
  gauge('subsecond_cluster_relays_in', 'Streams this node pulls from their origin', () => cluster.pulls.size);
  gauge('subsecond_cluster_relays_out', 'Relays this node serves to edges', () => cluster.relay.relays.size);
  gauge(
    'subsecond_cluster_upstream_bytes_total',
    'Bytes received from origins over relays',
    () => cluster.counters.upstreamBytes,
  );
  gauge(
    'subsecond_cluster_relay_bytes_sent_total',
    'Bytes sent to edges over relays',
    () => cluster.relay.counters.bytesSent,
  );
  gauge(
    'subsecond_cluster_relay_refused_total',
    'Relay requests refused for a missing or wrong cluster.secret',
    () => cluster.relay.counters.refused,
  );
  gauge(
    'subsecond_cluster_relay_keyframe_requests_total',
    'Keyframe requests (WebRTC PLI/FIR) edges sent up to this origin',
    () => cluster.relay.counters.keyframeRequests,
  );
  gauge(
    'subsecond_cluster_directory_operations_total',
    'Registry and directory operations sent to Redis',
    () => cluster.directory.counters.operations + cluster.nodeRegistry.counters.operations,
  );
  gauge(
    'subsecond_cluster_directory_failures_total',
    'Registry and directory operations that failed (Redis unreachable, script error)',
    () => cluster.directory.counters.failures + cluster.nodeRegistry.counters.failures,
  );
  gauge(
    'subsecond_cluster_claims_lost_total',
    'Publishers dropped because a newer claim replaced this origin (fencing)',
    () => cluster.counters.claimsLost,
  );
}
