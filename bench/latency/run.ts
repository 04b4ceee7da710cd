/**
 * Glass-to-glass latency of every transport Subsecond serves, measured the same way in a real browser: a
 * time-stamped source (StampedSource: Node renders each frame with the wall-clock time as a barcode and pipes it
 * into ffmpeg, which publishes over RTMP), a headless Chromium viewer per transport on the player page, and the
 * latency of every presented frame read back from the picture (client/latency). The same encode is sent to the
 * peers (node-media-server, nginx-rtmp; bench/latency/peers.ts) and each is played by its usual web player in
 * the same browser. Prints a table with progress while it runs and writes the results as JSON and an SVG chart.
 *
 *   npm run bench:latency -- [--transports webrtc,mse,hls,dash] [--sources rtmp,whip] [--peers nms,nginx] [--floors webrtc,mse]
 *                            [--seconds 20] [--warmup 2] [--size 1280x720] [--fps 30]
 *                            [--bitrate 2500k] [--no-audio] [--server http://host:8080 --rtmp rtmp://host:1935]
 *                            [--out FILE.json] [--svg FILE.svg]
 *
 * Without --server a Subsecond process is started on free loopback ports from this checkout.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SERVER_NODE_FLAGS } from '../../src/cli/nodeFlags.ts';
import { type ChromiumSession, launchChromium } from '../../test/helpers/browser.ts';
import { Children, freePort, sleep } from '../fanout/processes.ts';
import { BenchPages } from './BenchPages.ts';
import { type EncoderDelay, measureEncoderDelay } from './encoderDelay.ts';
import { measureTransport, playerPageUrl } from './measure.ts';
import { type Peer, startNginxRtmp, startNodeMediaServer } from './peers.ts';
import { type LabelledResult, latencySvg, markdownTable, terminalTable } from './report.ts';
import { StampedSource } from './StampedSource.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const STREAM = 'bench/latency';
/** What the player page offers today (`?transport=`); each is measured unless --transports narrows it. */
const TRANSPORTS = ['webrtc', 'mse', 'hls', 'dash'];
/** The stamped sources: ffmpeg over RTMP (every transport) and a browser canvas over WHIP (WebRTC and MSE). */
const SOURCES = ['rtmp', 'whip'];
const WHIP_TRANSPORTS = ['webrtc', 'mse'];
const WHIP_STREAM = 'bench/whip';
/** Peers fed by the same source in the same run (`--peers ''` for none). */
const PEERS = ['nms', 'nginx'];
/** The browser's own floors, measured in the same run (`--floors ''` for none). */
const FLOORS = ['webrtc', 'mse'];

