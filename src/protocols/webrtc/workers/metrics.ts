import { Gauge, type Registry } from 'prom-client';
import type { WhepWorkers } from './WhepWorkers.ts';

/**
 * Prometheus gauges of the WHEP workers, asked over IPC when scraped (WhepWorkers.stats reuses one answer per
 * worker for the whole scrape). Their viewers are also in subsecond_viewers{protocol="whep"}: main counts
 * them on their streams.
 */
export function addWorkerMetrics(metrics: Registry, workers: WhepWorkers): void {
  const perWorker = (
    name: string,
    help: string,
    read: (s: Awaited<ReturnType<WhepWorkers['stats']>>[number]) => number,
  ) =>
    new Gauge({
      name,
      help,
      labelNames: ['worker'],
      registers: [metrics],
      async collect() {
        this.reset();
        for (const s of await workers.stats()) this.set({ worker: String(s.index) }, read(s));
      },
    });
  perWorker('subsecond_webrtc_worker_sessions', 'WHEP sessions a worker process serves', (s) => s.sessions);
  perWorker(
    'subsecond_webrtc_worker_packets_sent_total',
    'RTP packets a worker sent to its viewers since it started',
    (s) => s.packetsSent,
  );
  perWorker(
    'subsecond_webrtc_worker_cpu_seconds_total',
    'User + system CPU of a worker process since it started',
    (s) => s.cpuSeconds,
  );
  perWorker(
    'subsecond_webrtc_worker_resident_memory_bytes',
    'Resident memory of a worker',
    (s) => s.rssBytes,
  );
  perWorker(
    'subsecond_webrtc_worker_event_loop_utilization',
    "A worker's event-loop utilisation since the previous scrape",
    (s) => s.eventLoopUtilization,
  );
  const counters = (
    name: string,
    help: string,
    read: (c: ReturnType<WhepWorkers['counters']>[number]) => number,
  ) =>
    new Gauge({
      name,
      help,
      labelNames: ['worker'],
      registers: [metrics],
      collect() {
        this.reset();
        for (const c of workers.counters()) this.set({ worker: String(c.index) }, read(c));
      },
    });
  counters(
    'subsecond_webrtc_worker_restarts_total',
    'Times a worker was restarted after it exited',
    (c) => c.restarts,
  );
  counters(
    'subsecond_webrtc_worker_channel_dropped_packets_total',
    'Packets main did not pass to a worker that stopped reading',
    (c) => c.droppedPackets,
  );
  counters('subsecond_webrtc_worker_up', 'Whether a worker is running and takes viewers', (c) =>
    c.ready ? 1 : 0,
  );
}
