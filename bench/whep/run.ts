/**
 * WHEP fan-out benchmark: one ~1.5 Mbit/s 30 fps H.264 source (ffmpeg over RTMP, packetized once per stream by
 * the server), N WHEP viewers (node-datachannel peers in a separate process), server CPU (/proc), event-loop
 * utilisation and memory (probe preloaded into the server), packets lost and offer-to-first-RTP at each N.
 *
 *   node bench/whep/run.ts [--viewers 50,100,200] [--window 10]
 */
import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ProbeSample } from '../fanout/probe.ts';
import { Children, cpuPercent, freePort, readProc, sleep, within } from '../fanout/processes.ts';
import { readProcTree } from '../whep-workers/proc.ts';

const ROOT = join(import.meta.dirname, '../..');

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const steps = flag('viewers', '50,100,200').split(',').map(Number);
const windowSeconds = Number(flag('window', '10'));
/** `--workers N`: WHEP viewers in N worker processes (webrtc.workers); server CPU and RSS include them. */
const workers = flag('workers', '0');

interface Report {
  type: 'report';
  viewers: number;
  receiving: number;
  packets: number;
  bytes: number;
  lost: number;
  firstRtpMs: { p50: number; p99: number };
  lateMs: { p50: number; p99: number };
}

function ask<T>(
  child: import('node:child_process').ChildProcess,
  message: object,
  type: string,
  ms = 120_000,
): Promise<T> {
  return within(
    ms,
    `${type} from child`,
    new Promise<T>((resolve, reject) => {
      const onMessage = (reply: { type: string; message?: string }) => {
        if (reply.type === 'error') {
          child.off('message', onMessage);
          reject(new Error(reply.message));
        } else if (reply.type === type) {
          child.off('message', onMessage);
          resolve(reply as T);
        }
      };
      child.on('message', onMessage);
      child.send(message);
    }),
  );
}

/** Packets the server sent to all WHEP viewers so far, from its sessions API. */
async function packetsSent(base: string): Promise<number> {
  const { sessions } = (await (await fetch(`${base}/api/v1/webrtc/sessions`)).json()) as {
    sessions: { tracks?: { packetsSent: number }[] }[];
  };
  return sessions.reduce((a, s) => a + (s.tracks ?? []).reduce((b, t) => b + t.packetsSent, 0), 0);
}

const children = new Children();
process.on('exit', () => children.killAll());

