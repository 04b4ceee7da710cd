import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { addEmulationPrevention, BitReader, BitWriter, removeEmulationPrevention } from '../bits.ts';
import { MediaParseError } from '../errors.ts';
import { splitAnnexB } from '../nalu.ts';
import {
  concatBytes,
  encodeH264,
  ffmpeg,
  ffprobe,
  type H264EncodeOptions,
  withTempDir,
} from '../testing/ffmpeg.ts';
import { h264CodecString, parseH264Sps } from './sps.ts';

/** ffprobe's names for the profile_idc / constraint combinations x264 produces. */
const PROFILE_NAMES: Record<string, number> = {
  'Constrained Baseline': 66,
  Main: 77,
  High: 100,
  'High 10': 110,
  'High 4:2:2': 122,
  'High 4:4:4 Predictive': 244,
};

function nalOfType(annexB: Uint8Array, type: number): Uint8Array {
  const nal = splitAnnexB(annexB).find((n) => (n[0] & 0x1f) === type);
  assert.ok(nal, `no NAL unit of type ${type} in ffmpeg output`);
  return nal;
}

/** What ffprobe (libavcodec's own SPS parser) says about an Annex B stream. */
function probe(annexB: Uint8Array) {
  return withTempDir((dir) => {
    const file = join(dir, 'in.h264');
    writeFileSync(file, annexB);
    const stream = ffprobe(['-show_streams', '-count_frames', file]).streams?.[0];
    assert.ok(stream, 'ffprobe found no stream');
    return stream;
  });
}

interface Case {
  name: string;
  encode: H264EncodeOptions;
  profileIdc: number;
  constraintFlags?: number;
  chromaFormatIdc: number;
  bitDepth: number;
  frameMbsOnly: boolean;
  frameRate: number;
  codecString?: string;
}

const CASES: Case[] = [
  {
    name: '1280x720 High',
    encode: { width: 1280, height: 720, profile: 'high' },
    profileIdc: 100,
    constraintFlags: 0,
    chromaFormatIdc: 1,
    bitDepth: 8,
    frameMbsOnly: true,
    frameRate: 30,
    codecString: 'avc1.64001f',
  },
  {
    name: '640x360 Constrained Baseline (cropped from 368 lines)',
    encode: { width: 640, height: 360, profile: 'baseline' },
    profileIdc: 66,
    constraintFlags: 0xc0,
    chromaFormatIdc: 1,
    bitDepth: 8,
    frameMbsOnly: true,
    frameRate: 30,
    codecString: 'avc1.42c01e',
  },
  {
    name: '854x480 Main (cropped from 864 columns)',
    encode: { width: 854, height: 480, profile: 'main' },
    profileIdc: 77,
    chromaFormatIdc: 1,
    bitDepth: 8,
    frameMbsOnly: true,
    frameRate: 30,
    codecString: 'avc1.4d401f',
  },
  {
    name: '854x480 High 4:4:4 (crop unit of one luma sample)',
    encode: { width: 854, height: 480, profile: 'high444', pixFmt: 'yuv444p' },
    profileIdc: 244,
    chromaFormatIdc: 3,
    bitDepth: 8,
    frameMbsOnly: true,
    frameRate: 30,
  },
  {
    name: '854x482 High 4:2:2 (vertical crop unit of one line)',
    encode: { width: 854, height: 482, profile: 'high422', pixFmt: 'yuv422p' },
    profileIdc: 122,
    chromaFormatIdc: 2,
    bitDepth: 8,
    frameMbsOnly: true,
    frameRate: 30,
  },
  {
    name: '1280x720 High 10',
    encode: { width: 1280, height: 720, profile: 'high10', pixFmt: 'yuv420p10le' },
    profileIdc: 110,
    chromaFormatIdc: 1,
    bitDepth: 10,
    frameMbsOnly: true,
    frameRate: 30,
  },
  {
    name: '1920x1080 High at 29.97 fps',
    encode: { width: 1920, height: 1080, rate: '30000/1001' },
    profileIdc: 100,
    chromaFormatIdc: 1,
    bitDepth: 8,
    frameMbsOnly: true,
    frameRate: 30000 / 1001,
    codecString: 'avc1.640028',
  },
  {
    name: '704x392 interlaced (field map units, crop unit of 4 lines)',
    encode: { width: 704, height: 392, rate: '25', extra: ['-x264-params', 'interlaced=1'] },
    profileIdc: 100,
    chromaFormatIdc: 1,
    bitDepth: 8,
    frameMbsOnly: false,
    frameRate: 25,
  },
];

