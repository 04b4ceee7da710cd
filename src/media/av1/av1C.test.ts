import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BitWriter } from '../bits.ts';
import { MediaParseError } from '../errors.ts';
import { demuxFragmentedMp4, ffmpegFragmentedMp4, muxPerFrame, probeBytes } from '../testing/mp4.ts';
import { av1FrameSize, av1TrackInfo, parseAv1CodecConfig } from './av1C.ts';

describe('AV1 from libsvtav1', () => {
  it('reads profile, level, tier, bit depth and the sequence header size; the remux decodes', () => {
    const src = demuxFragmentedMp4(
      ffmpegFragmentedMp4([
        '-f',
        'lavfi',
        '-i',
        'testsrc2=size=352x288:rate=30',
        '-frames:v',
        '10',
        '-c:v',
        'libsvtav1',
        '-preset',
        '12',
      ]),
    );
    const [track] = src.tracks;
    const config = parseAv1CodecConfig(track.config);
    assert.deepEqual([config.seqProfile, config.bitDepth, config.monochrome], [0, 8, false]);
    assert.deepEqual([config.chromaSubsamplingX, config.chromaSubsamplingY], [1, 1]);
    const info = av1TrackInfo(track.config);
    assert.match(info.codecString, /^av01\.0\.\d\dM\.08$/);
    assert.equal(info.codecString, `av01.0.${String(config.seqLevelIdx0).padStart(2, '0')}M.08`);
    assert.deepEqual([info.width, info.height], [352, 288]);

    const [stream] = probeBytes(muxPerFrame(src.tracks, src.frames), ['-show_streams', '-count_frames'])
      .streams!;
    assert.deepEqual(
      [stream.codec_name, stream.width, stream.height, stream.nb_read_frames],
      ['av1', 352, 288, '10'],
    );
  });
});

describe('av1C', () => {
  it('formats high tier and 10-bit, and reads a reduced still-picture sequence header', () => {
    // marker/version, profile 0 level 13 (5.1), tier 1 + high_bitdepth, no OBUs
    assert.equal(av1TrackInfo(new Uint8Array([0x81, 0x0d, 0xcc, 0])).codecString, 'av01.0.13H.10');
    const w = new BitWriter(5);
    w.writeBits(3, 0); // seq_profile
    w.writeBits(1, 1); // still_picture
    w.writeBits(1, 1); // reduced_still_picture_header
    w.writeBits(5, 0); // seq_level_idx[0]
    w.writeBits(4, 7); // frame_width_bits_minus_1
    w.writeBits(4, 7); // frame_height_bits_minus_1
    w.writeBits(8, 99); // max_frame_width_minus_1
    w.writeBits(8, 49); // max_frame_height_minus_1
    const body = w.finish();
    // OBU header: obu_type 1 (sequence header) with obu_has_size_field, then a one-byte leb128 size.
    const obu = new Uint8Array([0x0a, body.length, ...body]);
    assert.deepEqual(av1FrameSize(obu), { width: 100, height: 50 });
  });

  it('throws MediaParseError on malformed records and OBUs', () => {
    assert.throws(() => parseAv1CodecConfig(new Uint8Array([0x01, 0, 0, 0])), /marker 0/);
    assert.throws(() => parseAv1CodecConfig(new Uint8Array([0x81])), MediaParseError);
    assert.throws(() => av1FrameSize(new Uint8Array([0x0a, 20, 0])), /runs past the end/);
    assert.throws(() => av1FrameSize(new Uint8Array([0x0a, 0x80])), /truncated leb128/);
    assert.throws(() => av1FrameSize(new Uint8Array([0x8a, 0])), /forbidden bit/);
    assert.equal(
      av1FrameSize(new Uint8Array([0x12, 0])),
      undefined,
      'a temporal delimiter alone has no size',
    );
  });
});
