import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { splitAdts } from '../aac/adts.ts';
import { buildAudioSpecificConfig, parseAudioSpecificConfig } from '../aac/asc.ts';
import type { Frame, Track } from '../Frame.ts';
import { buildAvcDecoderConfig, h264TrackInfo } from '../h264/avcC.ts';
import { isH264Keyframe } from '../h264/nal.ts';
import { nalusToAvcc, splitAnnexB } from '../nalu.ts';
import { concatBytes, ffmpeg, ffprobe, withTempDir } from '../testing/ffmpeg.ts';
import { demuxFragmentedMp4, interleave } from '../testing/mp4.ts';
import { FragmentWriter, SAMPLE_FLAGS_NON_SYNC, SAMPLE_FLAGS_SYNC } from './fragment.ts';
import { writeInitSegment } from './init.ts';
import {
  findAllBoxes,
  findBox,
  findBoxes,
  type Mp4Box,
  parseMdhd,
  parseMfhd,
  parseMvhd,
  parseTfdt,
  parseTfhd,
  parseTkhd,
  parseTrun,
  readBoxes,
  readFragmentSamples,
} from './reader.ts';

const video: Track = {
  id: 1,
  kind: 'video',
  codec: 'h264',
  timescale: 90000,
  config: new Uint8Array(0),
  codecString: 'avc1.64001f',
  width: 1280,
  height: 720,
};

function frame(over: Partial<Frame>): Frame {
  return {
    trackId: 1,
    dts: 0,
    pts: 0,
    duration: 0,
    keyframe: false,
    data: new Uint8Array([1, 2, 3]),
    arrival: 0,
    ...over,
  };
}

describe('FragmentWriter.fragment', () => {
  it('writes moof(mfhd, traf(tfhd, tfdt v1, trun v1)) + mdat around one sample', () => {
    const payload = new Uint8Array(1000).map((_, i) => i & 0xff);
    const out = new FragmentWriter().fragment(
      video,
      frame({ dts: 2 ** 40 + 7, pts: 2 ** 40 + 7 + 6000, keyframe: true, data: payload }),
      3000,
    );
    const boxes = readBoxes(out);
    assert.deepEqual(
      boxes.map((b) => b.type),
      ['moof', 'mdat'],
    );
    const [moof, mdat] = boxes;
    assert.equal(out.length, moof.size + mdat.size);
    assert.deepEqual(
      moof.children!.map((b) => b.type),
      ['mfhd', 'traf'],
    );
    assert.deepEqual(
      findBox(boxes, 'moof/traf')!.children!.map((b) => b.type),
      ['tfhd', 'tfdt', 'trun'],
    );
    assert.equal(parseMfhd(findBox(boxes, 'moof/mfhd')!), 1);
    const tfhd = parseTfhd(findBox(boxes, 'moof/traf/tfhd')!);
    assert.equal(tfhd.flags, 0x020000, 'default-base-is-moof and nothing else');
    assert.equal(tfhd.trackId, 1);
    const tfdt = parseTfdt(findBox(boxes, 'moof/traf/tfdt')!);
    assert.deepEqual(tfdt, { version: 1, baseMediaDecodeTime: 2 ** 40 + 7 });
    const trun = parseTrun(findBox(boxes, 'moof/traf/trun')!);
    assert.equal(trun.version, 1);
    assert.equal(trun.flags, 0x000f01);
    assert.equal(trun.sampleCount, 1);
    assert.equal(trun.dataOffset, moof.size + 8);
    assert.deepEqual(trun.samples, [
      { duration: 3000, size: 1000, flags: SAMPLE_FLAGS_SYNC, compositionTimeOffset: 6000 },
    ]);
    assert.deepEqual(mdat.payload(), payload);
    assert.deepEqual(out.subarray(trun.dataOffset!), payload, 'data_offset counts from the moof start');
  });

  it('flags non-sync samples per §8.8.3.1 and writes negative composition offsets (trun v1)', () => {
    const out = new FragmentWriter().fragment(video, frame({ dts: 9000, pts: 6000 }), 3000);
    const trun = parseTrun(findBox(readBoxes(out), 'moof/traf/trun')!);
    const flags = trun.samples[0].flags!;
    assert.equal(flags, SAMPLE_FLAGS_NON_SYNC);
    assert.equal((flags >> 24) & 3, 1, 'sample_depends_on = 1');
    assert.equal((flags >> 16) & 1, 1, 'sample_is_non_sync_sample = 1');
    assert.equal((SAMPLE_FLAGS_SYNC >> 24) & 3, 2, 'sync: sample_depends_on = 2');
    assert.equal((SAMPLE_FLAGS_SYNC >> 16) & 1, 0, 'sync: sample_is_non_sync_sample = 0');
    assert.equal(trun.samples[0].compositionTimeOffset, -3000);
  });

  it('numbers fragments from 1 across tracks', () => {
    const writer = new FragmentWriter();
    const audio: Track = { ...video, id: 2, kind: 'audio', codec: 'aac', timescale: 48000 };
    const seqs = [
      writer.fragment(video, frame({}), 1),
      writer.fragment(audio, frame({ trackId: 2 }), 1),
      writer.fragment(video, frame({}), 1),
    ].map((f) => parseMfhd(findBox(readBoxes(f), 'moof/mfhd')!));
    assert.deepEqual(seqs, [1, 2, 3]);
    assert.equal(writer.nextSequenceNumber, 4);
  });

  it('refuses values the boxes cannot carry', () => {
    const w = new FragmentWriter();
    assert.throws(() => w.fragment(video, frame({ trackId: 2 }), 1), /frame of track 2/);
    assert.throws(() => w.fragment(video, frame({ dts: -1, pts: 0 }), 1), /dts -1/);
    assert.throws(() => w.fragment(video, frame({}), -1), /duration -1/);
    assert.throws(() => w.fragment(video, frame({}), 1.5), /duration 1.5/);
    assert.throws(() => w.fragment(video, frame({ pts: 2 ** 31 }), 1), /composition offset/);
    assert.equal(w.nextSequenceNumber, 1, 'a refused fragment consumes no sequence number');
  });
});

