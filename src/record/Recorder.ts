import { join } from 'node:path';
import type { CmafFragment, CmafInit, CmafListener } from '../core/CmafFeed.ts';
import type { Logger } from '../core/log.ts';
import { readU32, writeU32 } from '../media/bytes.ts';
import { type AppendError, FileAppender } from './FileAppender.ts';
import {
  fileNameOf,
  type RecordedHeader,
  readRecordedHeader,
  writeProducerReference,
} from './RecordingFile.ts';
import { initKeyOf, type RecordingSegment, type RecordingStore } from './RecordingStore.ts';
import { durationField } from './repair.ts';

/** What every recorder adds to, for /metrics. */
export interface RecordCounters {
  bytesWritten: number;
  filesStarted: number;
  writeErrors: number;
  /** Fragments not recorded because a file could not be written (from a write error to the next file). */
  fragmentsDropped: number;
}

export interface RecorderOptions {
  path: string;
  store: RecordingStore;
  segmentSeconds: number;
  counters: RecordCounters;
  log: Logger;
  /** After a write error, the next file is started at the first keyframe after this long. */
  retryMs?: number;
  /** Asks the source for a keyframe (WebRTC encoders send one only when asked); cuts wait for one. */
  requestKeyframe?: () => void;
  /** A file was closed (finished or abandoned): retention may run. */
  onClosed?: (segment: RecordingSegment) => void;
}

interface OpenFile {
  readonly segment: RecordingSegment;
  readonly appender: FileAppender;
  readonly header: RecordedHeader;
  /** Media time (seconds, the stream's timeline) of the keyframe the file starts on: its time 0. */
  readonly originSeconds: number;
  /** Per track: the stream's decode time of the file's time 0, subtracted from every fragment's tfdt. */
  readonly base: Map<number, number>;
}

/** A closed file still taking the other tracks' frames that belong before the cut, until they pass it. */
interface DrainingFile {
  readonly file: OpenFile;
  /** Tracks that have not yet sent a frame at or after the cut. */
  readonly waiting: Set<number>;
  readonly cutSeconds: number;
}

/** A cut that waits for a keyframe asks the source for one at most this often. */
const KEYFRAME_REQUEST_INTERVAL_MS = 1000;

/** A file still taking late frames of other tracks stops at the latest this long after its cut. */
const DRAIN_SECONDS = 1;

/*
 * The feed's fragments are built by FragmentWriter: moof(8) mfhd(16) traf(8) tfhd(16) tfdt(20, version 1),
 * so baseMediaDecodeTime is at byte 60. Only that moof is copied and patched; the mdat is written as shared.
 */
const TFDT_TYPE_OFFSET = 52;
const TFDT_VALUE_OFFSET = 60;

/**
 * Records one stream: the CMAF feed's header and fragments into one file per `segmentSeconds`, each cut at a
 * random access point and starting at time 0 (tfdt rebased, the payload written as the feed built it), so it
 * plays alone; its prft says the wall clock of time 0. Listens to the feed like any viewer; nothing here runs
 * per viewer or waits on the disk.
 */
export class Recorder implements CmafListener {
  readonly path: string;
  readonly #options: RecorderOptions;
  readonly #log: Logger;
  #init: CmafInit | null = null;
  #header: RecordedHeader | null = null;
  #initKey = '';
  /** The wall clock of the publish: media time `anchorSeconds` happened at `anchorWallMs`. */
  #anchorWallMs = 0;
  #anchorSeconds = -1;
  #file: OpenFile | null = null;
  #draining: DrainingFile | null = null;
  #retryAt = 0;
  #keyframeAskedAt = Number.NEGATIVE_INFINITY;
  readonly #loggedErrors = new Set<string>();
  #closing: Promise<void>[] = [];

  constructor(options: RecorderOptions) {
    this.path = options.path;
    this.#options = options;
    this.#log = options.log;
  }

