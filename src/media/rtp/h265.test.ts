import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MediaParseError } from '../errors.ts';
import { findBox, parseStsd, readBoxes } from '../fmp4/reader.ts';
import { nalusToAvcc, splitAnnexB, splitAvcc } from '../nalu.ts';
import { concatBytes, ffmpeg, withTempDir } from '../testing/ffmpeg.ts';
import { H265Depacketizer, H265Packetizer } from './h265.ts';
import { parseRtpPacket, type RtpPacket, writeRtpPacket } from './packet.ts';
import type { RtpPayloads } from './payload.ts';
import { rtpFromFfmpeg, rtpToFfmpeg, withTempDirAsync } from './testing.ts';

const type = (nal: Uint8Array) => (nal[0] >> 1) & 0x3f;
const X265 = [
  '-f',
  'lavfi',
  '-i',
  'testsrc2=size=640x360:rate=30',
  '-frames:v',
  '12',
  '-c:v',
  'libx265',
  '-preset',
  'ultrafast',
  '-x265-params',
  'keyint=6:min-keyint=6:bframes=0:aud=1:log-level=error',
  '-crf',
  '16',
];

/** x265 access units (AUD left out) and the hvcC ffmpeg's MP4 muxer writes for the same encode. */
function encode() {
  return withTempDir((dir) => {
    const mp4 = join(dir, 'out.mp4');
    ffmpeg([...X265, '-f', 'mp4', mp4]);
    const stsd = findBox(readBoxes(new Uint8Array(readFileSync(mp4))), 'moov/trak/mdia/minf/stbl/stsd')!;
    const hvcC = parseStsd(stsd)[0]
      .children.find((b) => b.type === 'hvcC')!
      .payload()
      .slice();
    const annexB = ffmpeg([...X265, '-f', 'hevc', '-']);
    const units: Uint8Array[][] = [];
    for (const nal of splitAnnexB(annexB)) {
      if (type(nal) === 35) units.push([]);
      else units.at(-1)?.push(nal);
    }
    return { hvcC, units, annexB };
  });
}

/** ffmpeg's raw HEVC reader keeps the zero byte of the next 4-byte start code on each NAL unit it sends. */
function trimTrailingZeros(nal: Uint8Array): Uint8Array {
  let end = nal.length;
  while (end > 0 && nal[end - 1] === 0) end--;
  return nal.subarray(0, end);
}

let seq = 30000;
function packets(all: RtpPayloads[]): RtpPacket[][] {
  return all.map((payloads, i) =>
    payloads.payloads.map((payload, k) =>
      parseRtpPacket(
        writeRtpPacket(
          {
            marker: k === payloads.markerIndex,
            payloadType: 100,
            sequenceNumber: seq++ & 0xffff,
            timestamp: i * 3000,
            ssrc: 9,
          },
          payload,
        ),
      ),
    ),
  );
}