describe('FragmentWriter.fragmentWithSamples', () => {
  it('writes one trun with a sample per frame and one mdat, payloads in order', () => {
    const frames = [
      frame({ dts: 0, pts: 3000, keyframe: true, data: new Uint8Array([1]) }),
      frame({ dts: 3000, pts: 9000, data: new Uint8Array([2, 2]) }),
      frame({ dts: 6000, pts: 6000, data: new Uint8Array([3, 3, 3]) }),
    ];
    const out = new FragmentWriter().fragmentWithSamples(video, frames, [3000, 3000, 3000]);
    const samples = readFragmentSamples(out);
    assert.deepEqual(
      samples.map((s) => [s.dts, s.pts, s.duration, s.keyframe, [...s.data]]),
      [
        [0, 3000, 3000, true, [1]],
        [3000, 9000, 3000, false, [2, 2]],
        [6000, 6000, 3000, false, [3, 3, 3]],
      ],
    );
    assert.throws(
      () => new FragmentWriter().fragmentWithSamples(video, frames, [3000, 2000, 3000]),
      /sample 2 has dts 6000, expected 5000/,
    );
  });
});

/**
 * ~3 s of 1280x720 H.264 (High, B-frames, a keyframe a second) and 44.1 kHz stereo AAC from ffmpeg, as
 * an Annex B elementary stream and an ADTS stream: what a broadcaster's encoder hands an ingest.
 */
interface Source {
  annexB: Uint8Array;
  adts: Uint8Array;
  /** ffmpeg's own fragmented MP4 of the same encode: the reference for timing and configs. */
  reference: ReturnType<typeof demuxFragmentedMp4>;
  referenceVideoFrames: number;
  referenceAudioFrames: number;
}

function encodeSource(): Source {
  return withTempDir((dir) => {
    const mp4 = join(dir, 'src.mp4');
    ffmpeg([
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=1280x720:rate=30',
      '-f',
      'lavfi',
      '-i',
      'sine=frequency=440:sample_rate=44100',
      '-t',
      '3',
      '-ac',
      '2',
      '-c:v',
      'libx264',
      '-preset',
      'veryfast',
      '-profile:v',
      'high',
      '-g',
      '30',
      '-c:a',
      'aac',
      '-movflags',
      'frag_keyframe+empty_moov+default_base_moof',
      '-f',
      'mp4',
      mp4,
    ]);
    const annexB = ffmpeg([
      '-i',
      mp4,
      '-map',
      '0:v',
      '-c',
      'copy',
      '-bsf:v',
      'h264_mp4toannexb,h264_metadata=aud=insert',
      '-f',
      'h264',
      '-',
    ]);
    const adts = ffmpeg(['-i', mp4, '-map', '0:a', '-c', 'copy', '-f', 'adts', '-']);
    const counts = ffprobe(['-show_streams', '-count_frames', mp4]).streams!;
    return {
      annexB,
      adts,
      reference: demuxFragmentedMp4(new Uint8Array(readFileSync(mp4))),
      referenceVideoFrames: Number(counts.find((s) => s.codec_type === 'video')!.nb_read_frames),
      referenceAudioFrames: Number(counts.find((s) => s.codec_type === 'audio')!.nb_read_frames),
    };
  });
}

