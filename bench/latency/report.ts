/** The latency benchmark's outputs: a terminal/markdown table and an SVG chart of the distributions. */
import type { TransportResult } from './measure.ts';

const ms = (v: number | null) => (v === null ? '—' : v.toFixed(0));

export const TABLE_HEADER = [
  'server',
  'transport',
  'source',
  'p50 ms',
  'p90 ms',
  'p99 ms',
  'first frame ms',
  'samples',
  'failed stamps',
  'dropped frames',
];

export interface LabelledResult extends TransportResult {
  /** Which server served it: Subsecond or a peer. */
  server: string;
}

export function tableRows(results: readonly LabelledResult[]): string[][] {
  return results.map((r) => [
    r.server,
    r.transport,
    r.source,
    ms(r.p50),
    ms(r.p90),
    ms(r.p99),
    ms(r.firstFrameMs),
    String(r.samples.length),
    String(r.failed),
    String(r.droppedFrames),
  ]);
}

export function markdownTable(results: readonly LabelledResult[]): string {
  const lines = [
    `| ${TABLE_HEADER.join(' | ')} |`,
    `|${TABLE_HEADER.map((_, i) => (i < 3 ? '---' : '---:')).join('|')}|`,
  ];
  for (const row of tableRows(results)) lines.push(`| ${row.join(' | ')} |`);
  return lines.join('\n');
}

export function terminalTable(results: readonly LabelledResult[]): string {
  const rows = [TABLE_HEADER, ...tableRows(results)];
  const widths = TABLE_HEADER.map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows
    .map((r) => r.map((cell, i) => (i < 3 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  '))
    .join('\n');
}

const escapeXml = (s: string) => s.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * One row per measured transport: a box from p10 to p90 with the median marked, whiskers to p1 and p99, on a
 * shared logarithmic millisecond axis (latencies span 50 ms to several seconds).
 */
export function latencySvg(results: readonly LabelledResult[], caption: string): string {
  const rows = results.filter((r) => r.samples.length > 0);
  const left = 380;
  const right = 40;
  const width = 1100;
  const rowHeight = 34;
  const top = 46;
  const height = top + rows.length * rowHeight + 84;
  const all = rows.flatMap((r) => [r.min ?? 1, r.max ?? 1]);
  const lo = Math.max(1, 10 ** Math.floor(Math.log10(Math.max(1, Math.min(...all, 1000)))));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...all, 100)));
  const x = (v: number) =>
    left +
    ((Math.log10(Math.max(lo, v)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) *
      (width - left - right);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${left}" y="20" font-size="14" font-weight="600">Glass-to-glass latency (ms, log scale): box p10–p90, line median, whiskers p1–p99</text>`,
  ];
  const axisY = top + rows.length * rowHeight + 8;
  for (let decade = lo; decade <= hi; decade *= 10) {
    for (const m of [1, 2, 5]) {
      const v = decade * m;
      if (v > hi) break;
      out.push(`<line x1="${x(v)}" y1="${top - 6}" x2="${x(v)}" y2="${axisY}" stroke="#e5e5e5"/>`);
      out.push(`<text x="${x(v)}" y="${axisY + 16}" text-anchor="middle" fill="#555">${v}</text>`);
    }
  }
  rows.forEach((r, i) => {
    const sorted = [...r.samples].sort((a, b) => a - b);
    const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
    const y = top + i * rowHeight;
    const colour = r.server === 'Subsecond' ? '#2f9e6e' : '#8a8a8a';
    out.push(
      `<text x="${left - 10}" y="${y + 17}" text-anchor="end">${escapeXml(`${r.server} · ${r.transport} (${r.source})`)}</text>`,
    );
    out.push(
      `<line x1="${x(q(0.01))}" y1="${y + 13}" x2="${x(q(0.99))}" y2="${y + 13}" stroke="${colour}"/>`,
    );
    out.push(
      `<rect x="${x(q(0.1))}" y="${y + 4}" width="${Math.max(1, x(q(0.9)) - x(q(0.1)))}" height="18" fill="${colour}" fill-opacity="0.35" stroke="${colour}"/>`,
    );
    out.push(
      `<line x1="${x(q(0.5))}" y1="${y + 2}" x2="${x(q(0.5))}" y2="${y + 24}" stroke="${colour}" stroke-width="3"/>`,
    );
    out.push(`<text x="${x(q(0.99)) + 6}" y="${y + 17}" fill="#333">${q(0.5).toFixed(0)} ms</text>`);
  });
  // The caption on two lines at its last ' · ' before the middle, so it fits the width.
  const cut = caption.lastIndexOf(' · ', Math.ceil(caption.length / 2));
  const lines = cut > 0 ? [caption.slice(0, cut), caption.slice(cut + 3)] : [caption];
  lines.forEach((line, i) => {
    out.push(`<text x="${left}" y="${height - 26 + i * 16}" fill="#555">${escapeXml(line)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
