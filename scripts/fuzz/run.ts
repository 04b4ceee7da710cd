/**
 * Mutation fuzzer over every parser (scripts/fuzz/targets.ts): each input is a committed seed
 * (testdata/fuzz/<parser>/) with a few random edits. A crash is an exception other than the parser's typed
 * parse error, or an input that takes longer than --hang-ms; its input is written to the corpus as
 * crash-<hash>.bin. Prints inputs tried and crashes per parser.
 *
 *   npm run fuzz -- --iterations 1000000 [--parsers amf0,sdp] [--seed 1] [--hang-ms 1000]
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { CORPUS_ROOT, corpus, crashOf, TARGETS } from './targets.ts';

const { values } = parseArgs({
  options: {
    iterations: { type: 'string', default: '10000' },
    parsers: { type: 'string', default: '' },
    seed: { type: 'string', default: '1' },
    'hang-ms': { type: 'string', default: '1000' },
  },
});
const iterations = Number(values.iterations);
const hangMs = Number(values['hang-ms']);
if (!Number.isInteger(iterations) || iterations < 1)
  throw new Error(`--iterations must be a positive integer, got ${values.iterations}`);
const wanted = values.parsers ? values.parsers.split(',') : TARGETS.map((t) => t.name);
for (const name of wanted) {
  if (!TARGETS.some((t) => t.name === name)) {
    throw new Error(`--parsers: no parser "${name}"; there are ${TARGETS.map((t) => t.name).join(', ')}`);
  }
}

/** Deterministic PRNG (mulberry32) so a run reproduces from --seed. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff];

/** One to eight edits: byte changes, boundary values, inserted/deleted/duplicated runs, a truncation. */
function mutate(seed: Uint8Array, rand: () => number, other: Uint8Array): Uint8Array {
  let out = Buffer.from(seed);
  const edits = 1 + Math.floor(rand() * 8);
  const at = () => Math.floor(rand() * (out.length + 1));
  const insert = (pos: number, bytes: Uint8Array) => {
    out = Buffer.concat([out.subarray(0, pos), bytes, out.subarray(pos)]);
  };
  for (let e = 0; e < edits; e++) {
    const roll = rand();
    const i = Math.floor(rand() * out.length);
    if (roll < 0.35 && out.length) out[i] = Math.floor(rand() * 256);
    else if (roll < 0.5 && out.length) out[i] = INTERESTING[Math.floor(rand() * INTERESTING.length)];
    else if (roll < 0.6 && out.length) out[i] ^= 1 << Math.floor(rand() * 8);
    else if (roll < 0.7) {
      const bytes = new Uint8Array(1 + Math.floor(rand() * 8));
      for (let k = 0; k < bytes.length; k++) bytes[k] = Math.floor(rand() * 256);
      insert(at(), bytes);
    } else if (roll < 0.8) {
      const start = at();
      out = Buffer.concat([out.subarray(0, start), out.subarray(start + 1 + Math.floor(rand() * 16))]);
    } else if (roll < 0.88 && out.length) {
      const start = at();
      insert(at(), Buffer.from(out.subarray(start, start + 1 + Math.floor(rand() * 32))));
    } else if (roll < 0.94) {
      // Splice in part of another seed of the same parser: structure from one, context from another.
      const start = Math.floor(rand() * other.length);
      insert(at(), other.subarray(start, start + 1 + Math.floor(rand() * 64)));
    } else out = out.subarray(0, at());
  }
  return out.length > seed.length * 2 + 256 ? out.subarray(0, seed.length * 2 + 256) : out;
}

const cpu = cpus()[0]?.model ?? 'unknown CPU';
console.log(
  `fuzzing ${wanted.length} parsers, ${iterations} inputs each, seed ${values.seed}, on ${cpu} (${availableParallelism()} CPUs), Node ${process.version}`,
);
const results: { parser: string; inputs: number; crashes: number; seconds: number; firstCrash?: string }[] =
  [];
for (const target of TARGETS.filter((t) => wanted.includes(t.name))) {
  const seeds = corpus(target.name).map((s) => s.bytes);
  for (const [i, seed] of seeds.entries()) {
    const crash = crashOf(target, seed, hangMs);
    if (crash) console.log(`${target.name}: corpus input ${i} crashes: ${String(crash)}`);
  }
  const rand = prng(Number(values.seed) * 7919 + target.name.length);
  const seen = new Set<string>();
  let crashes = 0;
  let firstCrash: string | undefined;
  const started = performance.now();
  for (let n = 0; n < iterations; n++) {
    const input = mutate(
      seeds[Math.floor(rand() * seeds.length)],
      rand,
      seeds[Math.floor(rand() * seeds.length)],
    );
    const crash = crashOf(target, input, hangMs);
    if (!crash) continue;
    crashes++;
    const what = crash instanceof Error ? `${crash.name}: ${crash.message.slice(0, 120)}` : String(crash);
    // One corpus entry per distinct failure (its message without numbers), not per input.
    const kind = what.replace(/\d+/g, '#');
    if (seen.has(kind)) continue;
    seen.add(kind);
    firstCrash ??= what;
    const hash = createHash('sha1').update(input).digest('hex').slice(0, 12);
    writeFileSync(new URL(`${target.name}/crash-${hash}.bin`, CORPUS_ROOT), input);
    console.log(
      `${target.name}: crash at input ${n}: ${what} -> testdata/fuzz/${target.name}/crash-${hash}.bin`,
    );
    if (crash instanceof Error && crash.stack) console.log(crash.stack.split('\n').slice(1, 4).join('\n'));
  }
  const seconds = (performance.now() - started) / 1000;
  results.push({
    parser: target.name,
    inputs: iterations,
    crashes,
    seconds: Math.round(seconds * 10) / 10,
    firstCrash,
  });
  console.log(`${target.name}: ${iterations} inputs, ${crashes} crashes, ${seconds.toFixed(1)} s`);
}
console.table(results.map(({ firstCrash: _, ...r }) => r));
if (results.some((r) => r.crashes > 0)) process.exitCode = 1;
