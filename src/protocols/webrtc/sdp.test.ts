import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { startsKeyframe } from './keyframe.ts';
import { adtsHeader, adtsParameters } from './OpusTranscoder.ts';
import { RetransmissionCache } from './RtpFeed.ts';
import { addCandidates, parseTrickleFragment, SdpError, summarizeOffer, takeCandidates } from './sdp.ts';

const fixture = (name: string) => readFileSync(new URL(`testdata/${name}`, import.meta.url), 'utf8');
const ALL = { video: ['h264', 'vp8', 'vp9', 'av1'] };

test('a recorded Chromium WHIP offer: H.264 packetization-mode 1 constrained baseline and Opus are chosen', () => {
  const offer = fixture('chromium-whip-offer.sdp');
  const summary = summarizeOffer(offer, ALL);
  assert.equal(summary.media.length, 2);
  const [video, audio] = summary.media;
  assert.equal(video.kind, 'video');
  assert.equal(video.direction, 'sendonly');
  assert.equal(video.codec?.name, 'H264');
  assert.match(video.codec?.fmtp ?? '', /packetization-mode=1/);
  assert.match(video.codec?.fmtp ?? '', /profile-level-id=42e01f/);
  // The payload type is the offer's own for that format.
  assert.ok(offer.includes(`a=rtpmap:${video.codec?.payloadType} H264/90000`));
  assert.ok(video.ssrcs.length >= 1, 'Chromium signals its SSRCs');
  assert.equal(audio.codec?.name, 'opus');
  assert.equal(audio.codec?.clockRate, 48000);
  assert.equal(audio.codec?.channels, 2);
  assert.ok(summary.iceUfrag.length > 0 && summary.icePwd.length > 0);
});

test('codec preference decides between the offered video codecs', () => {
  const offer = fixture('chromium-whip-offer.sdp');
  assert.equal(summarizeOffer(offer, { video: ['vp8', 'h264'] }).media[0].codec?.name, 'VP8');
  assert.equal(summarizeOffer(offer, { video: ['av1'] }).media[0].codec?.name, 'AV1');
  // A WHEP viewer of a Main-profile source gets a Main-profile H.264 format when the offer has one, and
  // constrained baseline when it has none of the source's profile (this Chromium offers no High).
  const whep = fixture('chromium-whep-offer.sdp');
  const main = summarizeOffer(whep, { video: ['h264'], h264ProfileIdc: 0x4d });
  assert.match(main.media[0].codec?.fmtp ?? '', /packetization-mode=1;profile-level-id=4d001f/);
  const high = summarizeOffer(whep, { video: ['h264'], h264ProfileIdc: 0x64 });
  assert.match(high.media[0].codec?.fmtp ?? '', /packetization-mode=1;profile-level-id=42e01f/);
});

test('a Chromium WHEP offer: recvonly media and a data channel m-section', () => {
  const summary = summarizeOffer(fixture('chromium-whep-offer.sdp'), { video: ['h264'] });
  assert.deepEqual(
    summary.media.map((m) => [m.kind, m.direction, m.codec?.name]),
    [
      ['video', 'recvonly', 'H264'],
      ['audio', 'recvonly', 'opus'],
    ],
  );
  assert.equal(summary.dataMid, '2');
});

test('simulcast RIDs are recorded', () => {
  const summary = summarizeOffer(fixture('chromium-simulcast-offer.sdp'), ALL);
  assert.deepEqual(summary.media[0].rids, ['h', 'm', 'l']);
  assert.deepEqual(summary.media[0].extensions, { rid: 10, mid: 9 });
  // a=simulcast gives the preference order (RFC 8853 §5.2), whatever order the a=rid lines come in; the
  // first of each group of alternatives counts, a paused (~) one too.
  const reordered = fixture('chromium-simulcast-offer.sdp').replace(
    'a=simulcast:send h;m;l',
    'a=simulcast:send ~l;m,h',
  );
  assert.deepEqual(summarizeOffer(reordered, ALL).media[0].rids, ['l', 'm', 'h']);
});

