/**
 * WebSocket fan-out capacity: one 1 Mbit/s RTMP source, N WebSocket viewers, Subsecond (WebSocket + MSE) side
 * by side with node-media-server v4 (WebSocket-FLV). For each server and each N: a fresh server process, a fresh
 * source, N viewers ramped in from a separate load-generator process, then a few measurement windows over which
 * the server's CPU, memory, event-loop utilisation, frames delivered and delivery delay are taken.
 *
 *   npm run bench:fanout -- [--viewers 10,100,500,1000] [--seconds 15] [--windows 3] [--server subsecond|nms|both]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVER_NODE_FLAGS } from '../../src/cli/nodeFlags.ts';
import type { MseProbe } from './mse-probe.ts';
import { choiceFlag, countsFlag, numberFlag, parseFlags } from './options.ts';
import type { ProbeSample } from './probe.ts';
import {
  ask,
  type Child,
  Children,
  cpuPercent,
  freePort,
  machinePercent,
  portOpen,
  readMachine,
  readProc,
  sleep,
  systemPercent,
  waitUntil,
} from './processes.ts';
import { type ProfileSummary, summarizeProfile } from './profile.ts';
import { printTables, type Summary, summarize } from './report.ts';
import { type Quantiles, windowQuantiles } from './stats.ts';
import { type SourceRates, SpreadMeter, Viewer, type WireFormat } from './Viewer.ts';
import type { GeneratorCommand, RampResult, WindowResult } from './viewers.ts';

export type ServerKind = 'subsecond' | 'nms';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const STREAM = 'live/bench';
const CORES = availableParallelism();
const SOURCE: SourceRates & { size: string; videoBitrate: string; audioBitrate: string; gop: number } = {
  size: '854x480',
  fps: 30,
  sampleRate: 48_000,
  videoBitrate: '1M',
  audioBitrate: '96k',
  gop: 60,
};

/** Send-path experiments mse-probe.ts can apply to Subsecond; `none` is the server as it is. */
const EXPERIMENTS = ['none', 'cork-per-tick', 'audio-rides-video'];

interface Options {
  viewers: number[];
  seconds: number;
  windows: number;
  servers: ServerKind[];
  batch: number;
  batchIntervalMs: number;
  settleSeconds: number;
  /**
   * Send-path experiments for Subsecond (see mse-probe.ts), each its own phase next to the others at every N;
   * '' is the server as it is.
   */
  experiments: string[];
  /** Checkouts of Subsecond to run, each as its own phase (A/B between versions); this one by default. */
  subsecondRoots: string[];
  /** A window in which other processes used more than this (% of one core) is repeated. */
  maxOtherPercent: number;
  /**
   * Node/V8 flags for the server processes instead of each one's own: Subsecond runs with SERVER_NODE_FLAGS (as
   * `npm start` does) and node-media-server with none, unless this is given.
   */
  nodeFlags: string[] | null;
  /** Viewer counts at which the servers run under `node --cpu-prof`. */
  cpuProf: number[];
  out: string;
}

