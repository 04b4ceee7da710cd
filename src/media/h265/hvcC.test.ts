import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MediaParseError } from '../errors.ts';
import { demuxFragmentedMp4, ffmpegFragmentedMp4, muxPerFrame, probeBytes } from '../testing/mp4.ts';
import { hevcCodecString, hevcTrackInfo, parseHevcDecoderConfig, parseHevcSps } from './hvcC.ts';

function x265(size: string, extra: readonly string[] = []) {
  return demuxFragmentedMp4(
    ffmpegFragmentedMp4([
      '-f',
      'lavfi',
      '-i',
      `testsrc2=size=${size}:rate=30`,
      '-frames:v',
      '15',
      '-c:v',
      'libx265',
      '-preset',
      'ultrafast',
      '-x265-params',
      'log-level=error:keyint=10',
      ...extra,
    ]),
  );
}

describe('H.265 from libx265', () => {
  it('Main 640x360: codec string, size, and a remux ffprobe decodes', () => {
    const src = x265('640x360');
    const [track] = src.tracks;
    const config = parseHevcDecoderConfig(track.config);
    assert.equal(config.generalProfileIdc, 1);
    assert.equal(config.generalProfileCompatibilityFlags, 0x60000000, 'Main is also Main 10 compatible');
    assert.equal(config.lengthSize, 4);
    assert.deepEqual(
      config.arrays.map((a) => a.nalUnitType),
      [32, 33, 34, 39],
    );
    // Annex E.3: compatibility flags 0x60000000 bit-reversed are 0x6; level 2.1 is 63; progressive + frame-only.
    assert.deepEqual(hevcTrackInfo(track.config), {
      codecString: 'hvc1.1.6.L63.90',
      width: 640,
      height: 360,
    });

    const ours = muxPerFrame(src.tracks, src.frames);
    const [stream] = probeBytes(ours, ['-show_streams', '-count_frames']).streams!;
    assert.deepEqual(
      [stream.codec_name, stream.profile, stream.width, stream.height, stream.nb_read_frames],
      ['hevc', 'Main', 640, 360, '15'],
    );
  });

  it('Main 10 854x480: conformance window cropping and the Main 10 codec string', () => {
    const src = x265('854x480', ['-pix_fmt', 'yuv420p10le']);
    const info = hevcTrackInfo(src.tracks[0].config);
    assert.equal(info.codecString, 'hvc1.2.4.L90.90');
    assert.deepEqual([info.width, info.height], [854, 480]);
    const [stream] = probeBytes(muxPerFrame(src.tracks, src.frames), ['-show_streams', '-count_frames'])
      .streams!;
    assert.deepEqual(
      [stream.profile, stream.width, stream.height, stream.nb_read_frames],
      ['Main 10', 854, 480, '15'],
    );
  });
});

describe('hevcCodecString', () => {
  it('writes profile space letters, high tier and multi-byte constraints without trailing zeros', () => {
    const base = parseHevcDecoderConfig(
      new Uint8Array([
        1, 0x01, 0x60, 0, 0, 0, 0xb0, 0, 0, 0, 0, 0, 93, 0xf0, 0, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0, 0x0f, 0,
      ]),
    );
    assert.equal(hevcCodecString(base), 'hvc1.1.6.L93.B0');
    const c = { ...base, generalProfileSpace: 1, generalTierFlag: 1, generalLevelIdc: 120 };
    c.generalConstraintIndicatorFlags = new Uint8Array([0xb0, 0, 0x23, 0, 0, 0]);
    c.generalProfileCompatibilityFlags = 0x82000000;
    assert.equal(hevcCodecString(c), 'hvc1.A1.41.H120.B0.00.23');
  });
});

describe('hvcC and SPS on malformed input', () => {
  it('throws MediaParseError', () => {
    assert.throws(() => parseHevcDecoderConfig(new Uint8Array([0, 1, 2])), /configurationVersion is 0/);
    assert.throws(() => parseHevcDecoderConfig(new Uint8Array([1, 1, 0x60])), MediaParseError);
    const header = [
      1, 0x01, 0x60, 0, 0, 0, 0xb0, 0, 0, 0, 0, 0, 93, 0xf0, 0, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0, 0x0f,
    ];
    assert.throws(
      () => parseHevcDecoderConfig(new Uint8Array([...header, 1, 0xa1, 0, 1, 0, 50, 0x42])),
      /nalUnit\[0\] of 50 bytes/,
    );
    assert.throws(() => parseHevcSps(new Uint8Array([0x40, 0x01, 0x0c])), /NAL unit type is 32/);
    assert.throws(() => parseHevcSps(new Uint8Array([0x42, 0x01, 0x01, 0x01])), /truncated/);
  });
});