function parseOptions(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      transports: { type: 'string', default: TRANSPORTS.join(',') },
      sources: { type: 'string', default: SOURCES.join(',') },
      peers: { type: 'string', default: PEERS.join(',') },
      floors: { type: 'string', default: FLOORS.join(',') },
      seconds: { type: 'string', default: '20' },
      warmup: { type: 'string', default: '2' },
      size: { type: 'string', default: '1280x720' },
      fps: { type: 'string', default: '30' },
      bitrate: { type: 'string', default: '2500k' },
      'no-audio': { type: 'boolean', default: false },
      server: { type: 'string' },
      rtmp: { type: 'string' },
      out: { type: 'string' },
      svg: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${readUsage()}\n`);
    process.exit(0);
  }
  const transports = values.transports.split(',').filter(Boolean);
  const unknown = transports.find((t) => !TRANSPORTS.includes(t));
  if (unknown !== undefined) throw new Error(`--transports takes ${TRANSPORTS.join(', ')}, not "${unknown}"`);
  const peers = values.peers.split(',').filter(Boolean);
  const unknownPeer = peers.find((p) => !PEERS.includes(p));
  if (unknownPeer !== undefined) throw new Error(`--peers takes ${PEERS.join(', ')}, not "${unknownPeer}"`);
  const sources = values.sources.split(',').filter(Boolean);
  const unknownSource = sources.find((x) => !SOURCES.includes(x));
  if (unknownSource !== undefined)
    throw new Error(`--sources takes ${SOURCES.join(', ')}, not "${unknownSource}"`);
  const floors = values.floors.split(',').filter(Boolean);
  const unknownFloor = floors.find((f) => !FLOORS.includes(f));
  if (unknownFloor !== undefined)
    throw new Error(`--floors takes ${FLOORS.join(', ')}, not "${unknownFloor}"`);
  const size = /^(\d{2,4})x(\d{2,4})$/.exec(values.size);
  if (!size) throw new Error(`--size is WIDTHxHEIGHT, e.g. 1280x720, not "${values.size}"`);
  const number = (name: string, text: string, min: number, max: number) => {
    const n = Number(text);
    if (!(n >= min && n <= max))
      throw new Error(`--${name} must be between ${min} and ${max}, not "${text}"`);
    return n;
  };
  if (!/^\d+k?$/.test(values.bitrate)) throw new Error(`--bitrate is like 2500k, not "${values.bitrate}"`);
  if (values.server && !values.rtmp)
    throw new Error('--server needs --rtmp too: where the stamped source publishes');
  const date = new Date().toISOString().slice(0, 10);
  return {
    transports,
    sources,
    peers,
    floors,
    seconds: number('seconds', values.seconds, 3, 600),
    warmup: number('warmup', values.warmup, 0, 60),
    width: Number(size[1]),
    height: Number(size[2]),
    fps: number('fps', values.fps, 1, 60),
    bitrate: values.bitrate,
    bitrateBps: Number.parseInt(values.bitrate, 10) * (values.bitrate.endsWith('k') ? 1000 : 1),
    audio: !values['no-audio'],
    server: values.server?.replace(/\/$/, ''),
    rtmp: values.rtmp?.replace(/\/$/, ''),
    out: values.out ?? join(REPO, `bench/results/latency-${date}.json`),
    svg: values.svg ?? join(REPO, 'docs/latency.svg'),
  };
}

function readUsage(): string {
  return (
    'npm run bench:latency -- [--transports mse] [--seconds 20] [--warmup 2] [--size 1280x720] [--fps 30]\n' +
    '                          [--bitrate 2500k] [--no-audio] [--server URL --rtmp URL] [--out FILE.json] [--svg FILE.svg]'
  );
}

async function startSubsecond(children: Children): Promise<{ http: string; rtmp: string }> {
  const [httpPort, rtmpPort] = [await freePort(), await freePort()];
  const child = children.spawn('subsecond', process.execPath, [
    ...SERVER_NODE_FLAGS,
    join(REPO, 'src/cli/main.ts'),
    'serve',
    '--http.host',
    '127.0.0.1',
    '--http.port',
    String(httpPort),
    '--rtmp.host',
    '127.0.0.1',
    '--rtmp.port',
    String(rtmpPort),
    '--log.level',
    'warn',
  ]);
  const http = `http://127.0.0.1:${httpPort}`;
  for (let i = 0; i < 100; i++) {
    if (!child.running) throw new Error(`the server exited at start:\n${child.tail}`);
    const ok = await fetch(`${http}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return { http, rtmp: `rtmp://127.0.0.1:${rtmpPort}` };
    await sleep(100);
  }
  throw new Error(`the server did not answer /healthz within 10 s:\n${child.tail}`);
}

/** Waits until `path` is live on the server; `failed` says why the source is gone, if it is. */
async function waitLive(http: string, path: string, failed: () => string | null = () => null): Promise<void> {
  for (let i = 0; i < 150; i++) {
    const reason = failed();
    if (reason) throw new Error(reason);
    const res = await fetch(`${http}/api/v1/streams/${path}`).catch(() => null);
    if (res?.ok) return;
    await sleep(100);
  }
  throw new Error(`${path} did not go live within 15 s`);
}

interface Measurement {
  server: string;
  transport: string;
  /** What fed it: the stamped RTMP source, or the stamped canvas in the viewer's own page. */
  source: string;
  url: string;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const children = new Children();
  process.on('exit', () => children.killAll());
  let browser: ChromiumSession | null = null;
  let source: StampedSource | null = null;
  let pages: BenchPages | null = null;
  const peers: Peer[] = [];
  const notes: string[] = [];
  const results: LabelledResult[] = [];
  let encoder: EncoderDelay | null = null;
  const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'CPU'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.versions.node}`;
  try {
    const server =
      options.server && options.rtmp
        ? { http: options.server, rtmp: options.rtmp }
        : await startSubsecond(children);
    const measurements: Measurement[] = [];
    if (options.sources.includes('rtmp')) {
      for (const transport of options.transports) {
        measurements.push({
          server: 'Subsecond',
          transport,
          source: 'rtmp',
          url: playerPageUrl(server.http, STREAM, transport),
        });
      }
    }
    const whip = options.sources.includes('whip');
    if (whip) {
      for (const transport of options.transports.filter((t) => WHIP_TRANSPORTS.includes(t))) {
        measurements.push({
          server: 'Subsecond',
          transport,
          source: 'whip',
          url: playerPageUrl(server.http, WHIP_STREAM, transport),
        });
      }
    }
    if (whip || options.peers.length > 0 || options.floors.length > 0) pages = await BenchPages.start();
    // The browser alone: what encode, decode and render cost with no server, so each figure can be split.
    for (const floor of options.floors) {
      measurements.push({
        server: 'browser floor',
        transport: floor === 'webrtc' ? 'local peer connection (H.264)' : 'WebCodecs H.264 → fMP4 → MSE',
        source: 'canvas',
        url: `${pages!.url}/source?mode=floor-${floor}&width=${options.width}&height=${options.height}&fps=${options.fps}&bitrate=${options.bitrateBps}`,
      });
    }
    if (options.peers.length > 0 && pages) {
      for (const name of options.peers) {
        try {
          peers.push(name === 'nms' ? await startNodeMediaServer(children) : await startNginxRtmp(children));
        } catch (error) {
          notes.push(`${name}: not measured: ${(error as Error).message.split('\n')[0]}`);
        }
      }
      for (const peer of peers) {
        measurements.push({
          server: peer.server,
          transport: peer.transport,
          source: 'rtmp',
          url: `${pages.url}/viewer?${peer.viewerQuery}`,
        });
        notes.push(`${peer.server}: ${peer.tuning}`);
      }
    }
    const perMeasurement = options.warmup + options.seconds + 5;
    console.log(
      `latency: ${measurements.map((m) => `${m.server} ${m.transport}`).join(', ')} · ${options.width}x${options.height}@${options.fps} ${options.bitrate}${options.audio ? ' + AAC' : ''} · ${options.seconds} s each after ${options.warmup} s warm-up; about ${Math.ceil((perMeasurement * measurements.length + 10) / 60)} min`,
    );
    for (const note of notes) console.log(`  ${note}`);
    // What ffmpeg itself adds before any server sees a frame, with the same settings, measured first.
    encoder = await measureEncoderDelay({
      width: options.width,
      height: options.height,
      fps: options.fps,
      bitrate: options.bitrate,
      audio: options.audio,
      seconds: 8,
    });
    console.log(
      `  ffmpeg's own delay in the RTMP source (stamp → encoded FLV tag out of ffmpeg): p50 ${encoder.p50?.toFixed(0)} ms, p99 ${encoder.p99?.toFixed(0)} ms over ${encoder.samples} frames`,
    );
    source = new StampedSource({
      url: [`${server.rtmp}/${STREAM}`, ...peers.map((p) => p.rtmpUrl)],
      width: options.width,
      height: options.height,
      fps: options.fps,
      bitrate: options.bitrate,
      audio: options.audio,
      seconds: perMeasurement * measurements.length + 60,
    }).start();
    const rtmpSource = source;
    await waitLive(server.http, STREAM, () =>
      rtmpSource.ffmpeg.exitCode !== null
        ? `the stamped source's ffmpeg exited:\n${rtmpSource.stderrText}`
        : null,
    );
    // Classic HLS needs a few segments before a player can start.
    if (peers.length > 0) await sleep(6000);
    browser = await launchChromium();
    if (whip && pages) {
      // The browser publisher stays open for every WHIP-sourced measurement.
      const publisher = await browser.newPage();
      await publisher.goto(
        `${pages.url}/source?mode=whip&url=${encodeURIComponent(`${server.http}/whip/${WHIP_STREAM}`)}&width=${options.width}&height=${options.height}&fps=${options.fps}&bitrate=${options.bitrateBps}`,
      );
      for (let i = 0; i < 100 && !(await publisher.evaluate(() => window.sourceState)); i++) await sleep(100);
      const state = await publisher.evaluate(() => window.sourceState);
      if (state !== 'running')
        throw new Error(`the WHIP publisher page did not start: ${state ?? 'no answer in 10 s'}`);
      await waitLive(server.http, WHIP_STREAM);
    }
    for (const m of measurements) {
      const label = `${m.server} ${m.transport}`;
      const result = await measureTransport({
        browser,
        url: m.url,
        transport: m.transport,
        source: m.source,
        warmupSeconds: options.warmup,
        seconds: options.seconds,
        onProgress: (samples, elapsed) => {
          if (process.stdout.isTTY)
            process.stdout.write(`\r  ${label}: ${elapsed}/${options.seconds} s, ${samples} samples `);
        },
      });
      if (process.stdout.isTTY) process.stdout.write('\r\x1b[K');
      results.push({ ...result, server: m.server });
      console.log(
        result.error
          ? `  ${label}: ${result.error}`
          : `  ${label}: p50 ${result.p50?.toFixed(0)} ms, p99 ${result.p99?.toFixed(0)} ms over ${result.samples.length} frames (${result.failed} stamps failed, played over ${result.playedOver})`,
      );
    }
  } finally {
    await browser?.close();
    await source?.kill();
    await pages?.close();
    for (const peer of peers) await peer.stop().catch(() => {});
    await children.stopAll();
  }
  console.log(`\n${terminalTable(results)}\n\n${markdownTable(results)}\n`);
  const encoderNote = encoder?.p50 != null ? ` · ffmpeg source encode p50 ${encoder.p50.toFixed(0)} ms` : '';
  const caption = `${new Date().toISOString().slice(0, 10)} · ${options.width}x${options.height}@${options.fps} ${options.bitrate}${options.audio ? ' + AAC' : ''}${encoderNote} · ${machine}`;
  mkdirSync(dirname(options.out), { recursive: true });
  writeFileSync(
    options.out,
    `${JSON.stringify({ date: new Date().toISOString(), machine, options, notes, encoder, results }, null, 1)}\n`,
  );
  mkdirSync(dirname(options.svg), { recursive: true });
  writeFileSync(options.svg, latencySvg(results, caption));
  console.log(`results: ${options.out}\nchart: ${options.svg}`);
}

main().catch((error: Error) => {
  console.error(`bench:latency: ${error.message}`);
  process.exitCode = 1;
});