function parseOptions(argv: string[]): Options {
  const values = parseFlags(
    `npm run bench:fanout -- [--viewers 10,100,500,1000] [--seconds 15] [--windows 3] [--server subsecond|nms|both]
                        [--batch 50] [--batch-interval 100] [--settle 3] [--max-other 25]
                        [--cpu-prof 1000] [--experiment none,cork-per-tick,…] [--subsecond-root DIR,…]
                        [--node-flags="--max-semi-space-size=2 …"] [--out FILE.json]`,
    {
      viewers: { type: 'string', default: '10,100,500,1000' },
      seconds: { type: 'string', default: '15' },
      windows: { type: 'string', default: '3' },
      server: { type: 'string', default: 'both' },
      batch: { type: 'string', default: '50' },
      'batch-interval': { type: 'string', default: '100' },
      settle: { type: 'string', default: '3' },
      'cpu-prof': { type: 'string', default: '' },
      'node-flags': { type: 'string' },
      experiment: { type: 'string', default: '' },
      'max-other': { type: 'string', default: '25' },
      'subsecond-root': { type: 'string', default: '' },
      out: { type: 'string' },
    },
    argv,
  );
  const viewers = countsFlag('viewers', values.viewers, 1, 5000);
  const server = choiceFlag('server', values.server, ['subsecond', 'nms', 'both']);
  const experiments = values.experiment ? values.experiment.split(',') : ['none'];
  const unknown = experiments.find((e) => !EXPERIMENTS.includes(e));
  if (unknown !== undefined) {
    throw new Error(`--experiment takes ${EXPERIMENTS.join(', ')} separated by commas, not "${unknown}"`);
  }
  const date = new Date().toISOString().slice(0, 10);
  return {
    viewers,
    seconds: numberFlag('seconds', values.seconds, 2, 300),
    windows: numberFlag('windows', values.windows, 1, 10),
    servers: server === 'both' ? ['subsecond', 'nms'] : [server],
    batch: numberFlag('batch', values.batch, 1, 1000),
    batchIntervalMs: numberFlag('batch-interval', values['batch-interval'], 0, 10_000),
    settleSeconds: numberFlag('settle', values.settle, 0, 60),
    cpuProf: values['cpu-prof'] ? values['cpu-prof'].split(',').map(Number) : [],
    nodeFlags: values['node-flags'] === undefined ? null : values['node-flags'].split(' ').filter(Boolean),
    experiments: experiments.map((e) => (e === 'none' ? '' : e)),
    subsecondRoots: values['subsecond-root']
      ? values['subsecond-root'].split(',').map((dir) => resolve(dir))
      : [REPO.replace(/\/$/, '')],
    maxOtherPercent: numberFlag('max-other', values['max-other'], 0, 1000),
    out: values.out ?? `${REPO}bench/results/fanout-${date}.json`,
  };
}

/** One measurement window: everything is a difference between its start and its end. */
export interface WindowMetrics {
  seconds: number;
  /** Start and end on the monotonic clock in µs (what a .cpuprofile's timestamps use). */
  clockUs: [number, number];
  /**
   * How long the server took to answer the probe at the window's end: a message waiting in its event loop, so
   * a direct reading of how late new input (a join, the RTMP source) is handled.
   */
  probeReplyMs: number;
  /** Event-loop delay over the window (probe.ts, monitorEventLoopDelay at 10 ms resolution). */
  eventLoopDelayMs: { p50: number; p99: number; max: number };
  serverCpuPercent: number;
  /** The kernel's part of serverCpuPercent. */
  serverSystemPercent: number;
  serverElu: number;
  serverRssBytes: number;
  /** process.memoryUsage() inside the server at the window's end, MiB: where RSS goes. */
  serverMemoryMiB: { heapTotal: number; heapUsed: number; external: number; arrayBuffers: number };
  /** (RSS now − RSS with the stream flowing and no viewer) / viewers. */
  memoryPerViewerBytes: number;
  generatorCpuPercent: number;
  ffmpegCpuPercent: number;
  /** The whole machine's CPU in % of one core, and what of it was none of the benchmark's processes. */
  machineCpuPercent: number;
  otherCpuPercent: number;
  /** otherCpuPercent was above --max-other: left out of the medians when enough other windows exist. */
  disturbed: boolean;
  /** Video frames per second ffmpeg reported encoding over the window. */
  sourceVideoFps: number | null;
  viewers: WindowResult;
  /** Subsecond only: the server's delivery delay over this window, from the histogram's buckets. */
  deliveryDelayMs: Quantiles | null;
  /** Subsecond only: fragment counters over the window. */
  mse: { fragmentsSent: number; fragmentsDropped: number; skips: number } | null;
}

export interface PhaseResult {
  server: ServerKind;
  /** The send-path experiment the server ran with (Subsecond only), '' for the server as it is. */
  experiment: string;
  /** Subsecond from another checkout (--subsecond-root): that folder's name; '' for this checkout. */
  label: string;
  /** Fewer undisturbed windows than asked for: the medians include disturbed ones or come from fewer. */
  disturbed: boolean;
  viewers: number;
  idle: { rssBytes: number; cpuPercent: number; elu: number };
  ramp: RampResult;
  windows: WindowMetrics[];
  median: Summary;
  /** Subsecond only: GET /api/v1/server at the end of the phase (since the server started: includes joins). */
  apiSinceStart: { p50: number; p99: number; max: number; samples: number } | null;
  /** When run with --cpu-prof: the server's self time over the windows (profiling slows it: compare with care). */
  profile: (ProfileSummary & { file: string; spanOnly: boolean }) | null;
}

