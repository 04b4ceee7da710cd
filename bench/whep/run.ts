/**
 * WHEP fan-out benchmark: one 1.5 Mbit/s 30 fps H.264 source, N viewers (node-datachannel peers in receiver
 * processes of their own), against Subsecond and against Janus's streaming plugin fed the same RTP.
 *
 *   node bench/whep/run.ts [--viewers 100,200,400] [--server subsecond|janus|both] [--source whip|rtmp]
 *                          [--window 10] [--windows 1] [--per-process 50] [--receivers-nice 10] [--workers 0]
 *                          [--out FILE]
 *
 * Source (source.ts): a libx264 clip sent in a loop at 30 fps with a send-time stamp before each frame;
 * `whip` publishes it to Subsecond over WHIP (PLI → the clip's next IDR) and sends the same packets as plain
 * RTP to Janus; `rtmp` (Subsecond only) is ffmpeg over RTMP instead, packetized by the server (no stamps, so
 * no delivery delay, only the viewers' counts).
 *
 * Per step: after the viewers joined and 5 s of settling, `--windows` windows of `--window` seconds each;
 * server CPU from /proc (all threads), Subsecond's event-loop utilisation from the probe preloaded into it
 * (bench/fanout/probe.ts; on a machine short of CPU it is 1 whenever the server waits to be scheduled),
 * memory per viewer as (RSS − RSS before the first viewer) / N, and from the
 * receivers per viewer: packets, RTP sequence gaps, delivery delay, offer → first RTP / first keyframe.
 */
import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, setPriority } from 'node:os';
import { join } from 'node:path';
import { choiceFlag, countsFlag, numberFlag, parseFlags } from '../fanout/options.ts';
import type { ProbeSample } from '../fanout/probe.ts';
import {
  ask,
  type Child,
  Children,
  cpuPercent,
  freePort,
  machinePercent,
  readMachine,
  readProc,
  sleep,
  startSubsecond,
  waitForTracks,
  waitUntil,
  x264RtmpSourceArgs,
} from '../fanout/processes.ts';
import { quantile, round } from '../fanout/stats.ts';
import { readProcTree } from '../whep-workers/proc.ts';
import { writeJanusConfig } from './janus.ts';
import type { ReceiversReport, ViewerReport } from './receivers.ts';
import { BIND } from './receivers.ts';
import { type Clip, ClipSender, encodeClip, H264_FMTP, VIDEO_PT, WhipClipPublisher } from './source.ts';

const ROOT = join(import.meta.dirname, '../..');
const values = parseFlags(
  `node bench/whep/run.ts [--viewers 100,200,400] [--server subsecond|janus|both] [--source whip|rtmp]
                       [--window 10] [--windows 1] [--per-process 50] [--receivers-nice 10] [--workers 0]
                       [--out FILE]`,
  {
    viewers: { type: 'string', default: '100,200,400' },
    server: { type: 'string', default: 'both' },
    source: { type: 'string', default: 'whip' },
    window: { type: 'string', default: '10' },
    windows: { type: 'string', default: '1' },
    'per-process': { type: 'string', default: '50' },
    'receivers-nice': { type: 'string', default: '10' },
    /** WHEP viewers in N worker processes (webrtc.workers); Subsecond's CPU and RSS include them. */
    workers: { type: 'string', default: '0' },
    out: { type: 'string' },
  },
);
const steps = countsFlag('viewers', values.viewers, 1, Number.POSITIVE_INFINITY, true);
const windowSeconds = numberFlag('window', values.window, 1, 600);
const windowCount = numberFlag('windows', values.windows, 1, 20, true);
const perProcess = numberFlag('per-process', values['per-process'], 1, Number.POSITIVE_INFINITY, true);
const receiversNice = numberFlag('receivers-nice', values['receivers-nice'], 0, 19, true);
const serverFlag = choiceFlag('server', values.server, ['subsecond', 'janus', 'both']);
const servers = serverFlag === 'both' ? ['subsecond', 'janus'] : [serverFlag];
const source = choiceFlag('source', values.source, ['whip', 'rtmp']);

const children = new Children();
process.on('exit', () => children.killAll());

/** Offer → event times of the viewers that joined in a step, ms. */
function p50p99(values: readonly number[]): { p50: number; p99: number } {
  return { p50: Math.round(quantile(values, 0.5)), p99: Math.round(quantile(values, 0.99)) };
}

interface Target {
  name: string;
  server: Child;
  /** Subsecond has the probe; Janus, a C program with threads, has no single event loop to measure. */
  probe: boolean;
  join: { whep?: string; janus?: string };
  sourcePackets: () => number;
  /** The source's worst lateness against its 30 fps schedule since the last call, ms. */
  sourceLateMs: () => number;
  /** PLI/FIR the source was sent (Subsecond asks its WHIP publisher for a keyframe for joining viewers). */
  keyframeRequests: () => number;
  stop: () => Promise<void>;
}

