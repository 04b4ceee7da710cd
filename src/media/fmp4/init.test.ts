import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildAudioSpecificConfig } from '../aac/asc.ts';
import type { Track } from '../Frame.ts';
import { buildAvcDecoderConfig } from '../h264/avcC.ts';
import { splitAnnexB } from '../nalu.ts';
import { buildOpusHead, opusHeadToDops } from '../opus/opusHead.ts';
import { encodeH264 } from '../testing/ffmpeg.ts';
import { writeInitSegment } from './init.ts';
import {
  findAllBoxes,
  findBox,
  findBoxes,
  parseEsds,
  parseHdlr,
  parseMdhd,
  parseMvhd,
  parseStsd,
  parseTkhd,
  parseTrex,
  readBoxes,
} from './reader.ts';

function avcC(): Uint8Array {
  const nalus = splitAnnexB(encodeH264({ width: 1280, height: 720, profile: 'high' }));
  return buildAvcDecoderConfig(
    nalus.filter((n) => (n[0] & 0x1f) === 7),
    nalus.filter((n) => (n[0] & 0x1f) === 8),
  );
}

const aac: Track = {
  id: 2,
  kind: 'audio',
  codec: 'aac',
  timescale: 44100,
  config: buildAudioSpecificConfig(2, 44100, 2),
  codecString: 'mp4a.40.2',
  sampleRate: 44100,
  channels: 2,
};