describe('H.264 + AAC from elementary streams to fMP4, checked by ffprobe', () => {
  let src: Source;
  let tracks: Track[];
  let frames: Frame[];
  let file: Uint8Array;

  before(() => {
    src = encodeSource();
    const refVideo = src.reference.tracks.find((t) => t.kind === 'video')!;
    const refAudio = src.reference.tracks.find((t) => t.kind === 'audio')!;
    const refVideoFrames = src.reference.frames.filter((f) => f.trackId === refVideo.id);
    const refAudioFrames = src.reference.frames.filter((f) => f.trackId === refAudio.id);

    // Annex B → access units (split at the AUDs) → AVCC without AUD/SPS/PPS, as an ingest normalizes them.
    const units: Uint8Array[][] = [];
    let sps: Uint8Array | undefined;
    let pps: Uint8Array | undefined;
    for (const nal of splitAnnexB(src.annexB)) {
      const type = nal[0] & 0x1f;
      if (type === 9) units.push([]);
      else if (type === 7) sps ??= nal;
      else if (type === 8) pps ??= nal;
      else units.at(-1)!.push(nal);
    }
    assert.ok(sps && pps);
    const avcC = buildAvcDecoderConfig([sps], [pps]);
    assert.deepEqual(avcC, refVideo.config, 'avcC built from Annex B equals the one ffmpeg muxed');
    const info = h264TrackInfo(avcC);

    const adtsFrames = splitAdts(src.adts);
    const first = adtsFrames[0];
    const asc = buildAudioSpecificConfig(first.objectType, first.sampleRate, first.channelConfiguration);
    assert.deepEqual(parseAudioSpecificConfig(asc), parseAudioSpecificConfig(refAudio.config));

    tracks = [
      { id: 1, kind: 'video', codec: 'h264', timescale: 90000, config: avcC, ...info },
      {
        id: 2,
        kind: 'audio',
        codec: 'aac',
        timescale: 44100,
        config: asc,
        codecString: 'mp4a.40.2',
        sampleRate: 44100,
        channels: 2,
      },
    ];

    // Timing comes from ffmpeg's muxer (an elementary stream has none), rescaled to 90 kHz as ingest does.
    assert.equal(units.length, refVideoFrames.length);
    const toVideo = (t: number) => (t * 90000) / refVideo.timescale;
    const videoFrames = units.map((nalus, i): Frame => {
      const ref = refVideoFrames[i];
      const data = nalusToAvcc(nalus);
      assert.deepEqual(data, ref.data, `access unit ${i} equals ffmpeg's MP4 sample`);
      const f: Frame = {
        trackId: 1,
        dts: toVideo(ref.dts),
        pts: toVideo(ref.pts),
        duration: toVideo(ref.duration),
        keyframe: isH264Keyframe(data),
        data,
        arrival: 0,
      };
      assert.equal(f.keyframe, ref.keyframe);
      assert.ok(Number.isInteger(f.dts) && Number.isInteger(f.pts) && Number.isInteger(f.duration));
      return f;
    });
    assert.equal(adtsFrames.length, refAudioFrames.length);
    const audioFrames = adtsFrames.map((a, i): Frame => {
      assert.deepEqual(a.data, refAudioFrames[i].data, `AAC frame ${i} equals ffmpeg's MP4 sample`);
      return {
        trackId: 2,
        dts: i * 1024,
        pts: i * 1024,
        duration: 1024,
        keyframe: true,
        data: a.data,
        arrival: 0,
      };
    });
    frames = interleave(tracks, [...videoFrames, ...audioFrames]);

    const writer = new FragmentWriter();
    file = concatBytes([
      writeInitSegment(tracks),
      ...frames.map((f) => writer.fragment(tracks[f.trackId - 1], f, f.duration)),
    ]);
  });

  it('uses ~3 s of real media with B-frames and several keyframes', () => {
    const v = frames.filter((f) => f.trackId === 1);
    assert.equal(v.length, 90);
    assert.equal(v.filter((f) => f.keyframe).length, 3);
    assert.ok(
      v.some((f) => f.pts !== f.dts + v[0].pts - v[0].dts),
      'composition offsets vary (B-frames)',
    );
    assert.ok(frames.filter((f) => f.trackId === 2).length >= 129);
  });

  it('ffprobe reads h264 1280x720 + aac 44100 stereo and decodes every frame', () => {
    const streams = withTempDir((dir) => {
      const path = join(dir, 'ours.mp4');
      writeFileSync(path, file);
      return ffprobe(['-show_streams', '-count_frames', path]).streams!;
    });
    const v = streams.find((s) => s.codec_type === 'video')!;
    const a = streams.find((s) => s.codec_type === 'audio')!;
    assert.equal(v.codec_name, 'h264');
    assert.equal(v.profile, 'High');
    assert.equal(v.width, 1280);
    assert.equal(v.height, 720);
    assert.equal(Number(v.nb_read_frames), 90);
    assert.equal(Number(v.nb_read_frames), src.referenceVideoFrames);
    assert.equal(a.codec_name, 'aac');
    assert.equal(a.sample_rate, '44100');
    assert.equal(a.channels, 2);
    assert.equal(Number(a.nb_read_frames), src.referenceAudioFrames);
  });

  it('ffprobe sees the same packet timestamps, sizes and key flags we wrote', () => {
    const packets = withTempDir((dir) => {
      const path = join(dir, 'ours.mp4');
      writeFileSync(path, file);
      return ffprobe(['-show_packets', '-show_entries', 'packet=stream_index,pts,dts,size,flags', path])
        .packets!;
    });
    for (const [trackId, streamIndex] of [
      [1, 0],
      [2, 1],
    ]) {
      const ours = frames.filter((f) => f.trackId === trackId);
      const theirs = packets.filter((p) => p.stream_index === streamIndex);
      assert.equal(theirs.length, ours.length);
      theirs.forEach((p, i) => {
        assert.equal(p.dts, ours[i].dts, `track ${trackId} packet ${i} dts`);
        assert.equal(p.pts, ours[i].pts, `track ${trackId} packet ${i} pts`);
        assert.equal(Number(p.size), ours[i].data.length);
        assert.equal(p.flags.startsWith('K'), ours[i].keyframe, `track ${trackId} packet ${i} key flag`);
      });
    }
  });

  it('declares no duration: mvhd, tkhd and mdhd durations 0, no mehd', () => {
    const boxes = readBoxes(file);
    assert.deepEqual(
      boxes.slice(0, 2).map((b) => b.type),
      ['ftyp', 'moov'],
    );
    const mvhd = parseMvhd(findBox(boxes, 'moov/mvhd')!);
    assert.equal(mvhd.duration, 0);
    assert.equal(mvhd.nextTrackId, 3);
    assert.deepEqual(findAllBoxes(boxes, 'mehd'), []);
    for (const trak of findBoxes(boxes, 'moov/trak')) {
      assert.equal(parseTkhd(findBox(trak.children!, 'tkhd')!).duration, 0);
      assert.equal(parseMdhd(findBox(trak.children!, 'mdia/mdhd')!).duration, 0);
    }
    assert.equal(findBoxes(boxes, 'moov/mvex/trex').length, 2);
  });

  it('writes one moof+mdat per frame with sequence numbers, tfdt and trun matching each frame', () => {
    const boxes = readBoxes(file);
    const moofs = boxes.filter((b) => b.type === 'moof');
    const mdats = boxes.filter((b) => b.type === 'mdat');
    assert.equal(moofs.length, frames.length);
    assert.equal(mdats.length, frames.length);
    moofs.forEach((moof: Mp4Box, i) => {
      const f = frames[i];
      assert.equal(parseMfhd(findBox(moof.children!, 'mfhd')!), i + 1);
      const traf = findBoxes(moof.children!, 'traf');
      assert.equal(traf.length, 1);
      assert.equal(parseTfhd(findBox(traf[0].children!, 'tfhd')!).trackId, f.trackId);
      assert.equal(parseTfdt(findBox(traf[0].children!, 'tfdt')!).baseMediaDecodeTime, f.dts);
      const trun = parseTrun(findBox(traf[0].children!, 'trun')!);
      assert.deepEqual(trun.samples, [
        {
          duration: f.duration,
          size: f.data.length,
          flags: f.keyframe ? SAMPLE_FLAGS_SYNC : SAMPLE_FLAGS_NON_SYNC,
          compositionTimeOffset: f.pts - f.dts,
        },
      ]);
      assert.equal(trun.dataOffset, moof.size + 8);
      assert.equal(mdats[i].start, moof.start + moof.size, 'the mdat follows its moof');
    });
    const keyFlags = frames.filter((f) => f.trackId === 1).map((f) => f.keyframe);
    assert.deepEqual(
      keyFlags.map((k, i) => (k ? i : -1)).filter((i) => i >= 0),
      [0, 30, 60],
    );
  });

  it('reads back, through readFragmentSamples, exactly the frames written', () => {
    const back = readFragmentSamples(file);
    assert.equal(back.length, frames.length);
    back.forEach((s, i) => {
      const f = frames[i];
      assert.deepEqual(
        [s.trackId, s.dts, s.pts, s.duration, s.keyframe],
        [f.trackId, f.dts, f.pts, f.duration, f.keyframe],
      );
      assert.deepEqual(s.data, f.data);
    });
  });
});
