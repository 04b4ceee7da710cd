import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MediaParseError } from '../../src/media/errors.ts';
import { parseAudioTag } from '../../src/media/flv/audio.ts';
import { parseFlvTags } from '../../src/media/flv/tag.ts';
import { parseVideoTag } from '../../src/media/flv/video.ts';
import {
  findAllBoxes,
  parseEsds,
  parseMdhd,
  parseMfhd,
  parseMvhd,
  parseStsd,
  parseTfdt,
  parseTfhd,
  parseTkhd,
  parseTrex,
  parseTrun,
  readBoxes,
  readFragmentSamples,
} from '../../src/media/fmp4/reader.ts';
import { parseH264Sps } from '../../src/media/h264/sps.ts';
import { parseHevcSps } from '../../src/media/h265/hvcC.ts';
import { Av1Depacketizer } from '../../src/media/rtp/av1.ts';
import { H264Depacketizer } from '../../src/media/rtp/h264.ts';
import { H265Depacketizer } from '../../src/media/rtp/h265.ts';
import { OpusDepacketizer } from '../../src/media/rtp/opus.ts';
import { parseRtpPacket } from '../../src/media/rtp/packet.ts';
import type { Depacketizer } from '../../src/media/rtp/payload.ts';
import { parseRtcp } from '../../src/media/rtp/rtcp.ts';
import { Vp8Depacketizer } from '../../src/media/rtp/vp8.ts';
import { Vp9Depacketizer } from '../../src/media/rtp/vp9.ts';
import { HlsRequestError } from '../../src/protocols/hls/HlsPackager.ts';
import { parseBlockingQuery } from '../../src/protocols/hls/HlsServer.ts';
import { decodeAmf0Sequence } from '../../src/protocols/rtmp/amf0.ts';
import { ChunkReader } from '../../src/protocols/rtmp/chunk.ts';
import { RtmpProtocolError } from '../../src/protocols/rtmp/errors.ts';
import { SdpError, summarizeOffer } from '../../src/protocols/webrtc/sdp.ts';

/** Root of the committed corpora: testdata/fuzz/<parser>/<seed>. */
export const CORPUS_ROOT = new URL('../../testdata/fuzz/', import.meta.url);

export interface FuzzTarget {
  /** Also the corpus folder's name. */
  readonly name: string;
  /** Parses one input the way the server meets it; throws what the parser throws. */
  readonly run: (input: Uint8Array) => void;
  /** The parser's own typed error: any other exception is a crash. */
  readonly parseErrors: readonly (abstract new (
    ...args: never[]
  ) => Error)[];
}

/**
 * Packet sequences for depacketizers are stored as 2-byte big-endian lengths each followed by one RTP packet,
 * so a mutation can damage a packet, a length (splitting or merging packets) or drop the tail of the stream.
 */
export function* lengthPrefixed(input: Uint8Array): Generator<Uint8Array> {
  let pos = 0;
  while (pos + 2 <= input.length) {
    const length = (input[pos] << 8) | input[pos + 1];
    pos += 2;
    yield input.subarray(pos, Math.min(pos + length, input.length));
    pos += length;
  }
}

function depacketize(make: () => Depacketizer): (input: Uint8Array) => void {
  return (input) => {
    const depacketizer = make();
    for (const bytes of lengthPrefixed(input)) {
      let packet: ReturnType<typeof parseRtpPacket>;
      try {
        packet = parseRtpPacket(bytes);
      } catch (err) {
        if (err instanceof MediaParseError) continue;
        throw err;
      }
      const result = depacketizer.push(packet);
      // A depacketizer reports damage in its result and never throws; a wrong error type is a crash too.
      if (result.error && !(result.error instanceof MediaParseError)) throw result.error;
    }
  };
}

const decoder = new TextDecoder();
const SDP_PREFERENCE = { video: ['h264', 'vp8', 'vp9', 'av1', 'h265'] };

