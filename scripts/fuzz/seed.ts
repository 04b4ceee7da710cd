/**
 * Regenerates the seed corpora under testdata/fuzz/ from real sources: the recorded ffmpeg RTMP publish, the
 * recorded Chromium offers, and FLV, fMP4 and RTP made by ffmpeg's encoders here. Crash inputs the fuzzer
 * found are committed beside them (crash-*) and are kept. Run: node scripts/fuzz/seed.ts
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { buildAvcDecoderConfig } from '../../src/media/h264/avcC.ts';
import { nalusToAvcc, splitAnnexB } from '../../src/media/nalu.ts';
import { Av1Packetizer } from '../../src/media/rtp/av1.ts';
import { H264Packetizer } from '../../src/media/rtp/h264.ts';
import { H265Packetizer } from '../../src/media/rtp/h265.ts';
import { OpusPacketizer } from '../../src/media/rtp/opus.ts';
import { writeRtpPacket } from '../../src/media/rtp/packet.ts';
import type { RtpPayloads } from '../../src/media/rtp/payload.ts';
import {
  writeFir,
  writeNack,
  writePli,
  writeReceiverReport,
  writeRemb,
  writeSdesCname,
  writeSenderReport,
} from '../../src/media/rtp/rtcp.ts';
import { ivfFrames } from '../../src/media/rtp/testing.ts';
import { Vp8Packetizer } from '../../src/media/rtp/vp8.ts';
import { Vp9Packetizer } from '../../src/media/rtp/vp9.ts';
import { ffmpeg } from '../../src/media/testing/ffmpeg.ts';
import { encodeAmf0 } from '../../src/protocols/rtmp/amf0.ts';
import { ChunkReader } from '../../src/protocols/rtmp/chunk.ts';
import { CORPUS_ROOT } from './targets.ts';

const seeds = new Map<string, Map<string, Uint8Array>>();
const add = (parser: string, file: string, bytes: Uint8Array) => {
  if (!seeds.has(parser)) seeds.set(parser, new Map());
  seeds.get(parser)!.set(file, bytes);
};
const lavfi = (source: string, frames: number, codec: string[], format: string) =>
  ffmpeg(['-f', 'lavfi', '-i', source, '-frames:v', String(frames), ...codec, '-f', format, '-']);
const video = 'testsrc2=size=160x120:rate=30';

// RTMP: the recorded ffmpeg publish (connect … sequence headers and frames), and the AMF0 bodies inside it.
const publish = new Uint8Array(
  readFileSync(new URL('../../src/protocols/rtmp/testdata/ffmpeg-publish.bin', import.meta.url)),
);
add('rtmp-chunk', 'ffmpeg-publish.bin', publish.subarray(0, 4096));
let amf = 0;
new ChunkReader({
  onMessage: (m) => {
    if (m.typeId === 20 || m.typeId === 18)
      add('amf0', `ffmpeg-${String(amf++).padStart(2, '0')}-type${m.typeId}.bin`, m.payload);
  },
}).push(publish);
// AMF0 §2.9 references and nesting: an object referring back to an earlier one, to itself (the reference is
// read while the object is still being decoded), a strict array of references, and deep nesting.
const hex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s/g, ''), 'hex'));
add('amf0', 'reference-earlier.bin', hex('03 0001 61 0200 0178 000009 03 0001 62 0700 00 000009'));
add('amf0', 'reference-self.bin', hex('03 0004 73656c66 0700 00 000009'));
add(
  'amf0',
  'reference-array.bin',
  hex('03 0001 61 0040 00000000000000 000009 0a 00000004 0700 00 0700 00 0700 00 0700 00'),
);
add('amf0', 'nesting-deep.bin', new Uint8Array([...Array(40).fill([0x0a, 0, 0, 0, 1]).flat(), 0x05]));
add('amf0', 'ecma-array.bin', encodeAmf0({ duration: 0, width: 320, encoder: 'Lavf' }));

// FLV tags as an RTMP aggregate carries them: the file body after the 9-byte header and PreviousTagSize0.
const flv = ffmpeg([
  '-f',
  'lavfi',
  '-i',
  video,
  '-f',
  'lavfi',
  '-i',
  'sine=frequency=440:sample_rate=48000',
  '-t',
  '0.2',
  '-c:v',
  'libx264',
  '-g',
  '3',
  '-c:a',
  'aac',
  '-f',
  'flv',
  '-',
]);
add('flv-tags', 'ffmpeg-h264-aac.bin', flv.subarray(13, 13 + 6000));

// fMP4 as MSE and CMAF carry it: an init segment and fragments.
const fmp4 = ffmpeg([
  '-f',
  'lavfi',
  '-i',
  video,
  '-f',
  'lavfi',
  '-i',
  'sine=sample_rate=48000',
  '-t',
  '0.2',
  '-c:v',
  'libx264',
  '-g',
  '3',
  '-c:a',
  'aac',
  '-movflags',
  'frag_keyframe+empty_moov+default_base_moof',
  '-f',
  'mp4',
  '-',
]);
add('fmp4', 'ffmpeg-h264-aac.mp4', fmp4.subarray(0, 8000));

// SPS NAL units from libx264 and libx265 at a few sizes and profiles.
const h264 = (size: string, profile: string) =>
  lavfi(`testsrc2=size=${size}:rate=30`, 1, ['-c:v', 'libx264', '-profile:v', profile], 'h264');
for (const [size, profile] of [
  ['160x120', 'baseline'],
  ['1280x720', 'high'],
  ['642x362', 'main'],
]) {
  const sps = splitAnnexB(h264(size, profile)).find((n) => (n[0] & 0x1f) === 7)!;
  add('h264-sps', `x264-${profile}-${size}.bin`, sps);
}
for (const size of ['160x120', '1920x1080']) {
  const hevc = splitAnnexB(
    lavfi(`testsrc2=size=${size}:rate=30`, 1, ['-c:v', 'libx265', '-x265-params', 'log-level=error'], 'hevc'),
  );
  add('h265-sps', `x265-${size}.bin`, hevc.find((n) => ((n[0] >> 1) & 0x3f) === 33)!);
}

// RTP: our packetizers over ffmpeg's encodes, stored length-prefixed (see lengthPrefixed in targets.ts).
function packets(all: RtpPayloads[], ticks: number, payloadType: number): Uint8Array {
  const out: number[] = [];
  let seq = 65530;
  all.forEach((p, i) => {
    p.payloads.forEach((payload, k) => {
      const packet = writeRtpPacket(
        {
          marker: k === p.markerIndex,
          payloadType,
          sequenceNumber: seq++ & 0xffff,
          timestamp: i * ticks,
          ssrc: 0x1234,
        },
        payload,
      );
      out.push(packet.length >> 8, packet.length & 0xff, ...packet);
    });
  });
  return new Uint8Array(out);
}
const x264 = splitAnnexB(lavfi(video, 4, ['-c:v', 'libx264', '-g', '2', '-bf', '0'], 'h264'));
const sps = x264.find((n) => (n[0] & 0x1f) === 7)!;
const pps = x264.find((n) => (n[0] & 0x1f) === 8)!;
const h264Packetizer = new H264Packetizer(buildAvcDecoderConfig([sps], [pps]), { maxPayloadSize: 300 });
const h264Units = x264
  .filter((n) => ![6, 7, 8].includes(n[0] & 0x1f))
  .map((n) => h264Packetizer.packetize(nalusToAvcc([n])));
add('rtp-h264', 'x264.bin', packets(h264Units, 3000, 96));
const x265 = splitAnnexB(
  lavfi(video, 4, ['-c:v', 'libx265', '-x265-params', 'keyint=2:bframes=0:aud=1:log-level=error'], 'hevc'),
);
const hevcUnits: Uint8Array[][] = [];
for (const nal of x265) {
  if (((nal[0] >> 1) & 0x3f) === 35) hevcUnits.push([]);
  else hevcUnits.at(-1)?.push(nal);
}
const h265Packetizer = new H265Packetizer(undefined, { maxPayloadSize: 300 });
add(
  'rtp-h265',
  'x265.bin',
  packets(
    hevcUnits.map((u) => h265Packetizer.packetize(nalusToAvcc(u))),
    3000,
    98,
  ),
);
const vp8 = new Vp8Packetizer({ maxPayloadSize: 300 });
add(
  'rtp-vp8',
  'libvpx.bin',
  packets(
    ivfFrames(lavfi(video, 4, ['-c:v', 'libvpx', '-g', '2'], 'ivf')).map((f) => vp8.packetize(f)),
    3000,
    97,
  ),
);
const vp9 = new Vp9Packetizer({ maxPayloadSize: 300 });
add(
  'rtp-vp9',
  'libvpx-vp9.bin',
  packets(
    ivfFrames(
      lavfi(video, 4, ['-c:v', 'libvpx-vp9', '-g', '2', '-deadline', 'realtime', '-cpu-used', '8'], 'ivf'),
    ).map((f) => vp9.packetize(f)),
    3000,
    99,
  ),
);
const av1 = new Av1Packetizer({ maxPayloadSize: 300 });
const av1Frames = ivfFrames(
  lavfi(video, 4, ['-c:v', 'libaom-av1', '-cpu-used', '8', '-g', '2', '-usage', 'realtime'], 'ivf'),
);
add(
  'rtp-av1',
  'libaom.bin',
  packets(
    av1Frames.map((f) => av1.packetize(f)),
    3000,
    45,
  ),
);
const opus = new OpusPacketizer();
const ogg = ffmpeg([
  '-f',
  'lavfi',
  '-i',
  'sine=sample_rate=48000',
  '-t',
  '0.1',
  '-c:a',
  'libopus',
  '-f',
  'ogg',
  '-',
]);
add(
  'rtp-opus',
  'libopus.bin',
  packets(
    oggPackets(ogg)
      .slice(2, 6)
      .map((p) => opus.packetize(p)),
    960,
    111,
  ),
);
add('rtp', 'x264-first.bin', packets(h264Units.slice(0, 1), 3000, 96).subarray(2, 302));
add(
  'rtp',
  'extensions.bin',
  writeRtpPacket(
    {
      payloadType: 96,
      sequenceNumber: 1,
      timestamp: 2,
      ssrc: 3,
      csrcs: [4],
      extensions: [
        { id: 1, data: Uint8Array.of(1, 2) },
        { id: 3, data: Uint8Array.of(9) },
      ],
      padding: 4,
    },
    Uint8Array.of(0x65, 1, 2),
  ),
);

// RTCP: the compounds a browser sends and we send.
const report = {
  ssrc: 2,
  fractionLost: 1,
  cumulativeLost: 2,
  highestSequence: 3,
  jitter: 4,
  lastSenderReport: 5,
  delaySinceLastSenderReport: 6,
};
add(
  'rtcp',
  'receiver-report-feedback.bin',
  Buffer.concat([
    writeReceiverReport({ ssrc: 1, reports: [report] }),
    writeSdesCname(1, 'chromium'),
    writeNack(1, 2, [1, 2, 3, 40]),
    writePli(1, 2),
    writeFir(1, [{ ssrc: 2, sequenceNumber: 1 }]),
    writeRemb(1, 1e6, [2, 3]),
  ]),
);
add(
  'rtcp',
  'sender-report.bin',
  Buffer.concat([
    writeSenderReport({
      ssrc: 1,
      ntpSeconds: 3900000000,
      ntpFraction: 5,
      rtpTimestamp: 9000,
      packetCount: 10,
      octetCount: 1000,
      reports: [report],
    }),
    writeSdesCname(1, 'subsecond'),
  ]),
);

// SDP: the offers Chromium and libdatachannel made.
const sdpFolder = new URL('../../src/protocols/webrtc/testdata/', import.meta.url);
for (const file of readdirSync(sdpFolder))
  add('sdp', file, new Uint8Array(readFileSync(new URL(file, sdpFolder))));

// Playlist query strings as hls.js and Safari send them (RFC 8216bis §6.2.5).
for (const [file, query] of [
  ['msn-part.txt', '_HLS_msn=12&_HLS_part=3'],
  ['msn-part-skip.txt', '_HLS_msn=4&_HLS_part=0&_HLS_skip=YES'],
  ['skip-v2.txt', '_HLS_skip=v2'],
  ['repeated.txt', '_HLS_msn=1&_HLS_msn=2&other=x'],
])
  add('playlist-query', file, new TextEncoder().encode(query));

for (const [parser, files] of seeds) {
  const folder = new URL(`${parser}/`, CORPUS_ROOT);
  mkdirSync(folder, { recursive: true });
  for (const old of readdirSync(folder)) if (!old.startsWith('crash-')) rmSync(new URL(old, folder));
  for (const [file, bytes] of files) writeFileSync(new URL(file, folder), bytes);
  console.log(`${parser}: ${files.size} seeds`);
}

/** The packets of an Ogg stream (RFC 3533 §6: a page's lacing values, a value under 255 ends a packet). */
function oggPackets(ogg: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let partial: number[] = [];
  for (let pos = 0; pos + 27 <= ogg.length; ) {
    const segments = ogg[pos + 26];
    let body = pos + 27 + segments;
    for (let i = 0; i < segments; i++) {
      const lace = ogg[pos + 27 + i];
      partial.push(...ogg.subarray(body, body + lace));
      body += lace;
      if (lace < 255) {
        out.push(new Uint8Array(partial));
        partial = [];
      }
    }
    pos = body;
  }
  return out;
}
