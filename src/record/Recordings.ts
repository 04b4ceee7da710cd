import { compilePattern } from '../auth/Tokens.ts';
import type { RecordConfig } from '../config/schema.ts';
import { CmafFeed } from '../core/CmafFeed.ts';
import type { GopCacheLimits } from '../core/GopCache.ts';
import type { Logger } from '../core/log.ts';
import type { Stream } from '../core/Stream.ts';
import type { StreamRegistry } from '../core/StreamRegistry.ts';
import { type RecordCounters, Recorder } from './Recorder.ts';
import { RecordingStore } from './RecordingStore.ts';
import { selectExpired } from './Retention.ts';

const RETENTION_INTERVAL_MS = 30_000;

export interface RecordingsOptions {
  config: RecordConfig;
  registry: StreamRegistry;
  gopLimits?: GopCacheLimits;
  log: Logger;
}

interface Attached {
  readonly recorder: Recorder;
  readonly detach: () => void;
}

/**
 * Recording for the whole server: which streams are recorded (record.enabled with record.paths, or the
 * API), one Recorder per recorded stream, the on-disk index, and retention.
 */
export class Recordings {
  readonly config: RecordConfig;
  readonly store: RecordingStore;
  readonly counters: RecordCounters = {
    bytesWritten: 0,
    filesStarted: 0,
    writeErrors: 0,
    fragmentsDropped: 0,
  };
  filesDeleted = 0;
  readonly #registry: StreamRegistry;
  readonly #gopLimits: GopCacheLimits | undefined;
  readonly #log: Logger;
  readonly #patterns: RegExp[];
  /** Set through the API: true records the path from now on, false stops it, whatever record.paths says. */
  readonly #overrides = new Map<string, boolean>();
  readonly #attached = new Map<string, Attached>();
  #retentionTimer: NodeJS.Timeout | null = null;
  #retention: Promise<void> | null = null;
  #retentionAgain = false;

  constructor(options: RecordingsOptions) {
    this.config = options.config;
    this.#registry = options.registry;
    this.#gopLimits = options.gopLimits;
    this.#log = options.log.child({ component: 'record' });
    this.store = new RecordingStore(options.config.dir, this.#log);
    this.#patterns = options.config.paths.map(compilePattern);
  }

  /** Indexes and repairs what is on disk, then records every stream the settings name. */
  async start(): Promise<void> {
    await this.store.load();
    this.#registry.on('published', this.#onPublished);
    this.#registry.on('unpublished', this.#onUnpublished);
    for (const stream of this.#registry.live()) this.#onPublished(stream);
    this.#retentionTimer = setInterval(() => this.applyRetention(), RETENTION_INTERVAL_MS);
    this.#retentionTimer.unref();
    this.applyRetention();
  }

  /** Whether a live stream on `path` is recorded. */
  wanted(path: string): boolean {
    const override = this.#overrides.get(path);
    if (override !== undefined) return override;
    return this.config.enabled && this.#patterns.some((p) => p.test(path));
  }

  get activeCount(): number {
    return this.#attached.size;
  }

  recorderOf(path: string): Recorder | undefined {
    return this.#attached.get(path)?.recorder;
  }

  /** API start: records `path` now and on every republish until stopped. False when it is not live. */
  startRecording(path: string): boolean {
    const stream = this.#registry.get(path);
    if (!stream?.live) return false;
    this.#overrides.set(path, true);
    this.#attach(stream);
    return true;
  }

  /** API stop: false when `path` was not being recorded. */
  async stopRecording(path: string): Promise<boolean> {
    const attached = this.#attached.get(path);
    this.#overrides.set(path, false);
    if (!attached) return false;
    await this.#detach(path);
    return true;
  }

  /** Runs retention once (again after the running pass when asked meanwhile). */
  applyRetention(): Promise<void> {
    if (this.config.maxAgeHours === 0 && this.config.maxBytes === 0) return Promise.resolve();
    if (this.#retention) {
      this.#retentionAgain = true;
      return this.#retention;
    }
    this.#retention = (async () => {
      do {
        this.#retentionAgain = false;
        for (const { segment, reason } of selectExpired(this.store.all(), this.config, Date.now())) {
          try {
            await this.store.remove(segment, reason);
            this.filesDeleted++;
          } catch (err) {
            this.#log.error(
              { file: segment.file, errno: (err as NodeJS.ErrnoException).code },
              'recording could not be deleted by retention',
            );
          }
        }
      } while (this.#retentionAgain);
    })().finally(() => {
      this.#retention = null;
    });
    return this.#retention;
  }

  async close(): Promise<void> {
    if (this.#retentionTimer) clearInterval(this.#retentionTimer);
    this.#registry.off('published', this.#onPublished);
    this.#registry.off('unpublished', this.#onUnpublished);
    await Promise.all([...this.#attached.keys()].map((path) => this.#detach(path)));
    await this.#retention;
  }

  readonly #onPublished = (stream: Stream): void => {
    if (this.wanted(stream.path)) this.#attach(stream);
  };

  /** The recorder already closed its file (onUnpublish); letting go of the feed lets the stream be collected. */
  readonly #onUnpublished = (stream: Stream): void => {
    const attached = this.#attached.get(stream.path);
    if (!attached) return;
    this.#attached.delete(stream.path);
    attached.detach();
  };

  #attach(stream: Stream): void {
    if (this.#attached.has(stream.path)) return;
    const recorder = new Recorder({
      path: stream.path,
      store: this.store,
      segmentSeconds: this.config.segmentSeconds,
      counters: this.counters,
      log: this.#log,
      requestKeyframe: () => stream.publisher?.requestKeyframe?.(),
      onClosed: () => void this.applyRetention(),
    });
    const detach = CmafFeed.of(stream, this.#gopLimits).addListener(recorder);
    this.#attached.set(stream.path, { recorder, detach });
    this.#log.info({ path: stream.path, dir: this.store.dirOf(stream.path) }, 'recording started');
  }

  async #detach(path: string): Promise<void> {
    const attached = this.#attached.get(path);
    if (!attached) return;
    this.#attached.delete(path);
    attached.detach();
    const stream = this.#registry.get(path);
    if (stream) this.#registry.release(stream);
    await attached.recorder.close();
    this.#log.info({ path }, 'recording stopped');
  }
}