function waitForPort(port: number, child: Child, ms: number): Promise<void> {
  return waitUntil(`${child.name} listening on 127.0.0.1:${port}`, ms, () => portOpen(port), child);
}

/** Resolves once one viewer receives a video frame: the stream is live and flowing through the server. */
async function waitForVideo(url: string, format: WireFormat, ms: number, source: Child): Promise<void> {
  const deadline = performance.now() + ms;
  let last = '';
  while (performance.now() < deadline) {
    if (!source.running) throw new Error(`ffmpeg exited before the stream played:\n${source.tail}`);
    const viewer = new Viewer(url, format, SOURCE, new SpreadMeter());
    const until = performance.now() + 3000;
    while (!viewer.playing && !viewer.closed && performance.now() < until) await sleep(50);
    const playing = viewer.playing;
    last = viewer.error;
    viewer.ws.terminate();
    if (playing) return;
    await sleep(250);
  }
  throw new Error(`no video reached a viewer of ${url} within ${ms} ms (${last || 'no error'})`);
}

/** ffmpeg's `-progress` output: the last reported frame count and when it came. */
class Progress {
  frame = 0;
  at = 0;
  #pending = 0;

  constructor(child: Child) {
    let rest = '';
    child.process.stdout?.on('data', (chunk: Buffer) => {
      const lines = (rest + chunk.toString()).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        if (line.startsWith('frame=')) this.#pending = Number(line.slice(6));
        else if (line.startsWith('progress=')) {
          this.frame = this.#pending;
          this.at = performance.now();
        }
      }
    });
  }

  snapshot(): { frame: number; at: number } {
    return { frame: this.frame, at: this.at };
  }
}

function ffmpegArgs(rtmpUrl: string, maxSeconds: number): string[] {
  const { size, fps, sampleRate, videoBitrate, audioBitrate, gop } = SOURCE;
  return [
    ...['-hide_banner', '-nostats', '-loglevel', 'error', '-progress', 'pipe:1', '-stats_period', '0.5'],
    // One lavfi graph for both tracks: video and audio on one clock (separate lavfi inputs drift under -re).
    ...[
      '-re',
      '-f',
      'lavfi',
      '-i',
      `testsrc2=size=${size}:rate=${fps}[out0];sine=frequency=440:sample_rate=${sampleRate}[out1]`,
    ],
    ...['-t', String(maxSeconds)],
    ...['-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p'],
    ...['-b:v', videoBitrate, '-maxrate', videoBitrate, '-bufsize', videoBitrate],
    ...['-g', String(gop), '-keyint_min', String(gop), '-sc_threshold', '0'],
    ...['-c:a', 'aac', '-b:a', audioBitrate, '-ac', '2'],
    ...['-f', 'flv', rtmpUrl],
  ];
}

/** A source started per phase with identical arguments, so both servers get the same stream. */
function ffmpegCommandForDocs(): string {
  return `ffmpeg ${ffmpegArgs('rtmp://127.0.0.1:PORT/live/bench', 0)
    .map((a) => (a.includes(';') || a.includes('[') ? `"${a}"` : a))
    .join(' ')}`.replace(' -t 0', '');
}

async function sampleProbe(server: Child): Promise<ProbeSample> {
  return ask<ProbeSample>(server, { type: 'sample' }, 'sample', 60_000);
}

/** Readings that do not depend on the server answering. */
function readInstant(server: Child, generator: Child, ffmpeg: Child, progress: Progress) {
  return {
    server: readProc(server.pid),
    gen: readProc(generator.pid),
    ff: readProc(ffmpeg.pid),
    machine: readMachine(),
    clockUs: monotonicUs(),
    source: progress.snapshot(),
  };
}

function elu(from: ProbeSample, to: ProbeSample): number {
  const active = to.elu.active - from.elu.active;
  const idle = to.elu.idle - from.elu.idle;
  return active + idle > 0 ? active / (active + idle) : 0;
}

/** One way of running a server: Subsecond from a checkout with an experiment, or node-media-server. */
interface Variant {
  kind: ServerKind;
  experiment: string;
  /** Subsecond's checkout. */
  root: string;
  /** Shown in the tables: '' for this checkout, else the checkout's folder name. */
  label: string;
}