test('an OBS-style (libdatachannel) offer: audio first, H.264 payload type 96', () => {
  const summary = summarizeOffer(fixture('libdatachannel-obs-style-offer.sdp'), ALL);
  assert.deepEqual(
    summary.media.map((m) => [m.mid, m.kind, m.codec?.name, m.codec?.payloadType, m.ssrcs]),
    [
      ['0', 'audio', 'opus', 111, [1111]],
      ['1', 'video', 'H264', 96, [2222]],
    ],
  );
});

test('bad offers are refused with the reason', () => {
  const offer = fixture('chromium-whip-offer.sdp');
  assert.throws(
    () => summarizeOffer('hello', ALL),
    (e: unknown) =>
      e instanceof SdpError && e.status === 400 && /must start with "v=0", got "hello"/.test(e.message),
  );
  assert.throws(
    () => summarizeOffer('v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n', ALL),
    (e: unknown) => e instanceof SdpError && /no m= section/.test(e.message),
  );
  assert.throws(
    () => summarizeOffer(offer.replace(/a=mid:0\r\n/, ''), ALL),
    (e: unknown) => e instanceof SdpError && /m-section 0 \(video\) has no a=mid/.test(e.message),
  );
  assert.throws(
    () => summarizeOffer(offer.replace(/a=ice-ufrag:.*\r\n/g, ''), ALL),
    (e: unknown) => e instanceof SdpError && /no a=ice-ufrag/.test(e.message),
  );
  // packetization-mode 0 only: no H.264 format we can take (we send and expect FU-A).
  const mode0 = summarizeOffer(offer.replace(/packetization-mode=1/g, 'packetization-mode=0'), {
    video: ['h264'],
  });
  assert.equal(mode0.media[0].codec, null);
  assert.ok(mode0.media[0].offered.includes('H264/90000'));
});

test('fields that read as integers stay text, and damaged formats are refused by name', () => {
  // sdp-transform makes numbers of such fields; the fuzzer's crashes (testdata/fuzz/sdp/crash-*) came from them.
  const offer = fixture('chromium-whip-offer.sdp')
    .replace(/a=ice-ufrag:HwNN/g, 'a=ice-ufrag:1234')
    .replace('a=rtpmap:96 VP8/90000', 'a=rtpmap:96 7/90000')
    .replace('a=fmtp:111 minptime=10;useinbandfec=1', 'a=fmtp:111 1')
    .replace(/a=rtpmap:(98|100) VP9\/90000/g, 'a=rtpmap:$1 VP9/');
  const summary = summarizeOffer(offer, { video: ['vp9', 'h264'] });
  assert.equal(summary.iceUfrag, '1234', "a numeric ufrag compares equal to a trickle fragment's");
  const [video, audio] = summary.media;
  assert.equal(video.codec?.name, 'H264');
  assert.ok(video.refusals.includes('7/90000 (pt 96) is not supported'), video.refusals.join('; '));
  assert.ok(
    video.refusals.some((r) => /^VP9\/ \(pt 98\) has clock rate "": it must be a positive integer$/.test(r)),
    video.refusals.join('; '),
  );
  assert.equal(audio.codec?.fmtp, '1');
  assert.throws(
    () => summarizeOffer(offer.replace('a=rtpmap:111 opus/48000/2', 'a=rtpmap: opus/48000/2'), ALL),
    (e: unknown) =>
      e instanceof SdpError &&
      e.status === 400 &&
      /m-section 1 has a=rtpmap: with payload type "": it must be 0-127/.test(e.message),
  );
});

