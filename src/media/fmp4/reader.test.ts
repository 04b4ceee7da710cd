import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MediaParseError } from '../errors.ts';
import { ffmpeg, ffprobe, withTempDir } from '../testing/ffmpeg.ts';
import { BoxWriter } from './BoxWriter.ts';
import {
  findBox,
  findBoxes,
  parseMvhd,
  parseTfdt,
  parseTrun,
  readBoxes,
  readFragmentSamples,
} from './reader.ts';

const isParseError = (pattern: RegExp) => (e: unknown) =>
  e instanceof MediaParseError && pattern.test(e.message);

describe('readBoxes', () => {
  it('reads nested containers, 64-bit sizes, size 0 (to the end) and uuid boxes', () => {
    const w = new BoxWriter();
    w.box('moov', () => {
      w.box('trak', () => w.box('tkhd', () => w.zeros(4)));
      w.box('udta', () => w.u32(1));
    });
    // 64-bit largesize free box with 4 bytes of body
    w.u32(1).ascii('free').u32(0).u32(20).u32(0xdeadbeef);
    w.u32(24 + 2)
      .ascii('uuid')
      .zeros(16)
      .u16(0xabcd);
    w.u32(0).ascii('mdat').u8(7).u8(8);
    const buf = w.finish();
    const boxes = readBoxes(buf);
    assert.deepEqual(
      boxes.map((b) => [b.type, b.start, b.size, b.headerSize]),
      [
        ['moov', 0, 40, 8],
        ['free', 40, 20, 16],
        ['uuid', 60, 26, 24],
        ['mdat', 86, 10, 8],
      ],
    );
    assert.equal(findBox(boxes, 'moov/trak/tkhd')?.size, 12);
    assert.equal(findBox(boxes, 'moov/udta')?.children, undefined, 'udta is not descended into');
    assert.deepEqual([...boxes[1].payload()], [0xde, 0xad, 0xbe, 0xef]);
    assert.deepEqual([...boxes[2].payload()], [0xab, 0xcd]);
    assert.deepEqual([...boxes[3].payload()], [7, 8]);
    assert.equal(findBox(boxes, 'moov/nope'), undefined);
  });

  it('throws MediaParseError on a truncated header, a size past the end or below the header', () => {
    assert.throws(
      () => readBoxes(new Uint8Array([0, 0, 0, 8, 0x6d])),
      isParseError(/truncated box header, 5 bytes left/),
    );
    const past = new BoxWriter().u32(100).ascii('moof').zeros(8).finish();
    assert.throws(
      () => readBoxes(past),
      (e: unknown) =>
        isParseError(/'moof' box size 100 runs past the end, 16 bytes left/)(e) &&
        (e as MediaParseError).offset === 0,
    );
    assert.throws(
      () => readBoxes(new BoxWriter().u32(4).ascii('free').finish()),
      isParseError(/smaller than its 8-byte header/),
    );
    assert.throws(
      () => readBoxes(new BoxWriter().u32(1).ascii('free').u32(0).finish()),
      isParseError(/largesize/),
    );
    // A child that overruns its parent, even though the file is long enough.
    const child = new BoxWriter().u32(16).ascii('moov').u32(40).ascii('trak').zeros(40).finish();
    assert.throws(() => readBoxes(child), isParseError(/'trak' box size 40 runs past the end, 8 bytes left/));
  });

  it('full-box parsers reject the wrong box type and truncated bodies', () => {
    const buf = new BoxWriter().fullBox('tfdt', 1, 0, () => {}).finish();
    const [tfdt] = readBoxes(buf);
    assert.throws(() => parseMvhd(tfdt), isParseError(/expected a 'mvhd' box, got 'tfdt'/));
    assert.throws(() => parseTfdt(tfdt), isParseError(/truncated reading baseMediaDecodeTime/));
    const trun = readBoxes(new BoxWriter().fullBox('trun', 0, 0x000300, () => {}).finish())[0];
    assert.throws(() => parseTrun(trun), MediaParseError);
    const huge = new BoxWriter();
    huge.fullBox('trun', 0, 0x000300, () => huge.u32(0x10000000));
    assert.throws(() => parseTrun(readBoxes(huge.finish())[0]), isParseError(/sample_count 268435456/));
  });

  it('bounds a trun without per-sample fields by the bytes its samples must fit in', () => {
    // 16 bytes of box that would otherwise ask for 33 million sample objects (the fuzzer's 20 s input).
    const empty = new BoxWriter();
    empty.fullBox('trun', 0, 0, () => empty.u32(0x02000004));
    assert.throws(
      () => parseTrun(readBoxes(empty.finish())[0]),
      isParseError(/sample_count 33554436 exceeds the 16 bytes its samples' data must fit in/),
    );
    const few = new BoxWriter();
    few.fullBox('trun', 0, 0, () => few.u32(3));
    assert.equal(parseTrun(readBoxes(few.finish())[0]).samples.length, 3);
  });

  it('reads version-0 trun composition offsets as unsigned', () => {
    const w = new BoxWriter();
    w.fullBox('trun', 0, 0x000800, () => w.u32(1).u32(0xfffffff0));
    assert.equal(parseTrun(readBoxes(w.finish())[0]).samples[0].compositionTimeOffset, 0xfffffff0);
  });

  it('readFragmentSamples refuses sample data outside the file', () => {
    const w = new BoxWriter();
    w.box('moof', () => {
      w.box('traf', () => {
        w.fullBox('tfhd', 0, 0x020000, () => w.u32(1));
        w.fullBox('trun', 0, 0x000201, () => w.u32(1).u32(100).u32(50));
      });
    });
    assert.throws(
      () => readFragmentSamples(w.finish()),
      isParseError(/sample of 50 bytes at 100 lies outside/),
    );
  });
});

describe('readFragmentSamples on ffmpeg output', () => {
  it('agrees with ffprobe on every packet of a fragmented MP4 using base_data_offset and trex defaults', () => {
    const { buf, packets } = withTempDir((dir) => {
      const mp4 = join(dir, 'f.mp4');
      ffmpeg([
        '-f',
        'lavfi',
        '-i',
        'testsrc2=size=320x240:rate=25',
        '-f',
        'lavfi',
        '-i',
        'sine=sample_rate=48000',
        '-t',
        '2',
        '-c:v',
        'libx264',
        '-preset',
        'veryfast',
        '-g',
        '25',
        '-c:a',
        'aac',
        '-movflags',
        'frag_keyframe+empty_moov',
        '-f',
        'mp4',
        mp4,
      ]);
      const probe = ffprobe([
        '-show_packets',
        '-show_entries',
        'packet=stream_index,pts,dts,size,flags',
        mp4,
      ]);
      return { buf: new Uint8Array(readFileSync(mp4)), packets: probe.packets! };
    });
    const boxes = readBoxes(buf);
    assert.ok(findBoxes(boxes, 'moof').length >= 2);
    const samples = readFragmentSamples(buf, boxes);
    for (const [trackId, streamIndex] of [
      [1, 0],
      [2, 1],
    ]) {
      const ours = samples.filter((s) => s.trackId === trackId);
      const theirs = packets.filter((p) => p.stream_index === streamIndex);
      assert.equal(ours.length, theirs.length);
      const shift = theirs[0].dts - ours[0].dts; // ffprobe applies the edit list, we do not
      ours.forEach((s, i) => {
        assert.equal(s.dts + shift, theirs[i].dts, `track ${trackId} sample ${i} dts`);
        assert.equal(s.pts + shift, theirs[i].pts, `track ${trackId} sample ${i} pts`);
        assert.equal(s.data.length, Number(theirs[i].size));
        assert.equal(s.keyframe, theirs[i].flags.startsWith('K'));
      });
    }
  });
});
