/**
 * What recording costs: N streams at a given bitrate published over RTMP (ffmpeg copying one pre-encoded
 * H.264 + AAC file in real time, so the sources cost little), each measured once with recording off and once
 * with record.enabled, same streams, back to back. Reports the server's CPU (% of one core, from /proc), the
 * difference per stream, the bytes written per stream against the bytes received, and how many streams one
 * core would record at that cost.
 *
 *   npm run bench:record -- [--streams 1,4,8] [--seconds 20] [--bitrate 2500k] [--segment-seconds 60]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Children, cpuPercent, readProc, sleep, startSubsecond, waitForTracks } from '../fanout/processes.ts';

const { values } = parseArgs({
  options: {
    streams: { type: 'string', default: '1,4,8' },
    seconds: { type: 'string', default: '20' },
    bitrate: { type: 'string', default: '2500k' },
    'segment-seconds': { type: 'string', default: '60' },
  },
});
const counts = values.streams.split(',').map(Number);
const seconds = Number(values.seconds);
const WARMUP_MS = 3000;

const children = new Children();
process.on('exit', () => children.killAll());
const work = mkdtempSync(join(tmpdir(), 'subsecond-bench-record-'));
const source = join(work, 'source.flv');

function encodeSource(): void {
  // 12 s, a keyframe every 2 s, looped by the publishers: the bitrate the streams carry.
  execFileSync('ffmpeg', [
    ...[
      '-hide_banner',
      '-loglevel',
      'error',
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=1280x720:rate=30,noise=alls=20:allf=t',
    ],
    ...['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', '12'],
    ...['-c:v', 'libx264', '-preset', 'veryfast', '-g', '60', '-pix_fmt', 'yuv420p'],
    ...['-b:v', values.bitrate, '-maxrate', values.bitrate, '-bufsize', values.bitrate],
    ...['-c:a', 'aac', '-b:a', '128k', '-f', 'flv', source],
  ]);
}

async function scrape(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

interface Run {
  cpu: number;
  bytesIn: number;
  bytesWritten: number;
}

async function measure(n: number, record: boolean): Promise<Run> {
  const dir = join(work, `rec-${n}`);
  const args = record
    ? ['--record.enabled', 'true', '--record.dir', dir, '--record.segmentSeconds', values['segment-seconds']]
    : [];
  const server = await startSubsecond(children, [
    ...args,
    '--webrtc.enabled',
    'false',
    '--hls.enabled',
    'false',
  ]);
  const paths = Array.from({ length: n }, (_, i) => `bench/rec${i}`);
  for (const path of paths) {
    children.spawn('ffmpeg', 'ffmpeg', [
      ...['-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', source],
      ...[
        '-t',
        String(seconds + 15),
        '-c',
        'copy',
        '-f',
        'flv',
        `rtmp://127.0.0.1:${server.rtmpPort}/${path}`,
      ],
    ]);
  }
  for (const path of paths) await waitForTracks(server.base, path);
  await sleep(WARMUP_MS);
  const bytesOf = async () => {
    const { streams } = (await (await fetch(`${server.base}/api/v1/streams`)).json()) as {
      streams: { bytesIn: number }[];
    };
    return streams.reduce((sum, s) => sum + s.bytesIn, 0);
  };
  const [in0, written0, proc0] = [
    await bytesOf(),
    await scrape(server.base, 'subsecond_record_bytes_written_total'),
    readProc(server.child.pid),
  ];
  await sleep(seconds * 1000);
  const proc1 = readProc(server.child.pid);
  const [in1, written1] = [
    await bytesOf(),
    await scrape(server.base, 'subsecond_record_bytes_written_total'),
  ];
  await children.stopAll();
  rmSync(dir, { recursive: true, force: true });
  return { cpu: cpuPercent(proc0, proc1), bytesIn: in1 - in0, bytesWritten: written1 - written0 };
}

try {
  encodeSource();
  process.stdout.write(
    `bench:record on ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${values.bitrate} H.264 1280x720 30 fps + AAC 128k per stream, ${seconds} s per run\n\n`,
  );
  process.stdout.write(
    '| streams | server CPU, off | server CPU, recording | recording per stream | written / received | MB written per stream-minute | streams one core records |\n',
  );
  process.stdout.write('|---:|---:|---:|---:|---:|---:|---:|\n');
  for (const n of counts) {
    const off = await measure(n, false);
    const on = await measure(n, true);
    const perStream = (on.cpu - off.cpu) / n;
    const ratio = on.bytesIn > 0 ? on.bytesWritten / on.bytesIn : 0;
    const mbPerMinute = ((on.bytesWritten / n / seconds) * 60) / 1e6;
    const perCore = perStream > 0 ? Math.floor(100 / perStream) : Number.POSITIVE_INFINITY;
    process.stdout.write(
      `| ${n} | ${off.cpu.toFixed(1)} % | ${on.cpu.toFixed(1)} % | ${perStream.toFixed(2)} % | ${ratio.toFixed(3)} | ${mbPerMinute.toFixed(1)} | ${perCore} |\n`,
    );
  }
} finally {
  await children.stopAll();
  rmSync(work, { recursive: true, force: true });
}