describe('writeInitSegment', () => {
  const h264: Track = {
    id: 1,
    kind: 'video',
    codec: 'h264',
    timescale: 90000,
    config: avcC(),
    codecString: 'avc1.64001f',
    width: 1280,
    height: 720,
  };
  const init = writeInitSegment([h264, aac]);
  const boxes = readBoxes(init);

  it('is ftyp + moov with CMAF-friendly brands', () => {
    assert.deepEqual(
      boxes.map((b) => b.type),
      ['ftyp', 'moov'],
    );
    const ftyp = new TextDecoder().decode(boxes[0].payload());
    assert.equal(ftyp.slice(0, 4), 'iso6');
    assert.deepEqual(ftyp.slice(8).match(/.{4}/g), ['iso6', 'cmfc', 'mp41', 'dash']);
  });

  it('declares no duration anywhere and one trex per track', () => {
    const mvhd = parseMvhd(findBox(boxes, 'moov/mvhd')!);
    assert.equal(mvhd.duration, 0);
    assert.equal(mvhd.timescale, 1000);
    assert.equal(mvhd.nextTrackId, 3);
    assert.deepEqual(findAllBoxes(boxes, 'mehd'), []);
    assert.deepEqual(findAllBoxes(boxes, 'edts'), []);
    const trex = findBoxes(boxes, 'moov/mvex/trex').map(parseTrex);
    assert.deepEqual(
      trex.map((t) => [t.trackId, t.defaultSampleDescriptionIndex]),
      [
        [1, 1],
        [2, 1],
      ],
    );
  });

  it('writes a complete trak per track with empty sample tables', () => {
    const traks = findBoxes(boxes, 'moov/trak');
    assert.equal(traks.length, 2);
    for (const [i, t] of [h264, aac].entries()) {
      const c = traks[i].children!;
      const tkhd = parseTkhd(findBox(c, 'tkhd')!);
      assert.equal(tkhd.trackId, t.id);
      assert.equal(tkhd.flags, 3, 'enabled and in movie');
      assert.equal(tkhd.duration, 0);
      assert.equal(tkhd.width, t.kind === 'video' ? 1280 : 0);
      assert.equal(tkhd.height, t.kind === 'video' ? 720 : 0);
      assert.equal(tkhd.volume, t.kind === 'audio' ? 0x0100 : 0);
      const mdhd = parseMdhd(findBox(c, 'mdia/mdhd')!);
      assert.deepEqual([mdhd.timescale, mdhd.duration, mdhd.language], [t.timescale, 0, 'und']);
      assert.equal(parseHdlr(findBox(c, 'mdia/hdlr')!), t.kind === 'video' ? 'vide' : 'soun');
      assert.ok(findBox(c, t.kind === 'video' ? 'mdia/minf/vmhd' : 'mdia/minf/smhd'));
      const url = findBox(c, 'mdia/minf/dinf/dref')!.payload();
      assert.deepEqual([...url.subarray(4, 8)], [0, 0, 0, 1], 'one entry');
      assert.deepEqual(
        [...url.subarray(8)],
        [0, 0, 0, 12, 0x75, 0x72, 0x6c, 0x20, 0, 0, 0, 1],
        "'url ' self-contained",
      );
      const stbl = findBox(c, 'mdia/minf/stbl')!.children!;
      assert.deepEqual(
        stbl.map((b) => b.type),
        ['stsd', 'stts', 'stsc', 'stsz', 'stco'],
      );
      for (const b of stbl.slice(1))
        assert.ok(
          b.payload().every((x) => x === 0),
          `${b.type} is empty`,
        );
    }
  });

  it('describes H.264 with avc1 + avcC and AAC with mp4a + esds carrying the ASC', () => {
    const [avc1] = parseStsd(findBox(findBoxes(boxes, 'moov/trak')[0].children!, 'mdia/minf/stbl/stsd')!);
    assert.equal(avc1.type, 'avc1');
    assert.deepEqual([avc1.width, avc1.height], [1280, 720]);
    assert.deepEqual(
      avc1.children.map((b) => b.type),
      ['avcC'],
    );
    assert.deepEqual(avc1.children[0].payload(), h264.config);

    const [mp4a] = parseStsd(findBox(findBoxes(boxes, 'moov/trak')[1].children!, 'mdia/minf/stbl/stsd')!);
    assert.equal(mp4a.type, 'mp4a');
    assert.deepEqual([mp4a.channelCount, mp4a.sampleRate], [2, 44100]);
    const esds = parseEsds(mp4a.children[0]);
    assert.deepEqual(
      [esds.objectTypeIndication, esds.streamType, [...esds.decoderSpecificInfo]],
      [0x40, 5, [0x12, 0x10]],
    );
  });

  it('encodes descriptor sizes above 127 in the expandable form', () => {
    const longAsc = new Uint8Array(300);
    longAsc.set([0x12, 0x10]);
    const init2 = writeInitSegment([{ ...aac, id: 1, config: longAsc }]);
    const [mp4a] = parseStsd(findBox(readBoxes(init2), 'moov/trak/mdia/minf/stbl/stsd')!);
    assert.deepEqual(parseEsds(mp4a.children[0]).decoderSpecificInfo, longAsc);
  });

  it('describes Opus with Opus + dOps, VP9 with vp09 + a version-1 vpcC, and passes hvcC/av1C through', () => {
    const opusHead = buildOpusHead(2);
    const vpcC = new Uint8Array([0, 10, 0x82, 1, 1, 1, 0, 0]);
    const hvcC = new Uint8Array([1, 2, 3]);
    const av1C = new Uint8Array([0x81, 4, 0x0c, 0]);
    const video = { kind: 'video' as const, timescale: 90000, codecString: '', width: 640, height: 360 };
    const init3 = writeInitSegment([
      { id: 1, kind: 'audio', codec: 'opus', timescale: 48000, config: opusHead, codecString: 'opus' },
      { ...video, id: 2, codec: 'vp9', config: vpcC },
      { ...video, id: 3, codec: 'h265', config: hvcC },
      { ...video, id: 4, codec: 'av1', config: av1C },
    ]);
    const entries = findBoxes(readBoxes(init3), 'moov/trak').map(
      (t) => parseStsd(findBox(t.children!, 'mdia/minf/stbl/stsd')!)[0],
    );
    assert.deepEqual(
      entries.map((e) => e.type),
      ['Opus', 'vp09', 'hvc1', 'av01'],
    );
    assert.deepEqual([entries[0].channelCount, entries[0].sampleRate], [2, 48000]);
    assert.equal(entries[0].children[0].type, 'dOps');
    assert.deepEqual(entries[0].children[0].payload(), opusHeadToDops(opusHead));
    assert.equal(entries[1].children[0].type, 'vpcC');
    assert.deepEqual([...entries[1].children[0].payload()], [1, 0, 0, 0, ...vpcC]);
    assert.deepEqual(entries[2].children[0].payload(), hvcC);
    assert.deepEqual(entries[3].children[0].payload(), av1C);
  });

  it('refuses track sets it cannot describe', () => {
    assert.throws(() => writeInitSegment([]), RangeError);
    assert.throws(() => writeInitSegment([aac, aac]), /track id 2 appears twice/);
    assert.throws(() => writeInitSegment([{ ...aac, timescale: 0 }]), /timescale 0/);
    assert.throws(() => writeInitSegment([{ ...aac, id: 0 }]), /track id 0/);
    assert.throws(() => writeInitSegment([{ ...aac, config: new Uint8Array([0x16, 0x90]) }]), /reserved/);
  });
});
