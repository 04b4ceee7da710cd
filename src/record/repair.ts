import { open, readFile, truncate, unlink } from 'node:fs/promises';
import type { Logger } from '../core/log.ts';
import {
  fragmentsDurationMs,
  type RecordedHeader,
  readRecordedFragments,
  readRecordedHeader,
} from './RecordingFile.ts';

export interface FinishedFile {
  readonly header: RecordedHeader;
  readonly durationMs: number;
  readonly bytes: number;
}

/** The 4 bytes of an mvhd duration: milliseconds, at least 1 so a finished file never reads as unfinished. */
export function durationField(durationMs: number): Uint8Array {
  const ms = Math.min(0xffffffff, Math.max(1, Math.round(durationMs)));
  return new Uint8Array([ms >>> 24, (ms >>> 16) & 0xff, (ms >>> 8) & 0xff, ms & 0xff]);
}

/**
 * Finishes a file whose writer stopped without finishing it (killed, a write error): cuts it after its last
 * complete fragment and writes its duration. A file without one complete fragment holds nothing playable; it
 * is removed, and said so. Returns null when the file was removed.
 */
export async function finishRecordingFile(file: string, log: Logger): Promise<FinishedFile | null> {
  const bytes = await readFile(file);
  let header: RecordedHeader;
  try {
    header = readRecordedHeader(bytes);
  } catch (err) {
    log.warn({ file, reason: (err as Error).message }, 'recording has no complete header: removed');
    await unlink(file);
    return null;
  }
  const { fragments, completeEnd } = readRecordedFragments(bytes, header.fragmentsStart);
  if (fragments.length === 0) {
    log.warn({ file }, 'recording holds no complete fragment: removed');
    await unlink(file);
    return null;
  }
  if (completeEnd < bytes.length) {
    await truncate(file, completeEnd);
    log.warn(
      { file, bytes: bytes.length, kept: completeEnd },
      'recording was cut short: truncated after its last complete fragment',
    );
  }
  const durationMs = fragmentsDurationMs(header.tracks, fragments);
  const handle = await open(file, 'r+');
  try {
    await handle.write(durationField(durationMs), 0, 4, header.durationOffset);
    await handle.sync();
  } finally {
    await handle.close();
  }
  log.info({ file, durationMs }, 'unfinished recording finished');
  return { header: { ...header, durationMs }, durationMs, bytes: completeEnd };
}
