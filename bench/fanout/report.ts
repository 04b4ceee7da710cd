import type { PhaseResult, ServerKind, WindowMetrics } from './run.ts';
import { maxOf, median } from './stats.ts';

/** A phase in one row: the median over its windows, except losses (worst window and total). */
export interface Summary {
  cpuPercent: number | null;
  systemPercent: number | null;
  elu: number | null;
  rssMiB: number | null;
  memoryPerViewerKiB: number | null;
  /** The largest window's: RSS still grows while V8 sizes its heap to the allocation rate. */
  memoryPerViewerPeakKiB: number | null;
  framesMin: number | null;
  framesMedian: number | null;
  /** Frames the source produced over a viewer's window (median). */
  framesExpected: number | null;
  /** Viewers that missed any frame: the worst window. */
  viewersWithLossWorst: number | null;
  /** Frames missed by all viewers over all windows. */
  framesLostTotal: number;
  skippedMessagesTotal: number;
  delayP50Ms: number | null;
  delayP99Ms: number | null;
  spreadP50Ms: number | null;
  spreadP99Ms: number | null;
  mbitPerViewer: number | null;
  generatorCpuPercent: number | null;
  ffmpegCpuPercent: number | null;
  otherCpuPercent: number | null;
  sourceVideoFps: number | null;
  loopDelayP99Ms: number | null;
}

export function summarize(windows: readonly WindowMetrics[]): Summary {
  const m = (pick: (w: WindowMetrics) => number | null | undefined) => median(windows.map(pick));
  return {
    cpuPercent: m((w) => w.serverCpuPercent),
    systemPercent: m((w) => w.serverSystemPercent),
    elu: m((w) => w.serverElu),
    rssMiB: m((w) => w.serverRssBytes / 2 ** 20),
    memoryPerViewerKiB: m((w) => w.memoryPerViewerBytes / 1024),
    memoryPerViewerPeakKiB: maxOf(windows.map((w) => w.memoryPerViewerBytes / 1024)),
    framesMin: m((w) => w.viewers.frames.min),
    framesMedian: m((w) => w.viewers.frames.median),
    framesExpected: m((w) => w.viewers.expectedMedian),
    viewersWithLossWorst: maxOf(windows.map((w) => w.viewers.viewersWithLoss)),
    framesLostTotal: windows.reduce((sum, w) => sum + w.viewers.framesLost, 0),
    skippedMessagesTotal: windows.reduce((sum, w) => sum + w.viewers.skippedMessages, 0),
    delayP50Ms: m((w) => w.deliveryDelayMs?.p50),
    delayP99Ms: m((w) => w.deliveryDelayMs?.p99),
    spreadP50Ms: m((w) => w.viewers.spreadMs.p50),
    spreadP99Ms: m((w) => w.viewers.spreadMs.p99),
    mbitPerViewer: m((w) => w.viewers.mbitPerViewer),
    generatorCpuPercent: m((w) => w.generatorCpuPercent),
    ffmpegCpuPercent: m((w) => w.ffmpegCpuPercent),
    otherCpuPercent: m((w) => w.otherCpuPercent),
    loopDelayP99Ms: m((w) => w.eventLoopDelayMs.p99),
    sourceVideoFps: m((w) => w.sourceVideoFps),
  };
}

const NAMES: Record<ServerKind, string> = { subsecond: 'Subsecond', nms: 'node-media-server' };

function fixed(n: number | null | undefined, digits: number): string {
  return n === null || n === undefined ? '–' : n.toFixed(digits);
}

/** The rows of the main table, as cells. */
export function resultRows(results: readonly PhaseResult[]): string[][] {
  const header = [
    'server',
    'viewers',
    'CPU % of 1 core (kernel)',
    'ELU',
    'loop delay p99 ms',
    'RSS MiB',
    'KiB/viewer (peak)',
    'frames/viewer min · med (source)',
    'viewers losing frames',
    'delay p50 · p99 ms',
    'spread p50 · p99 ms',
    'Mbit/s/viewer',
    'load gen · other CPU %',
  ];
  const rows = results.map((r) => {
    const s = r.median;
    return [
      NAMES[r.server] +
        (r.experiment ? ` [${r.experiment}]` : '') +
        (r.label ? ` @${r.label}` : '') +
        (r.disturbed ? ' *' : ''),
      String(r.viewers),
      `${fixed(s.cpuPercent, 1)} (${fixed(s.systemPercent, 0)})`,
      fixed(s.elu, 2),
      fixed(s.loopDelayP99Ms, 0),
      fixed(s.rssMiB, 1),
      `${fixed(s.memoryPerViewerKiB, 1)} (${fixed(s.memoryPerViewerPeakKiB, 1)})`,
      `${fixed(s.framesMin, 0)} · ${fixed(s.framesMedian, 0)} (${fixed(s.framesExpected, 0)})`,
      `${fixed(s.viewersWithLossWorst, 0)}`,
      s.delayP50Ms === null ? 'n/a' : `${fixed(s.delayP50Ms, 1)} · ${fixed(s.delayP99Ms, 1)}`,
      `${fixed(s.spreadP50Ms, 1)} · ${fixed(s.spreadP99Ms, 1)}`,
      fixed(s.mbitPerViewer, 2),
      `${fixed(s.generatorCpuPercent, 0)} · ${fixed(s.otherCpuPercent, 0)}`,
    ];
  });
  return [header, ...rows];
}

/** Subsecond ÷ node-media-server, per viewer count, for CPU and memory per viewer. */
export function ratioRows(results: readonly PhaseResult[]): string[][] {
  const rows: string[][] = [
    ['viewers', 'CPU Subsecond/NMS', 'KiB per viewer Subsecond/NMS', 'RSS Subsecond/NMS'],
  ];
  for (const n of [...new Set(results.map((r) => r.viewers))]) {
    // Subsecond as it is: no experiment, and the first --subsecond-root when there are several.
    const a = results.find((r) => r.viewers === n && r.server === 'subsecond' && !r.experiment)?.median;
    const b = results.find((r) => r.viewers === n && r.server === 'nms')?.median;
    if (!a || !b) continue;
    const ratio = (x: number | null, y: number | null) =>
      x !== null && y !== null && y > 0 ? (x / y).toFixed(2) : '–';
    rows.push([
      String(n),
      ratio(a.cpuPercent, b.cpuPercent),
      ratio(a.memoryPerViewerKiB, b.memoryPerViewerKiB),
      ratio(a.rssMiB, b.rssMiB),
    ]);
  }
  return rows;
}

function textTable(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows
    .map((r) => r.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  '))
    .join('\n');
}

/** The markdown form of a table, for docs/benchmarks.md. */
export function markdownTable(rows: string[][]): string {
  const [header, ...body] = rows;
  return [header, header.map((_, i) => (i < 2 ? '---' : '---:')), ...body]
    .map((r) => `| ${r.join(' | ')} |`)
    .join('\n');
}

export function printTables(results: readonly PhaseResult[]): string {
  const ratios = ratioRows(results);
  return [
    'Medians over the undisturbed windows of each phase (viewers losing frames: worst window).',
    ...(results.some((r) => r.disturbed)
      ? ['* fewer undisturbed windows than asked: other processes were busy']
      : []),
    textTable(resultRows(results)),
    ...(ratios.length > 1 ? ['', textTable(ratios)] : []),
    '',
    markdownTable(resultRows(results)),
    ...(ratios.length > 1 ? ['', markdownTable(ratios)] : []),
  ].join('\n');
}
