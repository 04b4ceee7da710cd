import { createHash } from 'node:crypto';
import { open, readdir, stat, unlink } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import type { Logger } from '../core/log.ts';
import { parseStreamPath } from '../shared/streamPath.ts';
import {
  type RecordedFragment,
  type RecordedHeader,
  type RecordedTrack,
  readRecordedFragments,
  readRecordedHeader,
  startOfFileName,
} from './RecordingFile.ts';
import { finishRecordingFile } from './repair.ts';

/** One recorded file: {record.dir}/{stream path}/{start}.mp4. */
export interface RecordingSegment {
  readonly path: string;
  readonly name: string;
  /** Absolute; always inside record.dir. */
  readonly file: string;
  /** Wall-clock time (ms since the epoch, fractional: the file's prft) of the file's media time 0. */
  readonly startMs: number;
  durationMs: number;
  bytes: number;
  readonly tracks: readonly RecordedTrack[];
  /** Equal for files that share a CMAF header (one publish, one codec set): their fragments continue. */
  readonly initKey: string;
  /** Still being written by a recorder. */
  open: boolean;
}

export interface SegmentContents {
  readonly header: RecordedHeader;
  readonly fragments: readonly RecordedFragment[];
  /** Bytes up to the end of the last complete fragment. */
  readonly size: number;
}

/** Bytes of a file read to find its header; a moov is far smaller. */
const HEADER_READ = 64 * 1024;
/** Closed files whose fragment index stays in memory for playlists and downloads (not their bytes). */
const CONTENTS_CACHED = 64;

export function initKeyOf(init: Uint8Array): string {
  return createHash('sha1').update(init).digest('hex').slice(0, 16);
}

/**
 * The recordings on disk, indexed by stream path. Every file name it reads or writes is one it built (a
 * validated stream path and a start time) and resolves inside record.dir; nothing from a request is joined
 * to a path before it has passed parseStreamPath and the file-name pattern.
 */
export class RecordingStore {
  readonly root: string;
  readonly #log: Logger;
  readonly #byPath = new Map<string, RecordingSegment[]>();
  readonly #contents = new Map<string, { bytes: number; contents: Promise<SegmentContents> }>();

  constructor(dir: string, log: Logger) {
    this.root = resolve(dir);
    this.#log = log;
  }

  /** Indexes what is on disk, finishing files a killed or failed writer left open. */
  async load(): Promise<void> {
    const started = performance.now();
    let files = 0;
    for (const { path, dir } of await this.#walk(this.root, [])) {
      for (const name of await readdir(dir)) {
        const startMs = startOfFileName(name);
        if (startMs === null) continue;
        const segment = await this.#index(path, name, startMs);
        if (segment) {
          this.add(segment);
          files++;
        }
      }
    }
    this.#log.info(
      { dir: this.root, files, paths: this.#byPath.size, ms: Math.round(performance.now() - started) },
      'recordings indexed',
    );
  }

  /** The folder of `path`'s recordings; throws when the path is not a valid stream path. */
  dirOf(path: string): string {
    const dir = resolve(this.root, ...parseStreamPath(path).split('/'));
    if (!dir.startsWith(this.root + sep))
      throw new Error(`recording folder of "${path}" is outside record.dir`);
    return dir;
  }

  add(segment: RecordingSegment): void {
    let list = this.#byPath.get(segment.path);
    if (!list) {
      list = [];
      this.#byPath.set(segment.path, list);
    }
    list.push(segment);
    list.sort((a, b) => a.startMs - b.startMs);
  }

