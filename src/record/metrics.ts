import { Gauge, type Registry } from 'prom-client';
import type { Recordings } from './Recordings.ts';

/** Recording's counters, read when scraped (the recorders only add to plain numbers). */
export function addRecordingMetrics(metrics: Registry, recordings: Recordings): void {
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [metrics],
      collect() {
        this.set(read());
      },
    });
  const { counters, store } = recordings;
  gauge(
    'subsecond_record_bytes_written_total',
    'Bytes written to recording files',
    () => counters.bytesWritten,
  );
  gauge('subsecond_record_files_started_total', 'Recording files begun', () => counters.filesStarted);
  gauge(
    'subsecond_record_write_errors_total',
    'Recording writes that failed (disk full, I/O errors); the live stream is unaffected',
    () => counters.writeErrors,
  );
  gauge(
    'subsecond_record_fragments_dropped_total',
    'Fragments not recorded because their file could not be written',
    () => counters.fragmentsDropped,
  );
  gauge(
    'subsecond_record_files_deleted_total',
    'Recording files deleted by retention',
    () => recordings.filesDeleted,
  );
  gauge('subsecond_record_bytes_stored', 'Bytes of recordings on disk', () =>
    store.all().reduce((n, s) => n + s.bytes, 0),
  );
  gauge('subsecond_recordings_active', 'Streams being recorded now', () => recordings.activeCount);
}