describe('H.265 RTP (RFC 7798)', () => {
  const { hvcC, units } = encode();
  // As MP4 carries them: parameter sets in the hvcC only.
  const samples = units.map((u) => u.filter((n) => type(n) < 32 || type(n) > 34));
  const parameterSets = units[0].filter((n) => type(n) >= 32 && type(n) <= 34);

  it('packetizes with VPS/SPS/PPS in an AP before each IRAP, FUs for big slices, bounded payloads', () => {
    assert.equal(units.length, 12);
    assert.equal(parameterSets.length, 3);
    const packetizer = new H265Packetizer(hvcC);
    samples.forEach((s, i) => {
      const { payloads, markerIndex } = packetizer.packetize(nalusToAvcc(s));
      assert.equal(markerIndex, payloads.length - 1);
      for (const p of payloads) assert.ok(p.length <= 1200);
      if (i % 6 === 0) {
        assert.equal(type(payloads[0]), 48, `IRAP ${i} starts with an AP`);
        assert.ok(
          payloads.some((p) => type(p) === 49 && (p[2] & 0x80) !== 0),
          'a big slice in FUs',
        );
      }
    });
  });

  it('round-trips x265 access units and flags the IRAP pictures', () => {
    const packetizer = new H265Packetizer(hvcC);
    const d = new H265Depacketizer();
    const frames = packets(samples.map((s, i) => packetizer.packetize(nalusToAvcc(s), i % 6 === 0)))
      .flat()
      .map((p) => d.push(p))
      .filter((r) => r.frame || r.error);
    assert.equal(frames.length, 12);
    frames.forEach((r, i) => {
      assert.equal(r.error, undefined);
      assert.equal(r.frame!.keyframe, i % 6 === 0, `frame ${i}`);
      assert.deepEqual(
        splitAvcc(r.frame!.data),
        i % 6 === 0 ? [...parameterSets, ...samples[i]] : samples[i],
      );
    });
  });

  it('depacketizes what ffmpeg sends and packetizes what ffmpeg decodes to the same pictures', async () => {
    await withTempDirAsync(async (dir) => {
      const file = join(dir, 'in.hevc');
      writeFileSync(
        file,
        concatBytes(units.flatMap((u) => u.flatMap((n) => [Uint8Array.of(0, 0, 0, 1), n]))),
      );
      const fromFfmpeg = (await rtpFromFfmpeg(['-f', 'hevc', '-i', file, '-c', 'copy'])).map(parseRtpPacket);
      const kinds = new Set(fromFfmpeg.map((p) => type(p.payload)));
      assert.ok(kinds.has(49), 'ffmpeg fragmented with FUs');
      const d = new H265Depacketizer();
      const results = fromFfmpeg.map((p) => d.push(p));
      assert.ok(results.every((r) => !r.error));
      const got = results.filter((r) => r.frame).map((r) => r.frame!);
      assert.equal(got.length, 12);
      assert.deepEqual(
        got
          .flatMap((f) => splitAvcc(f.data))
          .filter((n) => type(n) !== 35)
          .map(trimTrailingZeros),
        units.flat(),
      );

      const hashes = (out: string) =>
        out
          .split('\n')
          .filter((l) => l && !l.startsWith('#'))
          .map((l) => l.split(',').at(-1)!.trim());
      const expected = hashes(Buffer.from(ffmpeg(['-i', file, '-f', 'framemd5', '-'])).toString());
      assert.equal(expected.length, 12);
      const packetizer = new H265Packetizer(hvcC);
      let s = 0;
      const raw = [...samples, samples[1]].map((sample, i) => {
        const { payloads, markerIndex } = packetizer.packetize(nalusToAvcc(sample), i % 6 === 0 && i < 12);
        return payloads.map((p, k) =>
          writeRtpPacket(
            {
              marker: k === markerIndex,
              payloadType: 100,
              sequenceNumber: s++,
              timestamp: i * 3000,
              ssrc: 2,
            },
            p,
          ),
        );
      });
      const out = await rtpToFfmpeg(dir, ['m=video PORT RTP/AVP 100', 'a=rtpmap:100 H265/90000'], raw, [
        '-frames:v',
        '12',
        '-f',
        'framemd5',
      ]);
      assert.deepEqual(hashes(out.toString()), expected);
    });
  });

  it('drops a unit that lost a FU and waits for the next IRAP', () => {
    const all = packets(samples.map((s) => new H265Packetizer(hvcC).packetize(nalusToAvcc(s))));
    assert.ok(all[2].length >= 3);
    all[2].splice(1, 1);
    const d = new H265Depacketizer();
    const kept = all.flat().flatMap((p) => {
      const r = d.push(p);
      return r.frame ? [r.frame.timestamp / 3000] : [];
    });
    assert.deepEqual(kept, [0, 1, 6, 7, 8, 9, 10, 11]);
  });

  it('rejects malformed payloads in the result, never by throwing', () => {
    const cases: [number[], RegExp][] = [
      [[0x02], /the NAL unit header needs 2/],
      [[0x62, 0x01], /FU without an FU header/],
      [[0x62, 0x01, 0xd3, 0], /both start and end/],
      [[0x62, 0x01, 0x31, 0], /nests packet type 49/],
      [[0x62, 0x01, 0x13, 0], /without its start/],
      [[0x60, 0x01, 0x00], /truncated size field/],
      [[0x60, 0x01, 0x00, 0x01, 0x26], /has size 1/],
      [[0x60, 0x01, 0x00, 0x09, 0x26, 0x01], /of 9 bytes runs past the end/],
      [[0x60, 0x01], /AP holds no NAL unit/],
      [[0x60, 0x01, 0x00, 0x02, 0x62, 0x01], /nests packet type 49/],
      [[0x64, 0x01, 0, 0], /PACI/],
      [[0x7e, 0x01, 0, 0], /type 63, which RFC 7798 leaves unspecified/],
    ];
    let s = 0;
    for (const [bytes, message] of cases) {
      const d = new H265Depacketizer();
      const r = d.push(
        parseRtpPacket(
          writeRtpPacket(
            { marker: true, payloadType: 100, sequenceNumber: s++, timestamp: 0, ssrc: 1 },
            Uint8Array.from(bytes),
          ),
        ),
      );
      assert.ok(r.error instanceof MediaParseError, String(bytes));
      assert.match(r.error.message, message);
      assert.ok(r.error.offset! >= 12);
    }
    assert.throws(
      () => new H265Packetizer().packetize(Uint8Array.of(0, 0, 0, 1, 0x26)),
      /no complete header/,
    );
    assert.throws(() => new H265Packetizer(Uint8Array.of(0)), MediaParseError);
  });
});