  paths(): string[] {
    return [...this.#byPath.keys()].sort();
  }

  segmentsOf(path: string): readonly RecordingSegment[] {
    return this.#byPath.get(path) ?? [];
  }

  all(): RecordingSegment[] {
    return [...this.#byPath.values()].flat();
  }

  /** The segment of `path` named `name`, only when it is one this store indexed. */
  find(path: string, name: string): RecordingSegment | undefined {
    return this.#byPath.get(path)?.find((s) => s.name === name);
  }

  /** Deletes a closed file from disk and the index, logged with why. */
  async remove(segment: RecordingSegment, reason: string): Promise<void> {
    if (segment.open) throw new Error(`${segment.file} is still being written`);
    const list = this.#byPath.get(segment.path);
    const i = list?.indexOf(segment) ?? -1;
    if (list && i >= 0) list.splice(i, 1);
    if (list?.length === 0) this.#byPath.delete(segment.path);
    this.#contents.delete(segment.file);
    await unlink(segment.file).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    this.#log.info(
      { path: segment.path, file: segment.file, bytes: segment.bytes, startedAt: new Date(segment.startMs) },
      `recording deleted: ${reason}`,
    );
  }

  /** Finishes a file after its writer failed, and indexes what it kept (or forgets it when nothing was). */
  async finishAbandoned(segment: RecordingSegment): Promise<void> {
    try {
      const finished = await finishRecordingFile(segment.file, this.#log);
      if (finished) {
        segment.durationMs = finished.durationMs;
        segment.bytes = finished.bytes;
        segment.open = false;
        return;
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.#log.warn(
          { file: segment.file, errno: (err as NodeJS.ErrnoException).code },
          'recording left unfinished; it is finished at the next start',
        );
    }
    segment.open = false;
    const list = this.#byPath.get(segment.path);
    const i = list?.indexOf(segment) ?? -1;
    if (list && i >= 0) list.splice(i, 1);
  }

  /** The file's header and fragments (up to what is written, for the open one). */
  contentsOf(segment: RecordingSegment): Promise<SegmentContents> {
    const cached = this.#contents.get(segment.file);
    if (cached && cached.bytes === segment.bytes) return cached.contents;
    const contents = (async () => {
      const bytes = await this.read(segment, segment.bytes);
      const header = readRecordedHeader(bytes);
      const { fragments, completeEnd } = readRecordedFragments(bytes, header.fragmentsStart);
      return { header, fragments, size: completeEnd };
    })();
    if (!segment.open) {
      this.#contents.set(segment.file, { bytes: segment.bytes, contents });
      contents.catch(() => this.#contents.delete(segment.file));
      while (this.#contents.size > CONTENTS_CACHED) {
        const oldest = this.#contents.keys().next().value as string;
        this.#contents.delete(oldest);
      }
    }
    return contents;
  }

  /** The first `size` bytes of an indexed file (fewer if the file is shorter: the open one as written). */
  async read(segment: RecordingSegment, size: number): Promise<Uint8Array> {
    const handle = await open(segment.file, 'r');
    try {
      const bytes = new Uint8Array(size);
      let at = 0;
      while (at < bytes.length) {
        const { bytesRead } = await handle.read(bytes, at, bytes.length - at, at);
        if (bytesRead === 0) break;
        at += bytesRead;
      }
      return bytes.subarray(0, at);
    } finally {
      await handle.close();
    }
  }

  async #index(path: string, name: string, startMs: number): Promise<RecordingSegment | null> {
    const file = join(this.dirOf(path), name);
    try {
      const size = (await stat(file)).size;
      let head = await this.#readHead(file);
      let bytes = size;
      if (!head || head.header.durationMs === 0) {
        const finished = await finishRecordingFile(file, this.#log);
        if (!finished) return null;
        bytes = finished.bytes;
        head = await this.#readHead(file);
        if (!head) return null;
      }
      const { header, init } = head;
      return {
        path,
        name,
        file,
        startMs: header.wallClockMs ?? startMs,
        durationMs: header.durationMs,
        bytes,
        tracks: header.tracks,
        initKey: initKeyOf(init),
        open: false,
      };
    } catch (err) {
      this.#log.error(
        { file, errno: (err as NodeJS.ErrnoException).code, reason: (err as Error).message },
        'recording could not be read; left as it is',
      );
      return null;
    }
  }

  async #readHead(file: string): Promise<{ header: RecordedHeader; init: Uint8Array } | null> {
    const handle = await open(file, 'r');
    try {
      const head = new Uint8Array(HEADER_READ);
      const { bytesRead } = await handle.read(head, 0, HEADER_READ, 0);
      const header = readRecordedHeader(head.subarray(0, bytesRead));
      return { header, init: head.subarray(0, header.initSize) };
    } catch {
      return null;
    } finally {
      await handle.close();
    }
  }

  /** Folders under record.dir whose relative path is a valid stream path. */
  async #walk(dir: string, segments: string[]): Promise<{ path: string; dir: string }[]> {
    const out: { path: string; dir: string }[] = [];
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return out;
      throw err;
    }
    if (segments.length > 0) out.push({ path: segments.join('/'), dir });
    for (const entry of entries) {
      if (!entry.isDirectory()) continue;
      const next = [...segments, entry.name];
      try {
        parseStreamPath(next.join('/'));
      } catch {
        continue;
      }
      out.push(...(await this.#walk(join(dir, entry.name), next)));
    }
    return out;
  }
}
