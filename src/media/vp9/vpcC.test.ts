import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MediaParseError } from '../errors.ts';
import { demuxFragmentedMp4, ffmpegFragmentedMp4, muxPerFrame, probeBytes } from '../testing/mp4.ts';
import { parseVpCodecConfig, vp9FrameSize, vp9TrackInfo } from './vpcC.ts';

function vp9(extra: readonly string[]) {
  return demuxFragmentedMp4(
    ffmpegFragmentedMp4([
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=320x240:rate=30',
      '-frames:v',
      '10',
      '-c:v',
      'libvpx-vp9',
      '-deadline',
      'realtime',
      '-cpu-used',
      '8',
      ...extra,
    ]),
  );
}

describe('VP9 from libvpx', () => {
  it('profile 0: codec string from vpcC, size from the keyframe header, and a remux ffprobe decodes', () => {
    const src = vp9([]);
    const [track] = src.tracks;
    const config = parseVpCodecConfig(track.config);
    assert.deepEqual([config.profile, config.bitDepth], [0, 8]);
    assert.equal(
      vp9TrackInfo(track.config).codecString,
      `vp09.00.${String(config.level).padStart(2, '0')}.08`,
    );
    assert.ok(src.frames[0].keyframe);
    assert.deepEqual(vp9FrameSize(src.frames[0].data), { width: 320, height: 240 });
    assert.equal(vp9FrameSize(src.frames[1].data), undefined, 'inter frames carry no size');

    const [stream] = probeBytes(muxPerFrame(src.tracks, src.frames), ['-show_streams', '-count_frames'])
      .streams!;
    assert.deepEqual(
      [stream.codec_name, stream.width, stream.height, stream.nb_read_frames],
      ['vp9', 320, 240, '10'],
    );
  });

  it('profile 2 (10-bit)', () => {
    const src = vp9(['-pix_fmt', 'yuv420p10le']);
    const info = vp9TrackInfo(src.tracks[0].config);
    assert.match(info.codecString, /^vp09\.02\.\d\d\.10$/);
    assert.deepEqual(vp9FrameSize(src.frames[0].data), { width: 320, height: 240 });
  });
});

describe('vpcC on malformed input', () => {
  it('throws MediaParseError', () => {
    assert.throws(() => parseVpCodecConfig(new Uint8Array([0, 10, 0x82, 1, 1])), MediaParseError);
    assert.throws(() => parseVpCodecConfig(new Uint8Array([0, 10, 0x92, 1, 1, 1, 0, 0])), /bitDepth 9/);
    assert.throws(
      () => parseVpCodecConfig(new Uint8Array([0, 10, 0x82, 1, 1, 1, 0, 5, 1])),
      /codecIntializationData/,
    );
    assert.throws(() => vp9FrameSize(new Uint8Array([0x00])), /frame_marker/);
    assert.throws(() => vp9FrameSize(new Uint8Array([0x82, 0, 0, 0, 0])), /sync code/);
  });
});