export const TARGETS: readonly FuzzTarget[] = [
  {
    name: 'rtmp-chunk',
    // The byte stream after the handshake, fed in two pieces so a split header is exercised too.
    run: (input) => {
      const reader = new ChunkReader({ onMessage: () => {}, maxMessageSize: 1 << 20 });
      const cut = input.length >> 1;
      reader.push(input.subarray(0, cut));
      reader.push(input.subarray(cut));
    },
    parseErrors: [RtmpProtocolError],
  },
  { name: 'amf0', run: (input) => void decodeAmf0Sequence(input), parseErrors: [RtmpProtocolError] },
  {
    name: 'flv-tags',
    run: (input) => {
      for (const tag of parseFlvTags(input)) {
        if (tag.type === 9) parseVideoTag(tag.body);
        else if (tag.type === 8) parseAudioTag(tag.body);
      }
    },
    parseErrors: [MediaParseError],
  },
  { name: 'rtp', run: (input) => void parseRtpPacket(input), parseErrors: [MediaParseError] },
  { name: 'rtcp', run: (input) => void parseRtcp(input), parseErrors: [MediaParseError] },
  {
    name: 'rtp-h264',
    run: depacketize(() => new H264Depacketizer({ waitForKeyframe: false })),
    parseErrors: [],
  },
  {
    name: 'rtp-h265',
    run: depacketize(() => new H265Depacketizer({ waitForKeyframe: false })),
    parseErrors: [],
  },
  {
    name: 'rtp-vp8',
    run: depacketize(() => new Vp8Depacketizer({ waitForKeyframe: false })),
    parseErrors: [],
  },
  {
    name: 'rtp-vp9',
    run: depacketize(() => new Vp9Depacketizer({ waitForKeyframe: false })),
    parseErrors: [],
  },
  {
    name: 'rtp-av1',
    run: depacketize(() => new Av1Depacketizer({ waitForKeyframe: false })),
    parseErrors: [],
  },
  { name: 'rtp-opus', run: depacketize(() => new OpusDepacketizer()), parseErrors: [] },
  {
    name: 'sdp',
    run: (input) => void summarizeOffer(decoder.decode(input), SDP_PREFERENCE),
    parseErrors: [SdpError],
  },
  {
    name: 'fmp4',
    // What the reader offers: the box tree, every box parser by type, and the samples of each fragment.
    run: (input) => {
      const boxes = readBoxes(input);
      const parsers: [string, (box: ReturnType<typeof readBoxes>[number]) => unknown][] = [
        ['mvhd', parseMvhd],
        ['tkhd', parseTkhd],
        ['mdhd', parseMdhd],
        ['mfhd', parseMfhd],
        ['trex', parseTrex],
        ['tfhd', parseTfhd],
        ['tfdt', parseTfdt],
        ['trun', parseTrun],
        ['stsd', parseStsd],
        ['esds', parseEsds],
      ];
      for (const [type, parse] of parsers) for (const box of findAllBoxes(boxes, type)) parse(box);
      if (boxes.some((b) => b.type === 'moof')) readFragmentSamples(input, boxes);
    },
    parseErrors: [MediaParseError],
  },
  { name: 'h264-sps', run: (input) => void parseH264Sps(input), parseErrors: [MediaParseError] },
  { name: 'h265-sps', run: (input) => void parseHevcSps(input), parseErrors: [MediaParseError] },
  {
    name: 'playlist-query',
    // The query string of a playlist request, parsed as Fastify parses it (repeated keys become arrays).
    run: (input) => {
      const query: Record<string, string | string[]> = {};
      for (const [key, value] of new URLSearchParams(decoder.decode(input))) {
        const had = query[key];
        query[key] = had === undefined ? value : [...(Array.isArray(had) ? had : [had]), value];
      }
      parseBlockingQuery(query);
    },
    parseErrors: [HlsRequestError],
  },
];

/** The committed seeds of one parser, by file name. */
export function corpus(name: string): { file: string; bytes: Uint8Array }[] {
  const folder = new URL(`${name}/`, CORPUS_ROOT);
  return readdirSync(folder)
    .sort()
    .map((file) => ({ file, bytes: new Uint8Array(readFileSync(join(folder.pathname, file))) }));
}

/**
 * null when `input` parses or fails with the parser's typed error within `hangMs`, else the exception, or an
 * Error saying how long it took (a crash either way).
 */
export function crashOf(target: FuzzTarget, input: Uint8Array, hangMs = Number.POSITIVE_INFINITY): unknown {
  const started = performance.now();
  let crash: unknown = null;
  try {
    target.run(input);
  } catch (err) {
    if (!target.parseErrors.some((type) => err instanceof type)) crash = err ?? new Error('threw nothing');
  }
  const took = performance.now() - started;
  if (!crash && took > hangMs) crash = new Error(`took ${Math.round(took)} ms (bound ${hangMs} ms)`);
  return crash;
}
