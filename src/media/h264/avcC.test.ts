import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MediaParseError } from '../errors.ts';
import { findBox, parseStsd, readBoxes } from '../fmp4/reader.ts';
import { nalusToAvcc, splitAnnexB } from '../nalu.ts';
import { encodeH264, ffmpeg, withTempDir } from '../testing/ffmpeg.ts';
import { buildAvcDecoderConfig, h264TrackInfo, parseAvcDecoderConfig } from './avcC.ts';
import { isH264Keyframe } from './nal.ts';

function parameterSets(annexB: Uint8Array) {
  const nalus = splitAnnexB(annexB);
  return {
    sps: nalus.filter((n) => (n[0] & 0x1f) === 7),
    pps: nalus.filter((n) => (n[0] & 0x1f) === 8),
  };
}

/** The avcC ffmpeg's MP4 muxer writes for the same encoder settings. */
function ffmpegAvcC(args: readonly string[]): { avcC: Uint8Array; annexB: Uint8Array } {
  return withTempDir((dir) => {
    const mp4 = join(dir, 'out.mp4');
    ffmpeg([...args, '-f', 'mp4', mp4]);
    const buf = new Uint8Array(readFileSync(mp4));
    const stsd = findBox(readBoxes(buf), 'moov/trak/mdia/minf/stbl/stsd');
    assert.ok(stsd);
    const entry = parseStsd(stsd)[0];
    assert.equal(entry.type, 'avc1');
    const avcC = entry.children.find((b) => b.type === 'avcC');
    assert.ok(avcC);
    const annexB = ffmpeg(['-i', mp4, '-c', 'copy', '-bsf:v', 'h264_mp4toannexb', '-f', 'h264', '-']);
    return { avcC: avcC.payload().slice(), annexB };
  });
}

const x264 = (size: string, profile: string) => [
  '-f',
  'lavfi',
  '-i',
  `testsrc2=size=${size}:rate=30`,
  '-frames:v',
  '3',
  '-c:v',
  'libx264',
  '-preset',
  'veryfast',
  '-profile:v',
  profile,
];

