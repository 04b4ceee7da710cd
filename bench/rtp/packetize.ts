/**
 * Cost of the RTP payload code on the WHEP send path and the WHIP receive path, single-threaded, no I/O:
 * H.264 access units packetized (once per stream), packets copied with a per-viewer header rewrite (once per
 * viewer), and packets depacketized back into access units (once per WHIP stream with a frame consumer).
 * The input is a real libx264 encode at the fan-out benchmark's target rate (1280x720, 30 fps, 1.5 Mbit/s).
 *
 *   node bench/rtp/packetize.ts [--seconds 2] [--windows 5] [--out bench/results/rtp-packetize-<date>.json]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildAvcDecoderConfig } from '../../src/media/h264/avcC.ts';
import { nalusToAvcc, splitAnnexB } from '../../src/media/nalu.ts';
import { H264Depacketizer, H264Packetizer } from '../../src/media/rtp/h264.ts';
import { copyRtpWithRewrite, parseRtpPacket, writeRtpPacket } from '../../src/media/rtp/packet.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '2' },
    windows: { type: 'string', default: '5' },
    out: { type: 'string' },
  },
});
const windowMs = Number(values.seconds) * 1000;
const windows = Number(values.windows);

const SOURCE = [
  '-f',
  'lavfi',
  '-i',
  'testsrc2=size=1280x720:rate=30',
  '-frames:v',
  '300',
  '-c:v',
  'libx264',
  '-preset',
  'veryfast',
  '-tune',
  'zerolatency',
  '-b:v',
  '1500k',
  '-maxrate',
  '1500k',
  '-bufsize',
  '1500k',
  '-g',
  '60',
  '-bf',
  '0',
  '-x264-params',
  'aud=1',
  '-f',
  'h264',
  '-',
];
const annexB = new Uint8Array(
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', ...SOURCE], {
    maxBuffer: 64 * 1024 * 1024,
  }),
);
const units: Uint8Array[][] = [];
for (const nal of splitAnnexB(annexB)) {
  const type = nal[0] & 0x1f;
  if (type === 9) units.push([]);
  else if (type !== 7 && type !== 8) units.at(-1)!.push(nal);
}
const nalus = splitAnnexB(annexB);
const avcC = buildAvcDecoderConfig(
  [nalus.find((n) => (n[0] & 0x1f) === 7)!],
  [nalus.find((n) => (n[0] & 0x1f) === 8)!],
);
const frames = units.map((u) => nalusToAvcc(u));
const keyframes = units.map((u) => u.some((n) => (n[0] & 0x1f) === 5));
const bytes = frames.reduce((s, f) => s + f.length, 0);

const packetizer = new H264Packetizer(avcC);
let seq = 0;
const packets: Uint8Array[] = [];
frames.forEach((f, i) => {
  const { payloads, markerIndex } = packetizer.packetize(f, keyframes[i]);
  payloads.forEach((payload, k) => {
    packets.push(
      writeRtpPacket(
        {
          marker: k === markerIndex,
          payloadType: 96,
          sequenceNumber: seq++ & 0xffff,
          timestamp: i * 3000,
          ssrc: 1,
        },
        payload,
      ),
    );
  });
});
const parsed = packets.map(parseRtpPacket);

/** Runs `body` (one pass over the input, returning the units it handled) for `windowMs`; units per second. */
function rate(body: () => number): number {
  const end = performance.now() + windowMs;
  let units = 0;
  const start = performance.now();
  while (performance.now() < end) units += body();
  return units / ((performance.now() - start) / 1000);
}

function measure(name: string, unit: string, body: () => number) {
  rate(body); // warm-up window: JIT, caches
  const rates: number[] = [];
  for (let w = 0; w < windows; w++) rates.push(rate(body));
  rates.sort((a, b) => a - b);
  const median = rates[Math.floor(rates.length / 2)];
  console.log(
    `${name.padEnd(44)} ${Math.round(median).toLocaleString('en').padStart(12)} ${unit}/s  (min ${Math.round(rates[0]).toLocaleString('en')}, max ${Math.round(rates.at(-1)!).toLocaleString('en')})`,
  );
  return { name, unit, median, min: rates[0], max: rates.at(-1)!, windows: rates };
}

const viewerBuffer = new Uint8Array(1500);
/** Every measured result feeds this, so the optimizer cannot drop the work as unused. */
let sink = 0;
const results = [
  measure('H.264 packetize (AVCC access unit -> payloads)', 'frames', () => {
    for (let i = 0; i < frames.length; i++)
      sink += packetizer.packetize(frames[i], keyframes[i]).payloads.length;
    return frames.length;
  }),
  measure('H.264 packetize + write RTP packets', 'frames', () => {
    let s = 0;
    for (let i = 0; i < frames.length; i++) {
      const { payloads, markerIndex } = packetizer.packetize(frames[i], keyframes[i]);
      for (let k = 0; k < payloads.length; k++) {
        writeRtpPacket(
          {
            marker: k === markerIndex,
            payloadType: 96,
            sequenceNumber: s++ & 0xffff,
            timestamp: i * 3000,
            ssrc: 1,
          },
          payloads[k],
        );
      }
    }
    return frames.length;
  }),
  measure('per-viewer copy + header rewrite', 'packets', () => {
    for (let i = 0; i < packets.length; i++)
      copyRtpWithRewrite(packets[i], viewerBuffer, 102, i, i * 7, 0xabcdef);
    return packets.length;
  }),
  measure('RTP parse', 'packets', () => {
    for (let i = 0; i < packets.length; i++) {
      const p = parseRtpPacket(packets[i]);
      sink += p.sequenceNumber + p.payload.length;
    }
    return packets.length;
  }),
  measure('H.264 depacketize (parsed packets -> AVCC)', 'frames', () => {
    const d = new H264Depacketizer();
    let n = 0;
    for (let i = 0; i < parsed.length; i++) {
      const frame = d.push(parsed[i]).frame;
      if (frame) {
        n++;
        sink += frame.data.length;
      }
    }
    if (n !== frames.length) throw new Error(`depacketized ${n} of ${frames.length} frames`);
    return n;
  }),
];

const secondsOfVideo = frames.length / 30;
const report = {
  date: new Date().toISOString(),
  node: process.version,
  cpu: cpus()[0]?.model,
  command: `node bench/rtp/packetize.ts --seconds ${values.seconds} --windows ${values.windows}`,
  source: {
    ffmpeg: SOURCE.join(' '),
    frames: frames.length,
    keyframes: keyframes.filter(Boolean).length,
    bitrate: Math.round((bytes * 8) / secondsOfVideo),
    packets: packets.length,
    packetsPerFrame: packets.length / frames.length,
  },
  results,
};
console.log(
  `source: ${frames.length} frames, ${Math.round(report.source.bitrate / 1000)} kbit/s, ${packets.length} packets (${report.source.packetsPerFrame.toFixed(1)} per frame)`,
);
const out = resolve(values.out ?? `${REPO}bench/results/rtp-packetize-${report.date.slice(0, 10)}.json`);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
console.log(`wrote ${out} (sink ${sink > 0})`);
