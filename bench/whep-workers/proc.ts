import { readFileSync } from 'node:fs';
import { type ProcSample, readProc } from '../fanout/processes.ts';

/** Direct children of `pid` (a server's WHEP workers; also an Opus transcoder when the source has AAC). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'latin1')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/**
 * CPU and memory of a process and its direct children together: with `webrtc.workers` the server's WHEP work
 * is spread over child processes. A child that exits between two samples takes its CPU with it.
 */
export function readProcTree(pid: number): ProcSample {
  const samples = [readProc(pid)];
  for (const child of childPids(pid)) {
    try {
      samples.push(readProc(child));
    } catch {
      // exited meanwhile
    }
  }
  return {
    at: samples[0].at,
    cpuSeconds: samples.reduce((a, s) => a + s.cpuSeconds, 0),
    systemSeconds: samples.reduce((a, s) => a + s.systemSeconds, 0),
    rssBytes: samples.reduce((a, s) => a + s.rssBytes, 0),
  };
}