describe('AVCDecoderConfigurationRecord', () => {
  it('builds byte-for-byte the avcC ffmpeg writes (High, with the §5.3.3.1.2 extension)', () => {
    const { avcC, annexB } = ffmpegAvcC(x264('1280x720', 'high'));
    const { sps, pps } = parameterSets(annexB);
    const built = buildAvcDecoderConfig(sps, pps);
    assert.deepEqual(built, avcC);
    const parsed = parseAvcDecoderConfig(avcC);
    assert.equal(parsed.profileIdc, 100);
    assert.equal(parsed.levelIdc, 31);
    assert.equal(parsed.lengthSize, 4);
    assert.deepEqual(parsed.sps, sps);
    assert.deepEqual(parsed.pps, pps);
    assert.equal(parsed.chromaFormat, 1);
    assert.equal(parsed.bitDepthLuma, 8);
    assert.deepEqual(parsed.spsExt, []);
    assert.deepEqual(h264TrackInfo(avcC), {
      codecString: 'avc1.64001f',
      width: 1280,
      height: 720,
      frameRate: 30,
    });
  });

  it('builds byte-for-byte the avcC ffmpeg writes (Constrained Baseline, no extension)', () => {
    const { avcC, annexB } = ffmpegAvcC(x264('640x360', 'baseline'));
    const { sps, pps } = parameterSets(annexB);
    assert.deepEqual(buildAvcDecoderConfig(sps, pps), avcC);
    const parsed = parseAvcDecoderConfig(avcC);
    assert.equal(parsed.profileIdc, 66);
    assert.equal(parsed.profileCompatibility, 0xc0);
    assert.equal(parsed.chromaFormat, undefined);
    assert.equal(h264TrackInfo(avcC).codecString, 'avc1.42c01e');
  });

  it('round-trips several parameter sets and a 10-bit High 10 extension', () => {
    const annexB = encodeH264({ width: 320, height: 240, profile: 'high10', pixFmt: 'yuv420p10le' });
    const { sps, pps } = parameterSets(annexB);
    const secondPps = new Uint8Array([0x68, 0xce, 0x38, 0x80]);
    const record = buildAvcDecoderConfig(sps, [...pps, secondPps]);
    const parsed = parseAvcDecoderConfig(record);
    assert.deepEqual(parsed.sps, sps);
    assert.deepEqual(parsed.pps, [...pps, secondPps]);
    assert.equal(parsed.profileIdc, 110);
    assert.equal(parsed.bitDepthLuma, 10);
    assert.equal(parsed.bitDepthChroma, 10);
    assert.equal(parsed.lengthSize, 4);
    assert.deepEqual(buildAvcDecoderConfig(parsed.sps, parsed.pps), record);
  });

  it('reads 1- and 2-byte NAL length sizes and a record without the optional extension', () => {
    const { sps, pps } = parameterSets(encodeH264({ width: 320, height: 240, profile: 'high' }));
    const record = buildAvcDecoderConfig(sps, pps);
    const noExt = record.subarray(0, record.length - 4);
    noExt[4] = 0xfc | 1;
    const parsed = parseAvcDecoderConfig(noExt);
    assert.equal(parsed.lengthSize, 2);
    assert.equal(parsed.chromaFormat, undefined);
    assert.deepEqual(parsed.sps, sps);
  });

  it('drops a garbled high-profile extension but keeps the parameter sets', () => {
    const { sps, pps } = parameterSets(encodeH264({ width: 320, height: 240, profile: 'high' }));
    const record = buildAvcDecoderConfig(sps, pps);
    const garbled = new Uint8Array([...record.subarray(0, record.length - 1), 3, 0, 9]);
    const parsed = parseAvcDecoderConfig(garbled);
    assert.equal(parsed.spsExt, undefined);
    assert.deepEqual(parsed.pps, pps);
  });

  it('rejects malformed records with MediaParseError', () => {
    const { sps, pps } = parameterSets(encodeH264({ width: 320, height: 240, profile: 'main' }));
    const record = buildAvcDecoderConfig(sps, pps);
    const mutate = (f: (r: Uint8Array) => void) => {
      const copy = record.slice();
      f(copy);
      return copy;
    };
    assert.throws(() => parseAvcDecoderConfig(mutate((r) => (r[0] = 0))), /configurationVersion is 0/);
    assert.throws(() => parseAvcDecoderConfig(mutate((r) => (r[4] = 0xfe))), /lengthSizeMinusOne is 2/);
    assert.throws(
      () => parseAvcDecoderConfig(mutate((r) => (r[7] = 0xff))),
      (e: unknown) => e instanceof MediaParseError && /sequenceParameterSet\[0\]/.test(e.message),
    );
    for (let cut = 0; cut < record.length; cut++) {
      assert.throws(() => parseAvcDecoderConfig(record.subarray(0, cut)), MediaParseError, `cut at ${cut}`);
    }
    const noSps = new Uint8Array([1, 66, 0xc0, 30, 0xff, 0xe0, 0]);
    assert.throws(() => h264TrackInfo(noSps), /holds no SPS/);
    assert.throws(() => buildAvcDecoderConfig([], pps), RangeError);
  });
});

describe('isH264Keyframe', () => {
  it('finds the IDR access unit among x264 frames', () => {
    const annexB = encodeH264({ width: 320, height: 240, frames: 5, extra: ['-x264-params', 'aud=1'] });
    const units: Uint8Array[][] = [];
    for (const nal of splitAnnexB(annexB)) {
      if ((nal[0] & 0x1f) === 9) units.push([]);
      else units.at(-1)!.push(nal);
    }
    assert.equal(units.length, 5);
    assert.deepEqual(
      units.map((u) => isH264Keyframe(nalusToAvcc(u))),
      [true, false, false, false, false],
    );
  });

  it('throws on a NAL length past the end or trailing garbage', () => {
    assert.throws(() => isH264Keyframe(new Uint8Array([0, 0, 0, 5, 0x41])), MediaParseError);
    assert.throws(() => isH264Keyframe(new Uint8Array([0, 0, 0, 1, 0x41, 0])), /trailing bytes/);
    assert.equal(isH264Keyframe(new Uint8Array([0, 0, 0, 1, 0x65])), true);
  });
});