async function runPhase(
  { kind, experiment, root, label }: Variant,
  n: number,
  options: Options,
  children: Children,
  log: (line: string) => void,
): Promise<PhaseResult> {
  const httpPort = await freePort();
  const rtmpPort = await freePort();
  const stdio: ['ignore', 'pipe', 'pipe', 'ipc'] = ['ignore', 'pipe', 'pipe', 'ipc'];
  const node = process.execPath;
  const profileFile = options.cpuProf.includes(n)
    ? `${kind}${experiment ? `-${experiment}` : ''}-${n}-${Date.now()}.cpuprofile`
    : '';
  const profileDir = join(dirname(options.out), 'profiles');
  const profiling = [
    ...(options.nodeFlags ?? (kind === 'subsecond' ? SERVER_NODE_FLAGS : [])),
    ...(profileFile ? ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-name', profileFile] : []),
  ];
  const server =
    kind === 'subsecond'
      ? children.spawn(
          'subsecond',
          node,
          [
            ...profiling,
            ...['--import', `${REPO}bench/fanout/mse-probe.ts`, `${root}/src/cli/main.ts`, 'serve'],
            ...['--http.host', '127.0.0.1', '--http.port', String(httpPort)],
            ...['--rtmp.host', '127.0.0.1', '--rtmp.port', String(rtmpPort), '--log.level', 'warn'],
          ],
          {
            cwd: root,
            stdio,
            env: { ...process.env, FANOUT_EXPERIMENT: experiment, FANOUT_SUBSECOND_ROOT: root },
          },
        )
      : children.spawn(
          'node-media-server',
          node,
          [
            ...profiling,
            ...['--import', './bench/fanout/probe.ts', 'bench/fanout/nms-server.ts'],
            ...['--rtmp-port', String(rtmpPort), '--http-port', String(httpPort)],
          ],
          { cwd: REPO, stdio },
        );
  server.process.stdout?.resume();
  let generator: Child | null = null;
  let ffmpeg: Child | null = null;
  try {
    await waitForPort(httpPort, server, 20_000);
    await waitForPort(rtmpPort, server, 5_000);
    // ffmpeg stops by itself after this, should this process die without stopping it.
    const phaseBudget = 300 + options.settleSeconds + (options.windows + 3) * (options.seconds + 10);
    ffmpeg = children.spawn(
      'ffmpeg',
      'ffmpeg',
      ffmpegArgs(`rtmp://127.0.0.1:${rtmpPort}/${STREAM}`, phaseBudget),
    );
    const progress = new Progress(ffmpeg);
    const format: WireFormat = kind === 'subsecond' ? 'mse' : 'flv';
    const url =
      kind === 'subsecond'
        ? `ws://127.0.0.1:${httpPort}/mse/${STREAM}`
        : `ws://127.0.0.1:${httpPort}/${STREAM}.flv`;
    await waitForVideo(url, format, 20_000, ffmpeg);
    // Let the GOP cache fill and the first viewer's traces go, then take the zero-viewer baseline.
    await sleep(2000);
    const idleFrom = readProc(server.pid);
    const idleProbeFrom = await sampleProbe(server);
    await sleep(3000);
    const idleTo = readProc(server.pid);
    const idleProbeTo = await sampleProbe(server);
    const idle = {
      rssBytes: idleTo.rssBytes,
      cpuPercent: cpuPercent(idleFrom, idleTo),
      elu: elu(idleProbeFrom, idleProbeTo),
    };
    log(
      `server pid ${server.pid}, source flowing; no viewers: CPU ${idle.cpuPercent.toFixed(1)} %, RSS ${mib(idle.rssBytes)} MiB`,
    );

    generator = children.spawn(
      'viewers',
      node,
      [
        'bench/fanout/viewers.ts',
        ...[
          '--url',
          url,
          '--format',
          format,
          '--fps',
          String(SOURCE.fps),
          '--sample-rate',
          String(SOURCE.sampleRate),
        ],
      ],
      { cwd: REPO, stdio },
    );
    generator.process.stdout?.resume();
    const rampCommand: GeneratorCommand = {
      type: 'ramp',
      count: n,
      batch: options.batch,
      intervalMs: options.batchIntervalMs,
      timeoutMs: 20_000,
    };
    const rampBudget = Math.ceil(n / options.batch) * options.batchIntervalMs + 120_000;
    const ramp = await ask<RampResult>(generator, rampCommand, 'ramped', rampBudget);
    log(
      `${ramp.playing}/${n} viewers playing after ${ramp.seconds.toFixed(1)} s` +
        (ramp.retried ? ` (${ramp.retried} connections retried)` : '') +
        (ramp.failed ? ` (${ramp.failed} failed: ${ramp.firstError})` : ''),
    );
    await sleep(options.settleSeconds * 1000);

    const windows: WindowMetrics[] = [];
    // A window in which other processes took more than --max-other of a core is kept but marked disturbed, and
    // another is run in its place (up to 3 more), so that the medians come from windows with the machine to us.
    const clean = () => windows.filter((m) => !m.disturbed).length;
    for (let w = 1; clean() < options.windows && w <= options.windows + 3; w++) {
      // Instant readings (the generator, /proc, ffmpeg's progress) bound the window; the probe answers through
      // the server's event loop, which is late when the loop is saturated, so it is read after them.
      await ask(generator, { type: 'mark' } satisfies GeneratorCommand, 'marked', 5000);
      const from = readInstant(server, generator, ffmpeg, progress);
      const probeFrom = await sampleProbe(server);
      await sleep(options.seconds * 1000 - (performance.now() - from.server.at));
      const viewers = await ask<WindowResult>(
        generator,
        { type: 'read' } satisfies GeneratorCommand,
        'window',
        30_000,
      );
      const to = readInstant(server, generator, ffmpeg, progress);
      const asked = performance.now();
      const probeTo = await sampleProbe(server);
      const probeReplyMs = performance.now() - asked;
      const seconds = (to.server.at - from.server.at) / 1000;
      const mseFrom = probeFrom.extra.mse as MseProbe | null;
      const mseTo = probeTo.extra.mse as MseProbe | null;
      const metrics: WindowMetrics = {
        seconds,
        clockUs: [from.clockUs, to.clockUs],
        probeReplyMs,
        serverCpuPercent: cpuPercent(from.server, to.server),
        serverSystemPercent: systemPercent(from.server, to.server),
        serverElu: elu(probeFrom, probeTo),
        eventLoopDelayMs: probeTo.loopDelayMs,
        serverRssBytes: to.server.rssBytes,
        serverMemoryMiB: {
          heapTotal: round1(probeTo.memory.heapTotal / 2 ** 20),
          heapUsed: round1(probeTo.memory.heapUsed / 2 ** 20),
          external: round1(probeTo.memory.external / 2 ** 20),
          arrayBuffers: round1(probeTo.memory.arrayBuffers / 2 ** 20),
        },
        memoryPerViewerBytes: (to.server.rssBytes - idle.rssBytes) / n,
        generatorCpuPercent: cpuPercent(from.gen, to.gen),
        ffmpegCpuPercent: cpuPercent(from.ff, to.ff),
        machineCpuPercent: machinePercent(from.machine, to.machine, CORES),
        otherCpuPercent: 0,
        disturbed: false,
        sourceVideoFps:
          to.source.at > from.source.at
            ? ((to.source.frame - from.source.frame) * 1000) / (to.source.at - from.source.at)
            : null,
        viewers,
        deliveryDelayMs: mseFrom && mseTo ? windowQuantiles(mseFrom.delayCounts, mseTo.delayCounts) : null,
        mse:
          mseFrom && mseTo
            ? {
                fragmentsSent: mseTo.fragmentsSent - mseFrom.fragmentsSent,
                fragmentsDropped: mseTo.fragmentsDropped - mseFrom.fragmentsDropped,
                skips: mseTo.skips - mseFrom.skips,
              }
            : null,
      };
      metrics.otherCpuPercent = Math.max(
        0,
        metrics.machineCpuPercent -
          metrics.serverCpuPercent -
          metrics.generatorCpuPercent -
          metrics.ffmpegCpuPercent,
      );
      metrics.disturbed = metrics.otherCpuPercent > options.maxOtherPercent;
      windows.push(metrics);
      log(windowLine(w, metrics));
    }

    let apiSinceStart: PhaseResult['apiSinceStart'] = null;
    if (kind === 'subsecond') {
      const res = await fetch(`http://127.0.0.1:${httpPort}/api/v1/server`, {
        signal: AbortSignal.timeout(30_000),
      });
      const body = (await res.json()) as {
        mse: { deliveryDelayMs: { p50: number; p99: number; max: number; samples: number } };
      };
      apiSinceStart = body.mse.deliveryDelayMs;
    }
    await stopPhase(generator, ffmpeg, server);
    const profile = profileFile ? readProfile(join(profileDir, profileFile), windows) : null;
    return {
      server: kind,
      experiment,
      label,
      viewers: n,
      idle,
      ramp,
      windows,
      median: summarize(clean() > 0 ? windows.filter((m) => !m.disturbed) : windows),
      disturbed: clean() < options.windows,
      apiSinceStart,
      profile,
    };
  } finally {
    await stopPhase(generator, ffmpeg, server);
  }
}

async function stopPhase(generator: Child | null, ffmpeg: Child | null, server: Child): Promise<void> {
  if (generator?.running) {
    await ask(generator, { type: 'stop' } satisfies GeneratorCommand, 'stopped', 5000).catch(() => {});
    await generator.stop();
  }
  await ffmpeg?.stop();
  await server.stop();
}

function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** The profile's self time over the measurement windows (the whole profile if its clock does not match). */
function readProfile(file: string, windows: readonly WindowMetrics[]): PhaseResult['profile'] {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Parameters<typeof summarizeProfile>[0];
  const from = windows[0].clockUs[0];
  const to = windows[windows.length - 1].clockUs[1];
  const spanOnly = from >= profile.startTime && to <= profile.endTime;
  return {
    file,
    spanOnly,
    ...summarizeProfile(profile, spanOnly ? from : 0, spanOnly ? to : Number.POSITIVE_INFINITY, 20),
  };
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

function windowLine(w: number, m: WindowMetrics): string {
  const v = m.viewers;
  const delay = m.deliveryDelayMs
    ? `, delay p50/p99 ${m.deliveryDelayMs.p50}/${m.deliveryDelayMs.p99} ms`
    : '';
  return (
    `window ${w}: CPU ${m.serverCpuPercent.toFixed(1)} % (kernel ${m.serverSystemPercent.toFixed(1)}, ELU ${m.serverElu.toFixed(2)},` +
    ` loop delay p99 ${m.eventLoopDelayMs.p99.toFixed(0)} ms, probe answered in ${m.probeReplyMs.toFixed(0)} ms), RSS ${mib(m.serverRssBytes)} MiB (heap ${m.serverMemoryMiB.heapTotal}, external ${m.serverMemoryMiB.external})` +
    ` (${(m.memoryPerViewerBytes / 1024).toFixed(1)} KiB/viewer), frames/viewer min ${v.frames.min} med ${v.frames.median}` +
    ` of ${v.expectedMedian}, ${v.viewersWithLoss} viewers lost frames${delay}, spread p99 ${v.spreadMs.p99} ms,` +
    ` load generator ${m.generatorCpuPercent.toFixed(0)} %, ffmpeg ${m.ffmpegCpuPercent.toFixed(0)} % at ${m.sourceVideoFps?.toFixed(1)} fps,` +
    ` other processes ${m.otherCpuPercent.toFixed(0)} %${m.disturbed ? ' (disturbed: repeated)' : ''}`
  );
}

function profileLines(p: NonNullable<PhaseResult['profile']>): string {
  const origins = p.origins
    .slice(0, 12)
    .map((o) => `${o.percent.toFixed(1)} % ${o.origin}`)
    .join(', ');
  const functions = p.functions
    .slice(0, 15)
    .map((f) => `    ${f.percent.toFixed(1).padStart(5)} %  ${f.name}  ${f.where}`)
    .join('\n');
  const span = p.spanOnly ? 'the measurement windows' : 'the whole run (clock mismatch)';
  return `CPU profile ${p.file}, self time over ${span} (${p.idlePercent} % idle; shares of busy time):\n  by origin: ${origins}\n  top functions:\n${functions}`;
}

function variants(options: Options): Variant[] {
  const out: Variant[] = [];
  for (const kind of options.servers) {
    if (kind === 'nms') {
      out.push({ kind, experiment: '', root: '', label: '' });
      continue;
    }
    for (const root of options.subsecondRoots) {
      const label = `${root}/` === REPO ? '' : basename(root);
      for (const experiment of options.experiments) out.push({ kind, experiment, root, label });
    }
  }
  return out;
}

/** The commit of a checkout and whether its src/ differs from it, so a result names the code it measured. */
function gitState(dir: string): { commit: string; srcDirty: boolean } | null {
  try {
    const git = (...args: string[]) =>
      execFileSync('git', ['-C', dir, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const commit = git('rev-parse', '--short', 'HEAD').trim();
    const status = git('status', '--porcelain', '--', 'src');
    return { commit, srcDirty: status.trim() !== '' };
  } catch {
    return null;
  }
}

function machine() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  let ffmpeg = '';
  try {
    ffmpeg = execFileSync('ffmpeg', ['-version'], { encoding: 'utf8' }).split('\n')[0];
  } catch {
    ffmpeg = 'unknown';
  }
  return {
    cpus: availableParallelism(),
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    ffmpeg,
  };
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const children = new Children();
  let stopping = false;
  const interrupt = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`\n${signal}: stopping every process this benchmark started\n`);
    children.stopAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', () => interrupt('SIGINT'));
  process.once('SIGTERM', () => interrupt('SIGTERM'));
  process.on('exit', () => children.killAll());

  const phases = variants(options).length * options.viewers.length;
  const perPhase = 17 + options.settleSeconds + options.windows * options.seconds;
  process.stdout.write(
    `fan-out: ${options.servers.join(' and ')} × ${options.viewers.join(', ')} viewers, ${options.windows} windows of ` +
      `${options.seconds} s each; about ${Math.ceil((phases * perPhase) / 60)} min\n`,
  );
  // Other work on the machine takes cores from the server and the load generator; say so before measuring.
  const quietFrom = readMachine();
  await sleep(2000);
  const busyBefore = machinePercent(quietFrom, readMachine(), CORES);
  process.stdout.write(
    busyBefore > 25
      ? `WARNING: the machine is not quiet: ${busyBefore.toFixed(0)} % of a core busy before the run; results will be disturbed\n`
      : `machine quiet: ${busyBefore.toFixed(0)} % of a core busy before the run\n`,
  );
  const started = new Date();
  const gitAtStart = options.subsecondRoots.map(gitState);
  const results: PhaseResult[] = [];
  try {
    for (const n of options.viewers) {
      for (const variant of variants(options)) {
        const { kind, experiment, label } = variant;
        const tag = `[${kind}${experiment ? ` [${experiment}]` : ''}${label ? ` @${label}` : ''} · ${n} viewers]`;
        const result = await runPhase(variant, n, options, children, (line) =>
          process.stdout.write(`${tag} ${line}\n`),
        );
        results.push(result);
        if (result.profile) process.stdout.write(`${tag} ${profileLines(result.profile)}\n`);
      }
    }
  } finally {
    await children.stopAll();
  }
  const report = {
    benchmark: 'fanout',
    date: started.toISOString(),
    command: `npm run bench:fanout -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: { ...machine(), busyBeforeRunPercent: Math.round(busyBefore) },
    source: { ...SOURCE, command: ffmpegCommandForDocs(), note: 'one ffmpeg per phase, identical arguments' },
    options: { ...options, out: undefined },
    subsecond: Object.fromEntries(
      options.subsecondRoots.map((root, i) => [root, { atStart: gitAtStart[i], atEnd: gitState(root) }]),
    ),
    results,
  };
  process.stdout.write(`\n${printTables(results)}\n`);
  options.subsecondRoots.forEach((root, i) => {
    const [a, b] = [gitAtStart[i], gitState(root)];
    if (a && b && (a.commit !== b.commit || a.srcDirty || b.srcDirty)) {
      process.stdout.write(
        `WARNING: ${root} was not one clean commit through the run (${a.commit}${a.srcDirty ? '+changes' : ''} → ${b.commit}${b.srcDirty ? '+changes' : ''})\n`,
      );
    }
  });
  mkdirSync(dirname(options.out), { recursive: true });
  writeFileSync(options.out, `${JSON.stringify(report)}\n`);
  process.stdout.write(`results: ${options.out}\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`bench:fanout: ${err.stack ?? err.message}\n`);
  process.exitCode = 1;
});
