import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { av1FrameSize } from '../av1/av1C.ts';
import { MediaParseError } from '../errors.ts';
import { concatBytes, ffmpeg } from '../testing/ffmpeg.ts';
import { Av1Depacketizer, Av1Packetizer, av1StartsKeyframe, av1WithSequenceHeader } from './av1.ts';
import { parseRtpPacket, type RtpPacket, writeRtpPacket } from './packet.ts';
import type { RtpPayloads } from './payload.ts';
import { ivfFrames, withTempDirAsync } from './testing.ts';

/** 12 libaom temporal units of 320x240, a key frame every 6 (IVF: OBUs with obu_size, temporal delimiters). */
function encodeAv1(): Uint8Array[] {
  return ivfFrames(
    ffmpeg([
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=320x240:rate=30',
      '-frames:v',
      '12',
      '-c:v',
      'libaom-av1',
      '-usage',
      'realtime',
      '-cpu-used',
      '8',
      '-b:v',
      '2M',
      '-g',
      '6',
      '-f',
      'ivf',
      '-',
    ]),
  );
}

/** The OBUs of a temporal unit with obu_size, as [type, bytes]. */
function obus(tu: Uint8Array): [number, Uint8Array][] {
  const out: [number, Uint8Array][] = [];
  for (let p = 0; p < tu.length; ) {
    const h = tu[p];
    assert.ok(h & 0x02, 'libaom writes obu_size on every OBU');
    let q = p + (h & 0x04 ? 2 : 1);
    let size = 0;
    for (let i = 0; ; i++) {
      const b = tu[q++];
      size += (b & 0x7f) * 2 ** (7 * i);
      if (!(b & 0x80)) break;
    }
    out.push([(h >> 3) & 0x0f, tu.subarray(p, q + size)]);
    p = q + size;
  }
  return out;
}

/** What the depacketizer should give back: the unit without its temporal delimiter. */
const withoutDelimiter = (tu: Uint8Array) =>
  concatBytes(
    obus(tu)
      .filter(([type]) => type !== 2)
      .map(([, b]) => b),
  );

let seq = 65500;
function packets(all: RtpPayloads[]): RtpPacket[][] {
  return all.map((payloads, i) =>
    payloads.payloads.map((payload, k) =>
      parseRtpPacket(
        writeRtpPacket(
          {
            marker: k === payloads.markerIndex,
            payloadType: 45,
            sequenceNumber: seq++ & 0xffff,
            timestamp: i * 3000,
            ssrc: 4,
          },
          payload,
        ),
      ),
    ),
  );
}