describe('parseH264Sps on libx264 output', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const annexB = encodeH264(c.encode);
      const spsNal = nalOfType(annexB, 7);
      const sps = parseH264Sps(spsNal);
      const oracle = probe(annexB);

      assert.equal(sps.width, c.encode.width);
      assert.equal(sps.height, c.encode.height);
      assert.equal(sps.width, oracle.width);
      assert.equal(sps.height, oracle.height);
      assert.equal(sps.profileIdc, c.profileIdc);
      assert.equal(sps.profileIdc, PROFILE_NAMES[oracle.profile ?? '']);
      assert.equal(sps.levelIdc, oracle.level);
      if (c.constraintFlags !== undefined) assert.equal(sps.constraintFlags, c.constraintFlags);
      assert.equal(sps.chromaFormatIdc, c.chromaFormatIdc);
      assert.equal(sps.bitDepthLuma, c.bitDepth);
      assert.equal(sps.bitDepthChroma, c.bitDepth);
      assert.equal(sps.frameMbsOnly, c.frameMbsOnly);
      assert.ok(sps.frameRate !== undefined, 'x264 always writes VUI timing');
      assert.ok(Math.abs(sps.frameRate - c.frameRate) < 1e-9, `frame rate ${sps.frameRate}`);

      const codec = h264CodecString(spsNal);
      const hex = (n: number) => n.toString(16).padStart(2, '0');
      assert.equal(codec, `avc1.${hex(sps.profileIdc)}${hex(sps.constraintFlags)}${hex(sps.levelIdc)}`);
      if (c.codecString) assert.equal(codec, c.codecString);
    });
  }
});

describe('parseH264Sps on SPS rewritten by ffmpeg', () => {
  it('applies frame cropping and VUI aspect ratio exactly as libavcodec does (h264_metadata)', () => {
    const source = encodeH264({ width: 640, height: 360, frames: 1 });
    const annexB = withTempDir((dir) => {
      const file = join(dir, 'in.h264');
      writeFileSync(file, source);
      return ffmpeg([
        '-i',
        file,
        '-c',
        'copy',
        '-bsf:v',
        'h264_metadata=crop_left=16:crop_right=8:crop_top=4:crop_bottom=12:sample_aspect_ratio=4/3',
        '-f',
        'h264',
        '-',
      ]);
    });
    const sps = parseH264Sps(nalOfType(annexB, 7));
    const oracle = probe(annexB);
    assert.equal(sps.width, 640 - 16 - 8);
    assert.equal(sps.height, 368 - 4 - 12);
    assert.equal(sps.width, oracle.width);
    assert.equal(sps.height, oracle.height);
    assert.equal(sps.sarWidth, 4);
    assert.equal(sps.sarHeight, 3);
  });

  it('skips scaling lists (explicit, default and absent) the way libavcodec reads them', () => {
    // x264 never puts scaling matrices in the SPS, so splice them into a real one and let ffmpeg judge.
    const annexB = encodeH264({ width: 1280, height: 720, profile: 'high', frames: 2 });
    const nalus = splitAnnexB(annexB);
    const original = nalOfType(annexB, 7);
    const spliced = withScalingLists(original);
    assert.notDeepEqual(spliced, original);
    const rebuilt = concatAnnexB(nalus.map((n) => (n === original ? spliced : n)));
    const oracle = probe(rebuilt);
    assert.equal(oracle.nb_read_frames, '2', 'libavcodec decodes the stream with the spliced SPS');
    assert.equal(oracle.width, 1280);
    assert.equal(oracle.height, 720);

    const sps = parseH264Sps(spliced);
    const before = parseH264Sps(original);
    assert.deepEqual(sps, before, 'everything after the scaling lists parses as before');
  });
});