test('candidates: taken out of an offer with their mid, added to an answer before end-of-candidates', () => {
  const offer = fixture('libdatachannel-obs-style-offer.sdp');
  const { sdp, candidates } = takeCandidates(offer);
  assert.ok(!sdp.includes('a=candidate:'));
  assert.ok(candidates.length >= 2);
  assert.ok(candidates.every((c) => c.mid === '0' || c.mid === '1'));
  assert.ok(candidates.every((c) => c.candidate.startsWith('candidate:')));
  const extra = 'a=candidate:100 1 UDP 2122260223 127.0.0.1 8189 typ host';
  const answer = addCandidates(offer, [extra]);
  const lines = answer.split('\r\n');
  assert.equal(lines.indexOf(extra) + 1, lines.indexOf('a=end-of-candidates'));
  assert.equal(addCandidates(answer, [extra]), answer, 'a candidate already there is not added twice');
});

test('trickle-ice-sdpfrag (RFC 8840) bodies', () => {
  const fragment = parseTrickleFragment(
    'a=ice-ufrag:abcd\r\na=ice-pwd:secret\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\na=candidate:1 1 UDP 1 10.0.0.1 5000 typ host\r\na=end-of-candidates\r\n',
  );
  assert.deepEqual(fragment, {
    iceUfrag: 'abcd',
    icePwd: 'secret',
    candidates: [{ mid: '0', candidate: 'candidate:1 1 UDP 1 10.0.0.1 5000 typ host' }],
  });
  assert.throws(() => parseTrickleFragment('not sdp at all'), /not an SDP fragment line: "not sdp at all"/);
});

test('keyframe starts are found from the first payload bytes', () => {
  assert.ok(startsKeyframe('H264', Uint8Array.of(0x67, 0x42)), 'SPS');
  assert.ok(startsKeyframe('H264', Uint8Array.of(0x65, 0x88)), 'IDR');
  assert.ok(!startsKeyframe('H264', Uint8Array.of(0x41, 0x9a)), 'non-IDR slice');
  // STAP-A holding SPS (2 bytes) and PPS (1 byte).
  assert.ok(startsKeyframe('H264', Uint8Array.of(0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x01, 0x68)));
  // FU-A start of an IDR, and its continuation.
  assert.ok(startsKeyframe('H264', Uint8Array.of(0x7c, 0x85)));
  assert.ok(!startsKeyframe('H264', Uint8Array.of(0x7c, 0x05)));
  // VP8: S=1 PID=0, no extensions, P bit clear → keyframe; with X/I/M picture ID too.
  assert.ok(startsKeyframe('VP8', Uint8Array.of(0x10, 0x00)));
  assert.ok(!startsKeyframe('VP8', Uint8Array.of(0x10, 0x01)));
  assert.ok(startsKeyframe('VP8', Uint8Array.of(0x90, 0x80, 0x81, 0x23, 0x00)));
  assert.ok(!startsKeyframe('VP8', Uint8Array.of(0x00, 0x00)), 'not the start of a partition');
  assert.ok(!startsKeyframe('H264', new Uint8Array(0)));
});

test('ADTS headers carry the AudioSpecificConfig for ffmpeg', () => {
  // AAC-LC, 48 kHz (index 3), stereo: 0x11 0x90.
  const params = adtsParameters(Uint8Array.of(0x11, 0x90));
  assert.deepEqual(params, { profile: 1, sfi: 3, channels: 2 });
  const header = adtsHeader(params as { profile: number; sfi: number; channels: number }, 100);
  assert.deepEqual([...header], [0xff, 0xf1, 0x4c, 0x80, 0x0d, 0x7f, 0xfc]);
  assert.equal(
    ((header[3] & 3) << 11) | (header[4] << 3) | (header[5] >> 5),
    107,
    'frame length counts the header',
  );
  assert.match(String(adtsParameters(Uint8Array.of(0x17, 0x80))), /explicit AAC sample rate/);
});

test('the retransmission cache keeps the last packets by sequence number', () => {
  const cache = new RetransmissionCache(4);
  for (let seq = 65534; seq < 65534 + 6; seq++) cache.add(Buffer.of(seq & 0xff), seq & 0xffff, seq * 10);
  assert.equal(cache.get(65534), undefined, 'overwritten');
  assert.deepEqual(cache.get(3), { packet: Buffer.of(3), timestamp: 65539 * 10 });
  assert.equal(cache.get(4), undefined, 'never sent');
});
