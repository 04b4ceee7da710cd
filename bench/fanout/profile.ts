/**
 * Where a server spent its CPU: self time by function and by origin, from a V8 `.cpuprofile` (node --cpu-prof).
 * `--from`/`--to` (µs on the profile's clock, which is the monotonic clock process.hrtime reads) keep only the
 * samples taken in that span, e.g. the measurement windows run.ts records.
 *
 *   node bench/fanout/profile.ts FILE.cpuprofile [--from US --to US] [--top 25]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** µs of samples kept, and how much of it the thread was idle (waiting in epoll). */
  totalUs: number;
  idlePercent: number;
  /** Share of the busy (non-idle) samples per function (self time), largest first. */
  functions: { name: string; where: string; percent: number }[];
  /** Share per origin: the runtime's own buckets, node: internals, a package, or a repository folder. */
  origins: { origin: string; percent: number }[];
}

function origin(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native / V8 builtins)';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  const local = /\/(src|bench)\/(.*)\/[^/]+$/.exec(url);
  return local ? `${local[1]}/${local[2]}` : url;
}

export function summarizeProfile(profile: CpuProfile, fromUs = 0, toUs = Number.POSITIVE_INFINITY, top = 25) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  let t = profile.startTime;
  let totalUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    // A sample stands for the interval up to the next one.
    const dt = profile.timeDeltas[i + 1] ?? 0;
    if (t < fromUs || t > toUs) continue;
    selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + dt);
    totalUs += dt;
  }
  const functions = new Map<string, { name: string; where: string; us: number }>();
  const origins = new Map<string, number>();
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    if (functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    const name = functionName || '(anonymous)';
    const where = url
      ? `${url.replace(/^file:\/\/.*?\/(node_modules|src|bench)\//, '$1/')}:${lineNumber + 1}`
      : '';
    const key = `${name} ${where}`;
    const f = functions.get(key) ?? { name, where, us: 0 };
    f.us += us;
    functions.set(key, f);
    const o = origin(url, name);
    origins.set(o, (origins.get(o) ?? 0) + us);
  }
  const busyUs = totalUs - idleUs;
  const percent = (us: number) => (busyUs > 0 ? Math.round((us / busyUs) * 1000) / 10 : 0);
  return {
    totalUs,
    idlePercent: totalUs > 0 ? Math.round((idleUs / totalUs) * 1000) / 10 : 0,
    functions: [...functions.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((f) => ({ name: f.name, where: f.where, percent: percent(f.us) })),
    origins: [...origins.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([o, us]) => ({ origin: o, percent: percent(us) })),
  } satisfies ProfileSummary;
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { from: { type: 'string' }, to: { type: 'string' }, top: { type: 'string', default: '25' } },
  });
  if (positionals.length !== 1)
    throw new Error('usage: profile.ts FILE.cpuprofile [--from US --to US] [--top N]');
  const profile = JSON.parse(readFileSync(positionals[0], 'utf8')) as CpuProfile;
  const s = summarizeProfile(
    profile,
    values.from ? Number(values.from) : 0,
    values.to ? Number(values.to) : Number.POSITIVE_INFINITY,
    Number(values.top),
  );
  process.stdout.write(
    `${(s.totalUs / 1e6).toFixed(1)} s of samples, ${s.idlePercent} % idle\n\nby origin (self time, % of busy time):\n`,
  );
  for (const o of s.origins.filter((o) => o.percent >= 0.5)) {
    process.stdout.write(`  ${o.percent.toFixed(1).padStart(5)} %  ${o.origin}\n`);
  }
  process.stdout.write('\nby function (self time):\n');
  for (const f of s.functions)
    process.stdout.write(`  ${f.percent.toFixed(1).padStart(5)} %  ${f.name}  ${f.where}\n`);
}
