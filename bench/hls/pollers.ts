/**
 * Load generator (its own process, so its CPU is not the server's): N LL-HLS clients that behave like hls.js
 * at the live edge: a blocking playlist request for the part after the last one, then a GET of that part, in a
 * loop. Prints one JSON line with what it measured, in a form that several generators' lines merge into one
 * (run.ts --generators: latency histograms by bucket, per part the wall time its first and last client saw it).
 *
 *   node bench/hls/pollers.ts <media playlist URL> <clients> <seconds> [ll|classic]
 *
 * `classic`: a plain live HLS client instead (for servers without LL-HLS): reload the playlist once per target
 * duration and GET every segment not fetched yet.
 */
import { Agent, get } from 'node:http';
import { DelayHistogram } from '../../src/core/DelayHistogram.ts';

const [url, clientsArg, secondsArg, mode = 'll'] = process.argv.slice(2);
const clients = Number(clientsArg);
const seconds = Number(secondsArg);
if (!url || !(clients > 0) || !(seconds > 0)) {
  console.error('usage: node bench/hls/pollers.ts <media playlist URL> <clients> <seconds>');
  process.exit(2);
}

const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
const base = url.slice(0, url.lastIndexOf('/') + 1);

function fetchText(target: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = get(target, { agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(20_000, () => req.destroy(new Error(`timeout on ${target}`)));
  });
}

/** The last complete part of the playlist: its segment's MSN, index and URI. */
function lastPart(text: string): { msn: number; index: number; uri: string } | null {
  const sequence = Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(text)?.[1] ?? Number.NaN);
  let msn = sequence;
  let index = -1;
  let uri = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('#EXT-X-PART:')) {
      index++;
      uri = /URI="([^"]+)"/.exec(line)?.[1] ?? '';
    } else if (line.length > 0 && !line.startsWith('#')) {
      msn++;
      index = -1;
    }
  }
  if (Number.isNaN(msn)) return null;
  // A segment just completed and the next has no part yet: ask for its part 0 (uri is the previous part's).
  return { msn, index, uri };
}

let playlists = 0;
let parts = 0;
let errors = 0;
let bytes = 0;
const partLatency = new DelayHistogram();
/** Per part URI: when (wall ms, comparable across generator processes) the first and the last client learned of it. */
const seen = new Map<string, { first: number; last: number; count: number }>();
const deadline = performance.now() + seconds * 1000;

/** Plain live HLS: poll, fetch what is new, wait a target duration. */
async function classicClient(): Promise<void> {
  const fetched = new Set<string>();
  for (let i = 0; i < 1_000_000 && performance.now() < deadline; i++) {
    const polled = performance.now();
    let text = '';
    try {
      const res = await fetchText(url);
      if (res.status !== 200) throw new Error(`playlist ${res.status}`);
      text = res.body.toString();
      playlists++;
    } catch {
      errors++;
    }
    const target = Number(/#EXT-X-TARGETDURATION:(\d+)/.exec(text)?.[1] ?? 1);
    const uris = text.split('\n').filter((l) => l.length > 0 && !l.startsWith('#'));
    // A new client starts at the live edge (hls.js: three segments back); later ones take whatever is new.
    for (const uri of fetched.size === 0 ? uris.slice(-3) : uris) {
      if (fetched.has(uri)) continue;
      fetched.add(uri);
      const started = performance.now();
      try {
        const res = await fetchText(base + uri);
        if (res.status !== 200) throw new Error(`segment ${res.status}`);
        bytes += res.body.length;
        parts++;
        partLatency.record(performance.now() - started);
      } catch {
        errors++;
      }
    }
    const wait = target * 1000 - (performance.now() - polled);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
}

async function client(): Promise<void> {
  let state: { msn: number; index: number } | null = null;
  for (let i = 0; i < 1_000_000 && performance.now() < deadline; i++) {
    const query = state ? `?_HLS_msn=${state.msn}&_HLS_part=${state.index + 1}` : '';
    let text: string;
    try {
      const res = await fetchText(`${url}${query}`);
      if (res.status !== 200) throw new Error(`playlist ${res.status}`);
      text = res.body.toString();
      playlists++;
    } catch {
      errors++;
      state = null;
      await new Promise((r) => setTimeout(r, 200));
      continue;
    }
    const now = performance.timeOrigin + performance.now();
    const last = lastPart(text);
    if (!last) continue;
    state = last;
    if (last.index < 0) continue;
    const mark = seen.get(last.uri);
    if (mark) {
      mark.last = now;
      mark.count++;
    } else seen.set(last.uri, { first: now, last: now, count: 1 });
    const started = performance.now();
    try {
      const res = await fetchText(base + last.uri);
      if (res.status !== 200) throw new Error(`part ${res.status}`);
      bytes += res.body.length;
      parts++;
      partLatency.record(performance.now() - started);
    } catch {
      errors++;
    }
  }
}

const started = performance.now();
const cpuBefore = process.cpuUsage();
// Spread the joins over a second, as real viewers do not arrive in one tick.
await Promise.all(
  Array.from({ length: clients }, (_, i) =>
    new Promise((r) => setTimeout(r, (i * 1000) / clients)).then(mode === 'classic' ? classicClient : client),
  ),
);
const elapsed = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpuBefore);
/** Non-empty buckets only: [index, count] pairs. */
const buckets = (h: DelayHistogram) => [...h.counts.entries()].filter(([, n]) => n > 0);
console.log(
  JSON.stringify({
    clients,
    seconds: elapsed,
    cpuPercent: ((cpu.user + cpu.system) / 1e6 / elapsed) * 100,
    playlists,
    parts,
    errors,
    bytes,
    responsesPerSecond: (playlists + parts) / elapsed,
    partFetchMs: { p50: partLatency.quantile(0.5), p99: partLatency.quantile(0.99) },
    partFetchBuckets: buckets(partLatency),
    partFetchMaxMs: partLatency.max,
    seen: [...seen.entries()].map(([uri, m]) => [uri, m.first, m.last, m.count]),
  }),
);
agent.destroy();
