import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BitWriter } from '../bits.ts';
import { MediaParseError } from '../errors.ts';
import { findBox, parseEsds, parseStsd, readBoxes } from '../fmp4/reader.ts';
import { ffmpeg, withTempDir } from '../testing/ffmpeg.ts';
import { parseAdtsFrame, splitAdts } from './adts.ts';
import { AAC_SAMPLE_RATES, buildAudioSpecificConfig, parseAudioSpecificConfig } from './asc.ts';

const asc = (...b: number[]) => parseAudioSpecificConfig(new Uint8Array(b));

describe('parseAudioSpecificConfig', () => {
  it('reads the common two-byte AAC-LC configs', () => {
    assert.deepEqual(asc(0x12, 0x10), {
      objectType: 2,
      sampleRate: 44100,
      channels: 2,
      codecString: 'mp4a.40.2',
      samplesPerFrame: 1024,
    });
    assert.deepEqual([asc(0x11, 0x90).sampleRate, asc(0x11, 0x90).channels], [48000, 2]);
    assert.deepEqual([asc(0x11, 0x88).sampleRate, asc(0x11, 0x88).channels], [48000, 1]);
    assert.equal(asc(0x13, 0x88).sampleRate, 22050);
    assert.equal(asc(0x12, 0x14).samplesPerFrame, 960, 'frameLengthFlag selects 960-sample frames');
    assert.equal(asc(0x11, 0xb0).channels, 6, 'channelConfiguration 6 is 5.1');
    assert.equal(asc(0x11, 0xb8).channels, 8, 'channelConfiguration 7 is 7.1');
  });

  it('reads explicit SBR (HE-AAC) and PS (HE-AACv2) signalling, reporting the output rate', () => {
    // 00101 0111 0010 0100 00010 000: SBR, 22050 Hz core, stereo, 44100 Hz output, AAC-LC core
    assert.deepEqual(asc(0x2b, 0x92, 0x08, 0x00), {
      objectType: 5,
      sampleRate: 44100,
      channels: 2,
      codecString: 'mp4a.40.5',
      samplesPerFrame: 2048,
    });
    // 11101 0110 0001 0011 00010 000: PS, 24000 Hz mono core, 48000 Hz output, AAC-LC core
    const v2 = asc(0xeb, 0x09, 0x88, 0x00);
    assert.deepEqual(
      [v2.objectType, v2.sampleRate, v2.channels, v2.codecString],
      [29, 48000, 2, 'mp4a.40.29'],
    );
  });

  it('reads the escaped object type (31 → 32 + 6 bits) and an explicit 24-bit sampling frequency', () => {
    // 11111 001010 0100 0010: object type 42 (USAC), 44100 Hz, stereo
    const usac = asc(0xf9, 0x48, 0x40);
    assert.deepEqual(
      [usac.objectType, usac.sampleRate, usac.channels, usac.codecString],
      [42, 44100, 2, 'mp4a.40.42'],
    );
    // 00010 1111 000000001100001101010000 0010 000: AAC-LC at 50000 Hz, stereo
    const explicit = asc(0x17, 0x80, 0x61, 0xa8, 0x10);
    assert.deepEqual([explicit.objectType, explicit.sampleRate, explicit.channels], [2, 50000, 2]);
  });

  it('counts channels from the program_config_element when channelConfiguration is 0', () => {
    const w = new BitWriter(16);
    w.writeBits(5, 2);
    w.writeBits(4, 3); // 48000
    w.writeBits(4, 0); // channels in the PCE
    w.writeBits(3, 0); // GASpecificConfig flags
    w.writeBits(4, 0); // element_instance_tag
    w.writeBits(2, 1); // object_type
    w.writeBits(4, 3); // sampling_frequency_index
    w.writeBits(4, 2); // front: SCE + CPE
    w.writeBits(4, 0); // side
    w.writeBits(4, 1); // back: CPE
    w.writeBits(2, 1); // one LFE
    w.writeBits(3, 0);
    w.writeBits(4, 0);
    w.writeBits(1, 0); // mono mixdown
    w.writeBits(1, 1); // stereo mixdown present …
    w.writeBits(4, 0); // … its element number
    w.writeBits(1, 0); // matrix mixdown
    for (const isCpe of [0, 1, 1]) {
      w.writeBits(1, isCpe);
      w.writeBits(4, 0);
    }
    w.writeBits(4, 0); // LFE tag
    assert.equal(parseAudioSpecificConfig(w.finish()).channels, 6);
  });

  it('rejects malformed configs with MediaParseError', () => {
    assert.throws(() => asc(0x16, 0x90), /samplingFrequencyIndex 13 is reserved/);
    assert.throws(() => asc(0x12, 0x40), /channelConfiguration 8 is reserved/);
    assert.throws(() => asc(0x02, 0x10), /audioObjectType 0/);
    assert.throws(() => asc(0x12), MediaParseError);
    assert.throws(() => asc(), MediaParseError);
    assert.throws(() => asc(0x17, 0x80, 0x61), /truncated/);
    assert.throws(() => asc(0xf9, 0x48, 0x00), /channelConfiguration 0 with object type 42/);
  });
});

