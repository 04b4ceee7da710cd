import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MediaParseError } from '../errors.ts';
import { demuxFragmentedMp4, ffmpegFragmentedMp4, muxPerFrame, probeBytes } from '../testing/mp4.ts';
import { buildOpusHead, opusHeadFromDops, opusHeadToDops, opusTrackInfo, parseOpusHead } from './opusHead.ts';

function libopus(layout: readonly string[]) {
  return demuxFragmentedMp4(
    ffmpegFragmentedMp4([
      '-f',
      'lavfi',
      '-i',
      'sine=frequency=440:sample_rate=48000:duration=1',
      ...layout,
      '-c:a',
      'libopus',
    ]),
  );
}

describe('Opus from libopus', () => {
  it('stereo: OpusHead ↔ dOps, track info, and a remux ffprobe decodes', () => {
    const src = libopus(['-ac', '2']);
    const [track] = src.tracks;
    const head = parseOpusHead(track.config);
    assert.deepEqual([head.channels, head.channelMappingFamily, head.inputSampleRate], [2, 0, 48000]);
    assert.ok(head.preSkip > 0);
    assert.deepEqual(opusTrackInfo(track.config), { codecString: 'opus', sampleRate: 48000, channels: 2 });
    assert.deepEqual(opusHeadFromDops(opusHeadToDops(track.config)), track.config);

    const [stream] = probeBytes(muxPerFrame(src.tracks, src.frames), ['-show_streams', '-count_frames'])
      .streams!;
    assert.deepEqual(
      [stream.codec_name, stream.channels, stream.sample_rate, Number(stream.nb_read_frames)],
      ['opus', 2, '48000', src.frames.length],
    );
  });

  it('5.1 with channel mapping family 1', () => {
    const src = libopus(['-af', 'pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0']);
    const head = parseOpusHead(src.tracks[0].config);
    assert.deepEqual(
      [head.channels, head.channelMappingFamily, head.streamCount, head.coupledCount],
      [6, 1, 4, 2],
    );
    const dOps = opusHeadToDops(src.tracks[0].config);
    assert.equal(dOps.length, 11 + 2 + 6);
    assert.deepEqual(opusHeadFromDops(dOps), src.tracks[0].config);
    const [stream] = probeBytes(muxPerFrame(src.tracks, src.frames), ['-show_streams']).streams!;
    assert.equal(stream.channels, 6);
  });
});

describe('OpusHead', () => {
  it('re-encodes its little-endian fields big-endian in dOps', () => {
    const head = buildOpusHead(2, 0x0138, 44100);
    assert.deepEqual([...opusHeadToDops(head)], [0, 2, 0x01, 0x38, 0, 0, 0xac, 0x44, 0, 0, 0]);
    assert.deepEqual([...head.subarray(10, 16)], [0x38, 0x01, 0x44, 0xac, 0, 0]);
  });

  it('throws MediaParseError on malformed headers', () => {
    const head = buildOpusHead(1);
    assert.throws(() => parseOpusHead(head.subarray(0, 18)), MediaParseError);
    const badMagic = head.slice();
    badMagic[0] = 0x6f;
    assert.throws(() => parseOpusHead(badMagic), /magic/);
    const stereo3 = head.slice();
    stereo3[9] = 3;
    assert.throws(() => parseOpusHead(stereo3), /mapping family 0 with 3 channels/);
    const family1 = head.slice();
    family1[18] = 1;
    assert.throws(() => parseOpusHead(family1), /channel mapping table/);
    const future = head.slice();
    future[8] = 16;
    assert.throws(() => parseOpusHead(future), /version 16/);
    assert.throws(() => opusHeadFromDops(new Uint8Array([1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0])), /Version 1/);
  });
});