describe('parseH264Sps on malformed input', () => {
  it('rejects other NAL types, short input and truncation with MediaParseError', async () => {
    const sps = nalOfType(encodeH264({ width: 320, height: 240 }), 7);
    assert.throws(() => parseH264Sps(new Uint8Array([0x68, 0xee, 0x3c, 0x80])), /NAL unit type is 8/);
    assert.throws(() => parseH264Sps(new Uint8Array([0x67, 0x64])), MediaParseError);
    for (let cut = 4; cut < sps.length - 4; cut += 1) {
      try {
        parseH264Sps(sps.subarray(0, cut));
      } catch (err) {
        assert.ok(err instanceof MediaParseError, `cut at ${cut}: ${err}`);
      }
    }
    assert.throws(() => parseH264Sps(sps.subarray(0, 6)), MediaParseError);
    assert.throws(() => h264CodecString(new Uint8Array([0x67, 0x64])), MediaParseError);
  });

  it('rejects impossible field values', () => {
    const w = new BitWriter(16);
    w.writeBits(8, 100);
    w.writeBits(16, 0x001f);
    w.writeUE(0); // sps id
    w.writeUE(4); // chroma_format_idc 4 does not exist
    w.writeBits(8, 0xff);
    const nal = new Uint8Array([0x67, ...w.finish()]);
    assert.throws(() => parseH264Sps(nal), /chroma_format_idc 4/);
  });
});

function concatAnnexB(nalus: readonly Uint8Array[]): Uint8Array {
  const parts = nalus.flatMap((n) => [new Uint8Array([0, 0, 0, 1]), n]);
  return concatBytes(parts);
}

/**
 * Re-serializes a High profile SPS with seq_scaling_matrix_present_flag set: list 0 coded explicitly, list 1
 * signalled "use default" (nextScale 0 at j = 0), list 6 (8x8) explicit and ending in a repeat, the rest absent.
 */
function withScalingLists(nal: Uint8Array): Uint8Array {
  const rbsp = removeEmulationPrevention(nal.subarray(1));
  const r = new BitReader(rbsp);
  r.readBits(24);
  r.readUE(); // seq_parameter_set_id
  assert.equal(r.readUE(), 1, 'splice expects 4:2:0');
  r.readUE();
  r.readUE();
  r.readBit(); // qpprime_y_zero_transform_bypass_flag
  const flagAt = r.position;
  assert.equal(r.readBit(), 0, 'x264 writes no SPS scaling matrix');
  let stopBit = rbsp.length * 8 - 1;
  while (((rbsp[stopBit >> 3] >> (7 - (stopBit & 7))) & 1) === 0) stopBit--;

  const w = new BitWriter(rbsp.length + 256);
  const copy = new BitReader(rbsp);
  for (let i = 0; i < flagAt; i++) w.writeBit(copy.readBit());
  copy.readBit();
  w.writeBit(1);
  const deltas = (values: number[]) => {
    let last = 8;
    for (const v of values) {
      let d = v - last;
      if (d > 127) d -= 256;
      if (d < -128) d += 256;
      w.writeSE(d);
      last = v;
    }
  };
  for (let i = 0; i < 8; i++) {
    if (i === 0) {
      w.writeBit(1);
      deltas(Array.from({ length: 16 }, (_, j) => 6 + j * 3));
    } else if (i === 1) {
      w.writeBit(1);
      w.writeSE(-8); // nextScale 0 at j = 0: UseDefaultScalingMatrixFlag
    } else if (i === 6) {
      w.writeBit(1);
      // 40 explicit values, then nextScale 0: the last value repeats for the remaining 24.
      deltas(Array.from({ length: 40 }, (_, j) => 200 - j * 4));
      w.writeSE(-44); // the 40th value is 44
    } else {
      w.writeBit(0);
    }
  }
  for (let i = flagAt + 1; i < stopBit; i++) w.writeBit(copy.readBit());
  w.writeBit(1);
  return new Uint8Array([nal[0], ...addEmulationPrevention(w.finish())]);
}