async function startSubsecondTarget(clip: Clip): Promise<Target> {
  const {
    child: server,
    base,
    rtmpPort,
  } = await startSubsecond(children, [
    // The receivers send no RTCP of their own (see receivers.ts): the server must not free them for it.
    ...['--webrtc.inactivityTimeoutMs', '600000'],
    ...['--webrtc.workers', values.workers],
  ]);
  let publisher: WhipClipPublisher | undefined;
  if (source === 'whip') {
    publisher = new WhipClipPublisher(clip, BIND);
    await publisher.publish(`${base}/whip/bench/whep`);
  } else {
    children.spawn('ffmpeg', 'ffmpeg', x264RtmpSourceArgs(`rtmp://127.0.0.1:${rtmpPort}/bench/whep`));
  }
  await waitForTracks(base, 'bench/whep');
  return {
    name: 'subsecond',
    server,
    probe: true,
    join: { whep: `${base}/whep/bench/whep` },
    sourcePackets: () => publisher?.sender.packetsSent ?? 0,
    sourceLateMs: () => publisher?.sender.takeMaxLateMs() ?? 0,
    keyframeRequests: () => publisher?.sender.keyframeRequests ?? 0,
    stop: async () => {
      await publisher?.close();
      await server.stop();
    },
  };
}