describe('AV1 RTP (AOMedia RTP payload format v1.0)', () => {
  const units = encodeAv1();

  it('packetizes temporal units into bounded payloads with Z/Y across fragments and N on key frames', () => {
    assert.equal(units.length, 12);
    const packetizer = new Av1Packetizer();
    const out = units.map((u) => packetizer.packetize(u));
    out.forEach((o, i) => {
      assert.equal(o.markerIndex, o.payloads.length - 1);
      o.payloads.forEach((p, k) => {
        assert.ok(p.length <= 1200);
        assert.equal((p[0] & 0x08) !== 0, k === 0 && i % 6 === 0, `N on frame ${i} packet ${k}`);
        assert.equal((p[0] & 0x80) !== 0, k > 0 && (o.payloads[k - 1][0] & 0x40) !== 0, 'Z follows Y');
      });
      assert.equal(o.payloads.at(-1)![0] & 0x40, 0, 'the last packet leaves no fragment open');
    });
    assert.ok(
      out[0].payloads.length >= 3,
      `the key frame spans ${out[0].payloads.length} packets, so fragments are exercised`,
    );
    assert.deepEqual(packetizer.packetize(Uint8Array.of(0x12, 0x00)), { payloads: [], markerIndex: -1 });
    assert.throws(() => packetizer.packetize(Uint8Array.of(0x32, 0x09, 1)), MediaParseError);
  });

  it('tells from a payload alone where a key frame starts (av1StartsKeyframe)', () => {
    const packetizer = new Av1Packetizer();
    units.forEach((u, i) => {
      packetizer.packetize(u).payloads.forEach((p, k) => {
        assert.equal(av1StartsKeyframe(p), i % 6 === 0 && k === 0, `${i}/${k}`);
      });
    });
    // without N, a sequence header as the first element (W=1, no length; W=0, leb128 length first)
    assert.equal(av1StartsKeyframe(Uint8Array.of(0x10, 0x08, 0)), true);
    assert.equal(av1StartsKeyframe(Uint8Array.of(0x00, 0x02, 0x08, 0)), true);
    assert.equal(av1StartsKeyframe(Uint8Array.of(0x10, 0x30, 0)), false);
  });

  it('puts av1C configOBUs in front of a key frame that has no sequence header (av1WithSequenceHeader)', () => {
    const key = obus(units[0]);
    const header = key.find(([type]) => type === 1)![1];
    const withoutHeader = concatBytes(key.filter(([type]) => type !== 1).map(([, bytes]) => bytes));
    const restored = av1WithSequenceHeader(withoutHeader, header);
    assert.deepEqual(
      obus(restored).map(([type]) => type),
      [1, ...obus(withoutHeader).map(([type]) => type)],
    );
    // The packetizer starts a coded video sequence with it: N set, as for the unit libaom wrote.
    const packetizer = new Av1Packetizer();
    assert.equal(packetizer.packetize(restored).payloads[0][0] & 0x08, 0x08);
    assert.equal(packetizer.packetize(withoutHeader).payloads[0][0] & 0x08, 0);
    // A unit that has one, or no configOBUs to add: the same bytes back.
    assert.equal(av1WithSequenceHeader(units[0], header), units[0]);
    assert.equal(av1WithSequenceHeader(withoutHeader, new Uint8Array(0)), withoutHeader);
  });

  it('round-trips libaom temporal units and flags the key frames', () => {
    const d = new Av1Depacketizer();
    const got = packets(units.map((u) => new Av1Packetizer().packetize(u)))
      .flat()
      .map((p) => d.push(p))
      .filter((r) => r.frame || r.error);
    assert.equal(got.length, 12);
    got.forEach((r, i) => {
      assert.equal(r.error, undefined);
      assert.deepEqual(r.frame!.data, withoutDelimiter(units[i]), `unit ${i}`);
      assert.equal(r.frame!.keyframe, i % 6 === 0, `unit ${i}`);
    });
    assert.deepEqual(av1FrameSize(got[0].frame!.data), { width: 320, height: 240 });
  });

  it('gives ffmpeg (libdav1d) the same pictures after the round trip', async () => {
    await withTempDirAsync(async (dir) => {
      const hashes = (file: string) =>
        Buffer.from(ffmpeg(['-i', file, '-f', 'framemd5', '-']))
          .toString()
          .split('\n')
          .filter((l) => l && !l.startsWith('#'))
          .map((l) => l.split(',').at(-1)!.trim());
      const original = join(dir, 'orig.obu');
      writeFileSync(original, concatBytes(units));
      const d = new Av1Depacketizer();
      const frames = packets(units.map((u) => new Av1Packetizer({ maxPayloadSize: 300 }).packetize(u)))
        .flat()
        .flatMap((p) => {
          const r = d.push(p);
          return r.frame ? [r.frame.data] : [];
        });
      const back = join(dir, 'back.obu');
      // The low-overhead bitstream starts each temporal unit with a temporal delimiter.
      writeFileSync(back, concatBytes(frames.flatMap((f) => [Uint8Array.of(0x12, 0x00), f])));
      const expected = hashes(original);
      assert.equal(expected.length, 12);
      assert.deepEqual(hashes(back), expected);
    });
  });

  it('drops a unit that lost a fragment and keeps the next when the loss was a whole unit (Z clear)', () => {
    const all = packets(units.map((u) => new Av1Packetizer({ maxPayloadSize: 200 }).packetize(u)));
    const lostMiddle = all.map((f) => f.slice());
    assert.ok(lostMiddle[2].length >= 3);
    lostMiddle[2].splice(1, 1);
    const d = new Av1Depacketizer();
    const kept = lostMiddle.flat().flatMap((p) => {
      const r = d.push(p);
      return r.frame ? [r.frame.timestamp / 3000] : [];
    });
    assert.deepEqual(kept, [0, 1, 6, 7, 8, 9, 10, 11]);
    const lostUnit = all.filter((_, i) => i !== 3);
    const d2 = new Av1Depacketizer({ waitForKeyframe: false });
    const kept2 = lostUnit.flat().flatMap((p) => {
      const r = d2.push(p);
      return r.frame ? [r.frame.timestamp / 3000] : [];
    });
    assert.deepEqual(kept2, [0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11]);
  });

  it('reads W-counted elements and kept obu_size fields, and reports malformed payloads', () => {
    const tu = withoutDelimiter(units[0]);
    const [seqHeader, frame] = obus(tu).map(([, b]) => b);
    const stripSize = (o: Uint8Array) => {
      // header without obu_size, then the payload after the leb128
      let q = 1;
      while (o[q] & 0x80) q++;
      return Uint8Array.from([o[0] & ~0x02, ...o.subarray(q + 1)]);
    };
    const leb = (n: number) => {
      const out = [];
      do {
        out.push((n & 0x7f) | (n >= 0x80 ? 0x80 : 0));
        n = Math.floor(n / 128);
      } while (n > 0);
      return out;
    };
    const bare = stripSize(seqHeader);
    // W=2: the sequence header length-prefixed, the frame OBU (kept with its obu_size) taking the rest
    const payload = Uint8Array.from([0x20 | 0x08, ...leb(bare.length), ...bare, ...frame]);
    const d = new Av1Depacketizer();
    const r = d.push(
      parseRtpPacket(
        writeRtpPacket({ marker: true, payloadType: 45, sequenceNumber: 1, timestamp: 0, ssrc: 1 }, payload),
      ),
    );
    assert.equal(r.error, undefined);
    assert.deepEqual(r.frame!.data, tu);
    assert.equal(r.frame!.keyframe, true);

    const cases: [number[], RegExp][] = [
      [[0x00], /shorter than 2 bytes/],
      [[0x80, 0x01, 0x30], /Z set but no OBU fragment is open/],
      [[0x00, 0x05, 0x30], /of 5 bytes runs past the end/],
      [[0x00, 0x00, 0x30], /element 1 is empty/],
      [[0x00, 0xff], /truncated leb128/],
      [[0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], /longer than 8 bytes/],
      [[0x30, 0x01, 0x30], /W says 3 OBU elements, the payload holds 1/],
      [[0x10, 0xb0, 0x00], /forbidden bit set/],
      [[0x10, 0x32, 0x05, 0x00], /obu_size 5 disagrees/],
    ];
    let s = 10;
    for (const [bytes, message] of cases) {
      const dd = new Av1Depacketizer();
      const res = dd.push(
        parseRtpPacket(
          writeRtpPacket(
            { marker: true, payloadType: 45, sequenceNumber: s++, timestamp: s, ssrc: 1 },
            Uint8Array.from(bytes),
          ),
        ),
      );
      assert.ok(res.error instanceof MediaParseError, String(bytes));
      assert.match(res.error.message, message);
      assert.equal(res.frame, undefined);
    }
    // A fragment left open (Y) followed by a packet that does not continue it (Z clear).
    const dd = new Av1Depacketizer();
    const p = (sq: number, bytes: number[], marker = false) =>
      parseRtpPacket(
        writeRtpPacket(
          { marker, payloadType: 45, sequenceNumber: sq, timestamp: 0, ssrc: 1 },
          Uint8Array.from(bytes),
        ),
      );
    assert.equal(dd.push(p(0, [0x50, 0x30, 0x01])).error, undefined);
    assert.match(dd.push(p(1, [0x10, 0x30, 0x01], true)).error!.message, /not continued/);
  });
});