  get segment(): RecordingSegment | null {
    return this.#file?.segment ?? null;
  }

  onInit(init: CmafInit): void {
    this.#closeAll();
    this.#init = init;
    this.#header = readRecordedHeader(init.bytes);
    this.#initKey = initKeyOf(init.bytes);
    // A changed decoder configuration keeps the publish's clock; a new publish starts its own.
    if (!init.continues) this.#anchorSeconds = -1;
  }

  onItem(fragment: CmafFragment): void {
    const init = this.#init;
    if (!init) return;
    const seconds = fragment.frame.dts / fragment.track.timescale;
    if (this.#anchorSeconds < 0) {
      if (!fragment.rap) return;
      this.#anchorSeconds = seconds;
      // The frame's arrival, not now: a recording started mid-GOP begins with frames the GOP cache held.
      this.#anchorWallMs = Date.now() - (performance.now() - fragment.frame.arrival);
    }
    if (this.#drain(fragment, seconds)) return;
    let file = this.#file;
    if (file && seconds - file.originSeconds >= this.#options.segmentSeconds) {
      if (fragment.rap) {
        this.#cut(file, seconds, init);
        file = null;
      } else if (performance.now() - this.#keyframeAskedAt >= KEYFRAME_REQUEST_INTERVAL_MS) {
        this.#keyframeAskedAt = performance.now();
        this.#options.requestKeyframe?.();
      }
    }
    if (!file) {
      if (!fragment.rap || performance.now() < this.#retryAt) {
        if (this.#retryAt) this.#options.counters.fragmentsDropped++;
        return;
      }
      file = this.#openFile(init, seconds);
    }
    this.#write(file, fragment, seconds);
  }

  onUnpublish(): void {
    this.#closeAll();
    this.#init = null;
    this.#anchorSeconds = -1;
  }

  /** Closes the open file (finished and playable on its own); resolves once every file is on disk. */
  async close(): Promise<void> {
    this.#closeAll();
    this.#init = null;
    await Promise.all(this.#closing);
  }

  #write(file: OpenFile, fragment: CmafFragment, seconds: number): void {
    if (file.appender.failed) {
      this.#options.counters.fragmentsDropped++;
      return;
    }
    const base = file.base.get(fragment.track.id) ?? 0;
    const bytes = fragment.bytes;
    const moofSize = readU32(bytes, 0);
    const dts = fragment.frame.dts - base;
    // A frame of another track from before the file's first keyframe, with no earlier file to take it.
    if (dts < 0) return;
    if (bytes[TFDT_TYPE_OFFSET] !== 0x74 || bytes[TFDT_TYPE_OFFSET + 1] !== 0x66 || moofSize > bytes.length) {
      throw new Error(`fragment of "${this.path}" is not laid out as FragmentWriter writes it`);
    }
    const moof = bytes.slice(0, moofSize);
    writeU32(moof, TFDT_VALUE_OFFSET, Math.floor(dts / 0x100000000));
    writeU32(moof, TFDT_VALUE_OFFSET + 4, dts >>> 0);
    file.appender.append(moof);
    file.appender.append(bytes.subarray(moofSize));
    const segment = file.segment;
    segment.bytes += bytes.byteLength;
    const end = Math.round(
      (seconds + fragment.duration / fragment.track.timescale - file.originSeconds) * 1000,
    );
    if (end > segment.durationMs) segment.durationMs = end;
  }

  /** True when the fragment went to the file before the cut (a late frame of another track). */
  #drain(fragment: CmafFragment, seconds: number): boolean {
    const draining = this.#draining;
    if (!draining) return false;
    const track = fragment.track.id;
    if (draining.waiting.has(track) && !fragment.rap) {
      if (seconds < draining.cutSeconds) {
        this.#write(draining.file, fragment, seconds);
        return true;
      }
      draining.waiting.delete(track);
    } else if (draining.waiting.has(track)) {
      draining.waiting.delete(track);
    }
    if (draining.waiting.size === 0 || seconds - draining.cutSeconds > DRAIN_SECONDS) this.#closeDraining();
    return false;
  }

  #cut(file: OpenFile, cutSeconds: number, init: CmafInit): void {
    this.#closeDraining();
    this.#file = null;
    const waiting = new Set(init.tracks.map((t) => t.id));
    // The cut is at a keyframe of the lead track: its later frames all belong to the next file.
    for (const t of init.tracks) if (t.kind === 'video' || init.tracks.length === 1) waiting.delete(t.id);
    if (waiting.size === 0) this.#finish(file);
    else this.#draining = { file, waiting, cutSeconds };
  }