async function startJanus(clip: Clip): Promise<Target> {
  if (!BIND) throw new Error('Janus needs a non-loopback IPv4 address on this host for its ICE candidates');
  const http = await freePort();
  const rtpPort = await freePort();
  const config = writeJanusConfig({
    httpPort: http,
    rtpPort,
    iceAddress: BIND,
    videoPt: VIDEO_PT,
    fmtp: H264_FMTP,
  });
  // Janus logs each viewer's ICE and DTLS steps: to a file, since a pipe nobody reads blocks its logger.
  const server = children.spawn('janus', 'janus', config.args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const base = `http://127.0.0.1:${http}`;
  try {
    await waitUntil('Janus /janus/info', 20_000, async () => (await fetch(`${base}/janus/info`)).ok, server);
  } catch (error) {
    throw new Error(`${(error as Error).message}; see Janus's log in ${config.log}`);
  }
  const socket = createSocket('udp4');
  const sender = new ClipSender(clip, (packet) => socket.send(packet, rtpPort, '127.0.0.1'));
  sender.start();
  return {
    name: 'janus',
    server,
    probe: false,
    join: { janus: base },
    sourcePackets: () => sender.packetsSent,
    sourceLateMs: () => sender.takeMaxLateMs(),
    keyframeRequests: () => sender.keyframeRequests,
    stop: async () => {
      sender.stop();
      socket.close();
      await server.stop();
      if (process.env.WHEP_BENCH_KEEP_JANUS_LOG) console.log(`Janus log kept in ${config.log}`);
      else rmSync(config.dir, { recursive: true, force: true });
    },
  };
}

async function report(pool: ChildProcess[]): Promise<{ viewers: ViewerReport[]; delays: number[] }> {
  const replies = await Promise.all(pool.map((c) => ask<ReceiversReport>(c, { type: 'report' }, 'report')));
  return { viewers: replies.flatMap((r) => r.viewers), delays: replies.flatMap((r) => r.delays) };
}

async function measure(target: Target): Promise<Record<string, unknown>> {
  const rows: Record<string, unknown>[] = [];
  const pool: ChildProcess[] = [];
  const counts: number[] = [];
  await sleep(3000);
  const baselineRss = readProcTree(target.server.pid).rssBytes;
  let total = 0;
  for (const n of steps) {
    // Fill the receiver processes in order, --per-process viewers each.
    let toAdd = n - total;
    const firstNew = total;
    while (toAdd > 0) {
      let i = counts.findIndex((c) => c < perProcess);
      if (i < 0) {
        const child = fork(join(import.meta.dirname, 'receivers.ts'), [], {
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        });
        // The load generator yields to the server under test when the machine is short of CPU.
        if (child.pid) setPriority(child.pid, receiversNice);
        pool.push(child);
        counts.push(0);
        i = pool.length - 1;
      }
      const count = Math.min(toAdd, perProcess - counts[i]);
      await ask(pool[i], { type: 'add', count, ...target.join }, 'added');
      counts[i] += count;
      toAdd -= count;
    }
    total = n;
    await sleep(5000);
    for (let w = 0; w < windowCount; w++) {
      target.sourceLateMs();
      const before = await report(pool);
      const m0 = readMachine();
      const p0 = readProcTree(target.server.pid);
      const r0 = pool.map((c) => readProc(c.pid ?? 0));
      const src0 = target.sourcePackets();
      const s0 = target.probe
        ? await ask<ProbeSample>(target.server.process, { type: 'sample' }, 'sample')
        : undefined;
      await sleep(windowSeconds * 1000);
      const p1 = readProcTree(target.server.pid);
      const r1 = pool.map((c) => readProc(c.pid ?? 0));
      const m1 = readMachine();
      const src1 = target.sourcePackets();
      const s1 = target.probe
        ? await ask<ProbeSample>(target.server.process, { type: 'sample' }, 'sample')
        : undefined;
      const after = await report(pool);
      const seconds = (p1.at - p0.at) / 1000;
      // Viewers are reported in join order by each process; the processes in pool order, so indexes match.
      const perViewer = after.viewers.map((v, i) => {
        const b = before.viewers[i];
        return {
          packets: v.packets - b.packets,
          bytes: v.bytes - b.bytes,
          lost: v.lost - b.lost,
          connectedMs: v.connectedMs,
          delayP50: v.delayP50,
          delayP99: v.delayP99,
          frames: v.frames,
          firstRtpMs: v.firstRtpMs,
          firstFrameMs: v.firstFrameMs,
        };
      });
      const joined = perViewer.slice(firstNew);
      const packets = perViewer.reduce((a, v) => a + v.packets, 0);
      const lost = perViewer.reduce((a, v) => a + v.lost, 0);
      const serverCpu = cpuPercent(p0, p1);
      const receiversCpu = r0.reduce((a, r, i) => a + cpuPercent(r, r1[i]), 0);
      const active = s0 && s1 ? s1.elu.active - s0.elu.active : 0;
      const idle = s0 && s1 ? s1.elu.idle - s0.elu.idle : 0;
      const row = {
        server: target.name,
        viewers: n,
        window: w + 1,
        load: loadavg().map((l) => round(l, 2)),
        sourcePacketsPerSecond: Math.round((src1 - src0) / seconds),
        sourceMaxLateMs: round(target.sourceLateMs()),
        sourceKeyframeRequests: target.keyframeRequests(),
        viewersReceiving: perViewer.filter((v) => v.packets > 0).length,
        receivedPacketsPerViewerPerSecond: {
          mean: Math.round(packets / n / seconds),
          min: Math.round(Math.min(...perViewer.map((v) => v.packets)) / seconds),
        },
        mbitPerViewer: round((perViewer.reduce((a, v) => a + v.bytes, 0) * 8) / n / seconds / 1e6, 2),
        packetsLost: lost,
        viewersWithLoss: perViewer.filter((v) => v.lost > 0).length,
        lossPercent: round((lost / Math.max(1, packets + lost)) * 100, 3),
        delayMs: {
          p50: quantile(after.delays, 0.5),
          p99: quantile(after.delays, 0.99),
          max: quantile(after.delays, 1),
          frames: after.delays.length,
          worstViewerP99: Math.max(...perViewer.map((v) => v.delayP99)),
        },
        offerToConnectedMs: p50p99(joined.map((v) => v.connectedMs)),
        offerToFirstRtpMs: p50p99(joined.map((v) => v.firstRtpMs)),
        offerToFirstKeyframeMs: p50p99(joined.map((v) => v.firstFrameMs)),
        serverCpuPercent: round(serverCpu),
        serverCpuPerViewerPercent: round(serverCpu / n, 3),
        serverSystemCpuPercent: round(((p1.systemSeconds - p0.systemSeconds) / seconds) * 100),
        elu: target.probe ? round(active / (active + idle), 3) : null,
        loopDelayP99Ms: s1?.loopDelayMs.p99 ?? null,
        serverRssMiB: round(p1.rssBytes / 2 ** 20),
        memoryPerViewerKiB: Math.round((p1.rssBytes - baselineRss) / 1024 / n),
        receiverProcesses: pool.length,
        receiversCpuPercent: round(receiversCpu),
        machineCpuPercent: round(machinePercent(m0, m1, cpus().length)),
        perViewer,
      };
      rows.push(row);
      const { perViewer: _, ...summary } = row;
      console.log(JSON.stringify(summary));
    }
  }
  for (const c of pool) c.send({ type: 'close' });
  await sleep(800);
  return { server: target.name, baselineRssMiB: round(baselineRss / 2 ** 20), steps: rows };
}

/** `janus --version` prints its version, then exits with status 1. */
function janusVersion(): string {
  try {
    return execFileSync('janus', ['--version']).toString().split('\n')[0];
  } catch (error) {
    return String((error as { stdout?: Buffer }).stdout ?? '').split('\n')[0];
  }
}

async function main(): Promise<void> {
  const clip = encodeClip(10);
  console.log(`clip: ${clip.frames.length} frames, ${round(clip.bitrate / 1e6, 2)} Mbit/s of RTP payload`);
  const results: Record<string, unknown>[] = [];
  for (const name of servers) {
    const target = name === 'janus' ? await startJanus(clip) : await startSubsecondTarget(clip);
    try {
      results.push(await measure(target));
    } finally {
      await target.stop();
    }
  }
  const file =
    values.out ??
    join(ROOT, `bench/results/whep-${new Date().toISOString().slice(0, 16).replace(/:/g, '')}.json`);
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        node: process.version,
        janus: servers.includes('janus') ? janusVersion() : null,
        cpus: cpus().length,
        cpu: cpus()[0]?.model,
        options: values,
        source: { kind: source, ffmpeg: ['ffmpeg', ...clip.args].join(' '), bitrate: clip.bitrate },
        results,
      },
      null,
      1,
    )}\n`,
  );
  console.log(`results in ${file}`);
  await children.stopAll();
  process.exit(0);
}

main().catch(async (error: Error) => {
  console.error(`bench failed: ${error.stack ?? error.message}`);
  await children.stopAll();
  process.exit(1);
});