async function main(): Promise<void> {
  const http = await freePort();
  const rtmp = await freePort();
  const udp = await freePort();
  const server = children.spawn(
    'subsecond',
    process.execPath,
    [
      '--import',
      './bench/fanout/probe.ts',
      'src/cli/main.ts',
      'serve',
      ...['--http.host', '127.0.0.1', '--http.port', String(http)],
      ...['--rtmp.host', '127.0.0.1', '--rtmp.port', String(rtmp)],
      ...['--webrtc.udpPort', String(udp), '--log.level', 'warn'],
      // The receivers send no RTCP of their own (see receivers.ts): the server must not free them for it.
      ...['--webrtc.inactivityTimeoutMs', '600000'],
      ...['--webrtc.workers', workers],
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] },
  );
  const base = `http://127.0.0.1:${http}`;
  for (let i = 0; i < 100; i++) {
    if (
      await fetch(`${base}/healthz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    await sleep(100);
  }
  children.spawn('ffmpeg', 'ffmpeg', [
    ...[
      '-hide_banner',
      '-loglevel',
      'error',
      '-re',
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=640x360:rate=30,noise=alls=40:allf=t+u',
    ],
    ...['-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-g', '30', '-pix_fmt', 'yuv420p'],
    // Noise keeps the encoder at its 1.5 Mbit/s cap with real picture data (CBR filler NAL units would be
    // dropped by the packetizer, RFC 6184 has no use for them, and inflate the source figure).
    ...['-b:v', '1500k', '-maxrate', '1500k', '-bufsize', '750k', '-an', '-f', 'flv'],
    `rtmp://127.0.0.1:${rtmp}/bench/whep`,
  ]);
  for (let i = 0; i < 150; i++) {
    const r = await fetch(`${base}/api/v1/streams/bench/whep`);
    if (r.ok && ((await r.json()) as { tracks: unknown[] }).tracks.length > 0) break;
    await sleep(100);
  }
  const receivers = fork(join(import.meta.dirname, 'receivers.ts'), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const rows: Record<string, number | string>[] = [];
  let total = 0;
  for (const n of steps) {
    await ask(receivers, { type: 'add', count: n - total, url: `${base}/whep/bench/whep` }, 'added');
    total = n;
    await sleep(5000);
    const before = await ask<Report>(receivers, { type: 'report' }, 'report');
    const sent0 = await packetsSent(base);
    const p0 = readProcTree(server.pid);
    const r0 = readProc(receivers.pid ?? 0);
    const s0 = await ask<ProbeSample>(server.process, { type: 'sample' }, 'sample');
    await sleep(windowSeconds * 1000);
    const p1 = readProcTree(server.pid);
    const sent1 = await packetsSent(base);
    const r1 = readProc(receivers.pid ?? 0);
    const s1 = await ask<ProbeSample>(server.process, { type: 'sample' }, 'sample');
    const after = await ask<Report>(receivers, { type: 'report' }, 'report');
    const described = (await (await fetch(`${base}/api/v1/streams/bench/whep`)).json()) as {
      bitrate: number;
    };
    const active = s1.elu.active - s0.elu.active;
    const idle = s1.elu.idle - s0.elu.idle;
    const seconds = (p1.at - p0.at) / 1000;
    const packets = after.packets - before.packets;
    const row = {
      viewers: n,
      receiving: after.receiving,
      sourceMbit: Number((described.bitrate / 1e6).toFixed(2)),
      serverCpuPercent: Number(cpuPercent(p0, p1).toFixed(1)),
      cpuPerViewerPercent: Number((cpuPercent(p0, p1) / n).toFixed(3)),
      elu: Number((active / (active + idle)).toFixed(3)),
      rssMiB: Number((p1.rssBytes / 2 ** 20).toFixed(1)),
      sentPacketsPerViewerPerSecond: Math.round((sent1 - sent0) / n / seconds),
      receivedPacketsPerViewerPerSecond: Math.round(packets / n / seconds),
      mbitPerViewer: Number((((after.bytes - before.bytes) * 8) / n / seconds / 1e6).toFixed(2)),
      packetsLost: after.lost - before.lost,
      lossPercent: Number(
        (((after.lost - before.lost) / Math.max(1, packets + after.lost - before.lost)) * 100).toFixed(3),
      ),
      lateMsP50: Math.round(after.lateMs.p50),
      lateMsP99: Math.round(after.lateMs.p99),
      offerToFirstRtpMsP50: Math.round(after.firstRtpMs.p50),
      offerToFirstRtpMsP99: Math.round(after.firstRtpMs.p99),
      loopDelayP99Ms: s1.loopDelayMs.p99,
      receiversCpuPercent: Number(cpuPercent(r0, r1).toFixed(1)),
    };
    rows.push(row);
    console.log(JSON.stringify(row));
  }
  const idleRss =
    rows.length > 1
      ? ((Number(rows.at(-1)?.rssMiB) - Number(rows[0].rssMiB)) * 1024) / (steps.at(-1)! - steps[0])
      : 0;
  console.log(`memory per added viewer: ${idleRss.toFixed(0)} KiB`);
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  const file = join(
    ROOT,
    `bench/results/whep-${new Date().toISOString().slice(0, 16).replace(/:/g, '')}.json`,
  );
  writeFileSync(
    file,
    `${JSON.stringify({ steps: rows, memoryPerViewerKiB: Math.round(idleRss) }, null, 2)}\n`,
  );
  console.log(`results in ${file}`);
  receivers.send({ type: 'close' });
  await sleep(500);
  await children.stopAll();
}

main().catch(async (error: Error) => {
  console.error(`bench failed: ${error.message}`);
  await children.stopAll();
  process.exit(1);
});