describe('buildAudioSpecificConfig', () => {
  it('writes the two-byte forms', () => {
    assert.deepEqual(buildAudioSpecificConfig(2, 44100, 2), new Uint8Array([0x12, 0x10]));
    assert.deepEqual(buildAudioSpecificConfig(2, 48000, 1), new Uint8Array([0x11, 0x88]));
    assert.deepEqual(buildAudioSpecificConfig(5, 44100, 2), new Uint8Array([0x2b, 0x92, 0x08, 0x00]));
    assert.deepEqual(buildAudioSpecificConfig(2, 50000, 2), new Uint8Array([0x17, 0x80, 0x61, 0xa8, 0x10]));
  });

  it('round-trips through the parser for every object type, rate and channel layout it supports', () => {
    for (const objectType of [1, 2, 3, 4]) {
      for (const sampleRate of [...AAC_SAMPLE_RATES, 50000, 12345]) {
        for (const channels of [1, 2, 3, 4, 5, 6, 8]) {
          const parsed = parseAudioSpecificConfig(buildAudioSpecificConfig(objectType, sampleRate, channels));
          assert.deepEqual(
            [parsed.objectType, parsed.sampleRate, parsed.channels, parsed.samplesPerFrame],
            [objectType, sampleRate, channels, 1024],
          );
        }
      }
    }
    for (const sampleRate of [32000, 44100, 48000]) {
      const he = parseAudioSpecificConfig(buildAudioSpecificConfig(5, sampleRate, 2));
      assert.deepEqual(
        [he.objectType, he.sampleRate, he.channels, he.samplesPerFrame],
        [5, sampleRate, 2, 2048],
      );
      const v2 = parseAudioSpecificConfig(buildAudioSpecificConfig(29, sampleRate, 2));
      assert.deepEqual([v2.objectType, v2.sampleRate, v2.channels], [29, sampleRate, 2]);
    }
  });

  it('refuses what it cannot express', () => {
    assert.throws(() => buildAudioSpecificConfig(42, 48000, 2), RangeError);
    assert.throws(() => buildAudioSpecificConfig(2, 48000, 7), RangeError);
    assert.throws(() => buildAudioSpecificConfig(2, 0, 2), RangeError);
    assert.throws(() => buildAudioSpecificConfig(29, 48000, 1), RangeError);
  });
});