  #closeDraining(): void {
    const draining = this.#draining;
    if (!draining) return;
    this.#draining = null;
    this.#finish(draining.file);
  }

  #closeAll(): void {
    this.#closeDraining();
    const file = this.#file;
    this.#file = null;
    if (file) this.#finish(file);
  }

  #openFile(init: CmafInit, originSeconds: number): OpenFile {
    const { store, path } = this.#options;
    const startMs = this.#anchorWallMs + (originSeconds - this.#anchorSeconds) * 1000;
    let nameMs = Math.round(startMs);
    while (store.find(path, fileNameOf(nameMs))) nameMs++;
    const name = fileNameOf(nameMs);
    const header = this.#header!;
    const lead = init.tracks.find((t) => t.kind === 'video') ?? init.tracks[0];
    const prft = writeProducerReference(lead.id, startMs);
    const segment: RecordingSegment = {
      path,
      name,
      file: join(store.dirOf(path), name),
      startMs,
      durationMs: 0,
      bytes: init.bytes.byteLength + prft.byteLength,
      tracks: header.tracks,
      initKey: this.#initKey,
      open: true,
    };
    const counters = this.#options.counters;
    let resumed = this.#loggedErrors.size === 0;
    const appender = new FileAppender(
      segment.file,
      (error) => this.#failed(file, error),
      (bytes) => {
        counters.bytesWritten += bytes;
        if (!resumed) {
          resumed = true;
          this.#loggedErrors.clear();
          this.#log.info({ path, file: segment.file }, 'recording resumed');
        }
      },
    );
    const base = new Map(init.tracks.map((t) => [t.id, Math.round(originSeconds * t.timescale)]));
    const file: OpenFile = { segment, appender, header, originSeconds, base };
    appender.append(init.bytes);
    appender.append(prft);
    store.add(segment);
    counters.filesStarted++;
    this.#file = file;
    this.#log.debug({ path, file: segment.file }, 'recording file started');
    return file;
  }

  #finish(file: OpenFile): void {
    const { segment, appender, header } = file;
    const done = appender
      .close({ position: header.durationOffset, bytes: durationField(segment.durationMs) })
      .then(async () => {
        if (appender.failed) await this.#options.store.finishAbandoned(segment);
        else segment.open = false;
        this.#options.onClosed?.(segment);
      });
    this.#closing.push(done);
    done.finally(() => {
      this.#closing = this.#closing.filter((p) => p !== done);
    });
  }

  /** A write failed: the live stream goes on; this file is finished as far as it got, the next one retried. */
  #failed(file: OpenFile, error: AppendError): void {
    this.#options.counters.writeErrors++;
    if (!this.#loggedErrors.has(error.code)) {
      this.#loggedErrors.add(error.code);
      this.#log.error(
        { path: this.path, file: error.file, errno: error.code, reason: error.message },
        'recording write failed; live viewers are unaffected, recording retries at a later keyframe',
      );
    }
    this.#retryAt = performance.now() + (this.#options.retryMs ?? 5000);
    if (this.#file === file) {
      this.#file = null;
      this.#finish(file);
    }
    if (this.#draining?.file === file) this.#closeDraining();
  }
}