/** ffmpeg's AAC encoder output as ADTS, and the AudioSpecificConfig its MP4 muxer stores in esds. */
function ffmpegAac(sampleRate: number, channels: number) {
  return withTempDir((dir) => {
    const mp4 = join(dir, 'a.mp4');
    ffmpeg([
      '-f',
      'lavfi',
      '-i',
      `sine=frequency=440:sample_rate=${sampleRate}:duration=0.5`,
      '-ac',
      String(channels),
      '-c:a',
      'aac',
      '-f',
      'mp4',
      mp4,
    ]);
    const buf = new Uint8Array(readFileSync(mp4));
    const stsd = findBox(readBoxes(buf), 'moov/trak/mdia/minf/stbl/stsd');
    assert.ok(stsd);
    const entry = parseStsd(stsd)[0];
    assert.equal(entry.type, 'mp4a');
    const esds = entry.children.find((b) => b.type === 'esds');
    assert.ok(esds);
    const adts = ffmpeg(['-i', mp4, '-c', 'copy', '-f', 'adts', '-']);
    return { esds: parseEsds(esds), entry, adts };
  });
}

describe('AAC from ffmpeg', () => {
  for (const [rate, channels] of [
    [44100, 2],
    [48000, 1],
    [22050, 2],
    [48000, 6],
  ] as const) {
    it(`${rate} Hz, ${channels} channels: ADTS headers, esds and our builder agree`, () => {
      const { esds, entry, adts } = ffmpegAac(rate, channels);
      assert.equal(esds.objectTypeIndication, 0x40);
      assert.equal(esds.streamType, 5);
      const parsed = parseAudioSpecificConfig(esds.decoderSpecificInfo);
      assert.deepEqual(
        [parsed.objectType, parsed.sampleRate, parsed.channels, parsed.codecString],
        [2, rate, channels, 'mp4a.40.2'],
      );
      // ffmpeg's MP4 muxer writes the template channelcount 2 whatever the layout: only the rate is checked.
      assert.equal(entry.sampleRate, rate);

      const frames = splitAdts(adts);
      assert.ok(frames.length > 5);
      const first = frames[0];
      assert.deepEqual([first.objectType, first.sampleRate], [2, rate]);
      const layout = first.channelConfiguration === 7 ? 8 : first.channelConfiguration;
      const built = buildAudioSpecificConfig(first.objectType, first.sampleRate, layout);
      // ffmpeg appends the backward-compatible "no SBR" extension (syncExtensionType 0x2b7, §1.6.5) after
      // the two bytes we build; it changes nothing for the decoder.
      assert.deepEqual(built, esds.decoderSpecificInfo.subarray(0, 2));
      assert.deepEqual(parseAudioSpecificConfig(built), parsed);
      for (const f of frames) assert.equal(f.data.length, f.frameLength - f.headerSize);
    });
  }
});

describe('ADTS', () => {
  const header = (len: number) => [0xff, 0xf1, 0x50, 0x80, (len >> 3) & 0xff, ((len & 7) << 5) | 0x1f, 0xfc];

  it('splits back-to-back frames into views of the raw access units', () => {
    const buf = new Uint8Array([...header(10), 1, 2, 3, ...header(8), 4]);
    const frames = splitAdts(buf);
    assert.equal(frames.length, 2);
    assert.deepEqual(frames[0].data, new Uint8Array([1, 2, 3]));
    assert.deepEqual(frames[1].data, new Uint8Array([4]));
    assert.equal(frames[0].data.buffer, buf.buffer);
    assert.deepEqual(
      [frames[0].objectType, frames[0].sampleRate, frames[0].channelConfiguration],
      [2, 44100, 2],
    );
  });

  it('throws MediaParseError on a lost sync, a short frame or a length past the end', () => {
    assert.throws(() => parseAdtsFrame(new Uint8Array([0xff, 0x01, 0, 0, 0, 0, 0])), /no syncword/);
    assert.throws(() => splitAdts(new Uint8Array([...header(20), 1, 2])), /runs past the end/);
    assert.throws(() => splitAdts(new Uint8Array(header(5))), /shorter than the header/);
    assert.throws(() => splitAdts(new Uint8Array([0xff, 0xf1, 0x50])), /truncated header/);
  });
});
