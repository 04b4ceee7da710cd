/**
 * WHIP and WHEP against the real server with node-datachannel peers as clients (real ICE, DTLS and SRTP on
 * loopback): the RFC 9725 resource model, the per-viewer RTP rewrite, keyframe gating, PLI and NACK, trickle
 * PATCH, and bad input refused with a clear message while live sessions carry on.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, test } from 'node:test';
import type { Track } from 'node-datachannel';
import { parseRtpPacket, writeRtpPacket } from '../../src/media/rtp/packet.ts';
import { type RunningServer, startServer } from '../../src/server.ts';
import { publishTestSource, stop, waitFor } from '../helpers/processes.ts';
import { connected, createTestPeer, type TestPeer } from '../helpers/webrtcClient.ts';

const STREAM = 'live/rtc-int';
const PUBLISHER_SSRC = 0x0badcafe;

let server: RunningServer;
let publisher: TestPeer;
let whipLocation = '';
let whipEtag = '';
let sending: NodeJS.Timeout | undefined;
let sequence = 1000;
let timestamp = 90_000;
/** RTCP the publisher got from the server (PLI, receiver reports). */
const publisherRtcp: Buffer[] = [];
const peers: TestPeer[] = [];

/** Fake H.264: every 30th packet an IDR slice (NAL type 5), the rest non-IDR slices (type 1). */
function sendVideo(track: Track): void {
  const keyframe = sequence % 30 === 0;
  const payload = Buffer.alloc(200, sequence & 0xff);
  payload[0] = keyframe ? 0x65 : 0x41;
  const packet = writeRtpPacket(
    { payloadType: 102, sequenceNumber: sequence & 0xffff, timestamp, ssrc: PUBLISHER_SSRC, marker: true },
    payload,
  );
  sequence++;
  timestamp += 3000;
  track.sendMessageBinary(Buffer.from(packet));
}

function url(path: string): string {
  return `${server.httpUrl}${path}`;
}

function post(path: string, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url(path), {
    method: 'POST',
    headers: { 'content-type': 'application/sdp', ...headers },
    body,
  });
}

async function errorOf(response: Response): Promise<string> {
  return ((await response.json()) as { error: string }).error;
}

before(async () => {
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { enabled: false },
    webrtc: {
      udpPort: 0,
      iceServers: [
        { urls: 'stun:stun.example.net:3478' },
        {
          urls: ['turn:turn.example.net:3478', 'turns:turn.example.net:5349'],
          username: 'u',
          credential: 'p',
        },
      ],
      keyframeIntervalMs: 100,
    },
    log: { level: 'warn' },
  });
  publisher = await createTestPeer({
    video: 'H264',
    audio: true,
    direction: 'SendOnly',
    ssrcs: { video: PUBLISHER_SSRC },
  });
  peers.push(publisher);
  publisher.tracks[0].onMessage((m) => publisherRtcp.push(m));
  const response = await post(`/whip/${STREAM}`, publisher.offer);
  assert.equal(response.status, 201, await response.clone().text());
  whipLocation = response.headers.get('location') ?? '';
  whipEtag = response.headers.get('etag') ?? '';
  publisher.pc.setRemoteDescription(await response.text(), 'answer');
  await connected(publisher.pc);
  await waitFor('the video track to open', () => publisher.tracks[0].isOpen());
  sending = setInterval(() => sendVideo(publisher.tracks[0]), 10);
});

after(async () => {
  clearInterval(sending);
  for (const peer of peers) peer.close();
  await new Promise((r) => setTimeout(r, 300));
  await server?.close();
});

test('WHIP answers 201 with Location, ETag, Accept-Patch and ice-server Links; packets reach the session', async () => {
  assert.match(whipLocation, /^\/whip\/resource\//);
  assert.match(whipEtag, /^".+"$/);
  const session = server.webrtc!.publishers.find((s) => s.path === STREAM)!;
  await waitFor('video packets at the server', () => (session.incoming.video?.received ?? 0) > 20);
  assert.equal(session.incoming.video?.ssrc, PUBLISHER_SSRC);
  await waitFor('a receiver report to the publisher', () =>
    publisherRtcp.some((m) => m[1] === 201 && m.readUInt32BE(8) === PUBLISHER_SSRC),
  );
});

test('OPTIONS answers the CORS preflight and lists the ICE servers', async () => {
  const response = await fetch(url(`/whip/${STREAM}`), { method: 'OPTIONS' });
  assert.equal(response.status, 204);
  assert.match(response.headers.get('access-control-allow-methods') ?? '', /PATCH/);
  assert.match(response.headers.get('access-control-allow-headers') ?? '', /authorization/);
  assert.deepEqual(await rawLinks('OPTIONS', `/whip/${STREAM}`), ICE_SERVER_LINKS);
});

/** RFC 9725 §4.6: every configured server in its own Link header, TURN ones with their credentials. */
const ICE_SERVER_LINKS = [
  '<stun:stun.example.net:3478>; rel="ice-server"',
  '<turn:turn.example.net:3478>; rel="ice-server"; username="u"; credential="p"; credential-type="password"',
  '<turns:turn.example.net:5349>; rel="ice-server"; username="u"; credential="p"; credential-type="password"',
];

/** The Link header lines exactly as sent (fetch would join them into one value). */
function rawLinks(method: string, path: string, body?: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      url(path),
      { method, headers: { 'content-type': 'application/sdp' } },
      (res) => {
        res.resume();
        const links: string[] = [];
        for (let i = 0; i < res.rawHeaders.length; i += 2)
          if (res.rawHeaders[i].toLowerCase() === 'link') links.push(res.rawHeaders[i + 1]);
        res.on('end', () => resolve(links));
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

test('the 201 of a WHEP offer carries one Link header per ICE server too', async () => {
  const viewer = await createTestPeer({ video: 'H264', audio: true, direction: 'RecvOnly' });
  peers.push(viewer);
  assert.deepEqual(await rawLinks('POST', `/whep/${STREAM}`, viewer.offer), ICE_SERVER_LINKS);
  for (const session of server.webrtc!.viewers) session.close('test done');
});

test('a WHEP viewer gets the publisher packets with its own SSRC and sequence, from a keyframe on', async () => {
  const viewer = await createTestPeer({ video: 'H264', audio: true, direction: 'RecvOnly' });
  peers.push(viewer);
  const received: Buffer[] = [];
  viewer.tracks[0].onMessage((m) => {
    if (m[1] < 192 || m[1] > 223) received.push(m);
  });
  const plisBefore = publisherRtcp.filter((m) => m[1] === 206 && (m[0] & 0x1f) === 1).length;
  const response = await post(`/whep/${STREAM}`, viewer.offer);
  assert.equal(response.status, 201, await response.clone().text());
  const answer = await response.text();
  const ssrc = Number(/a=ssrc:(\d+) /.exec(answer.slice(0, answer.indexOf('m=audio')))?.[1]);
  assert.ok(ssrc > 0, 'the answer names the SSRC the viewer will see');

  viewer.pc.setRemoteDescription(answer, 'answer');
  await connected(viewer.pc);
  await waitFor('forwarded packets', () => received.length > 30);
  const packets = received.map((m) => parseRtpPacket(m));
  assert.ok(packets.every((p) => p.ssrc === ssrc && p.payloadType === 102));
  assert.equal(packets[0].payload[0] & 0x1f, 5, 'the first packet a viewer gets starts a keyframe');
  for (let i = 1; i < packets.length; i++) {
    assert.equal(
      packets[i].sequenceNumber,
      (packets[i - 1].sequenceNumber + 1) & 0xffff,
      'sequence is continuous',
    );
    assert.equal(
      (packets[i].timestamp - packets[i - 1].timestamp) >>> 0,
      3000,
      'timestamps keep their spacing',
    );
  }
  await waitFor(
    'a PLI to the publisher when the viewer joined',
    () => publisherRtcp.filter((m) => m[1] === 206 && (m[0] & 0x1f) === 1).length > plisBefore,
  );

  // NACK (RFC 4585 §6.2.1): the server resends the packet from its cache with this viewer's header. The
  // packet was received once, so the viewer's SRTP drops the copy as a replay (a really lost packet passes);
  // the server's count is what shows it was sent.
  const lost = packets[5];
  const nack = Buffer.alloc(16);
  nack[0] = 0x81;
  nack[1] = 205;
  nack.writeUInt16BE(3, 2);
  nack.writeUInt32BE(1, 4);
  nack.writeUInt32BE(ssrc, 8);
  nack.writeUInt16BE(lost.sequenceNumber, 12);
  nack.writeUInt16BE(0b1, 14); // and the one after it
  viewer.tracks[0].sendMessageBinary(nack);
  const location = response.headers.get('location') ?? '';
  const sessionStats = async () => {
    const { sessions } = (await (await fetch(url('/api/v1/webrtc/sessions'))).json()) as {
      sessions: { id: string; tracks?: { kind: string; nacks: number; retransmitted: number }[] }[];
    };
    const id = server.webrtc!.sessionAt(location)?.id;
    return sessions.find((s) => s.id === id)?.tracks?.find((t) => t.kind === 'video');
  };
  await waitFor('the retransmissions', async () => (await sessionStats())?.retransmitted === 2);
  assert.equal((await sessionStats())?.nacks, 2);

  // The viewer's PLI reaches the publisher.
  await new Promise((r) => setTimeout(r, 150));
  const plis = publisherRtcp.filter((m) => m[1] === 206 && (m[0] & 0x1f) === 1).length;
  const pli = Buffer.alloc(12);
  pli[0] = 0x81;
  pli[1] = 206;
  pli.writeUInt16BE(2, 2);
  pli.writeUInt32BE(1, 4);
  pli.writeUInt32BE(ssrc, 8);
  viewer.tracks[0].sendMessageBinary(pli);
  await waitFor(
    'the forwarded PLI',
    () => publisherRtcp.filter((m) => m[1] === 206 && (m[0] & 0x1f) === 1).length > plis,
  );

  const stream = (await (await fetch(url(`/api/v1/streams/${STREAM}`))).json()) as {
    viewers: { byProtocol: { whep: number } };
  };
  assert.equal(stream.viewers.byProtocol.whep, 1);
  assert.equal((await fetch(url(location), { method: 'DELETE' })).status, 200);
  viewer.close();
});

test('trickle PATCH: candidates accepted, a wrong If-Match refused, an ICE restart refused, unknown 404', async () => {
  const trickle =
    'a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=candidate:1 1 UDP 2122260223 127.0.0.1 40000 typ host\r\n';
  const ufrag = /a=ice-ufrag:(\S+)/.exec(publisher.offer)?.[1] ?? '';
  const pwd = /a=ice-pwd:(\S+)/.exec(publisher.offer)?.[1] ?? '';
  const patch = (location: string, body: string, headers: Record<string, string> = {}) =>
    fetch(url(location), {
      method: 'PATCH',
      headers: { 'content-type': 'application/trickle-ice-sdpfrag', ...headers },
      body,
    });
  const body = trickle.replace('{ufrag}', ufrag).replace('{pwd}', pwd);
  assert.equal((await patch(whipLocation, body, { 'if-match': whipEtag })).status, 204);
  const wrong = await patch(whipLocation, body, { 'if-match': '"nope"' });
  assert.equal(wrong.status, 412);
  assert.match(await errorOf(wrong), /If-Match "nope" does not match/);
  // RFC 9725 §4.3.1: an ICE restart carries If-Match "*"; a session without restart support answers 422 and
  // lives on.
  const restart = await patch(
    whipLocation,
    trickle.replace('{ufrag}', 'newufrag').replace('{pwd}', 'newpassword0123456789012'),
    { 'if-match': '*' },
  );
  assert.equal(restart.status, 422);
  assert.match(
    await errorOf(restart),
    /ICE restart is not supported \(the PATCH carries a new ice-ufrag "newufrag"\)/,
  );
  assert.equal(
    (server.webrtc!.sessionAt(whipLocation) as { closed?: boolean } | undefined)?.closed,
    false,
    'the session lives on',
  );
  const unknown = await patch('/whip/resource/00000000-0000-0000-0000-000000000000', body);
  assert.equal(unknown.status, 404);
  assert.match(await errorOf(unknown), /no such WHIP resource/);
});

test('bad input is refused with the reason, and the live publisher keeps flowing', async () => {
  const session = server.webrtc!.publishers.find((s) => s.path === STREAM)!;
  const before = session.incoming.video?.received ?? 0;

  const wrongType = await fetch(url('/whip/live/other'), {
    method: 'POST',
    headers: { 'content-type': 'text/plain' },
    body: 'hello',
  });
  assert.equal(wrongType.status, 415);
  assert.match(await errorOf(wrongType), /Content-Type: application\/sdp, got "text\/plain"/);

  const notSdp = await post('/whip/live/other', 'hello, not an offer');
  assert.equal(notSdp.status, 400);
  assert.match(await errorOf(notSdp), /not an SDP offer: it must start with "v=0"/);

  // A damaged offer (what the SDP fuzzer makes) is a 400 naming the line, not a 500 from a parser's TypeError.
  const damaged = await post(
    '/whip/live/other',
    publisher.offer
      .replace(/a=rtpmap:111 opus/, 'a=rtpmap: opus')
      .replace(/a=rtpmap:(\d+) H264/g, 'a=rtpmap:$1 7'),
  );
  assert.equal(damaged.status, 400);
  assert.match(await errorOf(damaged), /m-section \d has a=rtpmap: with payload type "": it must be 0-127/);

  const huge = await post('/whip/live/other', `v=0\r\n${'a=x\r\n'.repeat(210_000)}`);
  assert.equal(huge.status, 413);
  assert.match(await errorOf(huge), /larger than 65536 bytes \(webrtc\.maxSdpBytes\)/);

  const pcmu = publisher.offer
    .replace(/m=video .*/, 'm=video 9 UDP/TLS/RTP/SAVPF 98')
    .replace(/a=rtpmap:102 H264\/90000/, 'a=rtpmap:98 H265/90000')
    .replace(/m=audio .*/, 'm=audio 9 UDP/TLS/RTP/SAVPF 0')
    .replace(/a=rtpmap:111 opus\/48000\/2/, 'a=rtpmap:0 PCMU/8000');
  const noCodec = await post('/whip/live/other', pcmu);
  assert.equal(noCodec.status, 406);
  assert.match(await errorOf(noCodec), /nothing this server can receive.*H265\/90000.*PCMU\/8000/);

  const busy = await post(`/whip/${STREAM}`, publisher.offer);
  assert.equal(busy.status, 409);
  assert.equal(await errorOf(busy), `publish refused for "${STREAM}": stream already has a publisher`);

  const badPath = await post('/whip/live/bad%20path', publisher.offer);
  assert.equal(badPath.status, 400);
  assert.match(await errorOf(badPath), /invalid stream path/);

  const unknownStream = await post('/whep/live/nobody', publisher.offer);
  assert.equal(unknownStream.status, 404);
  assert.equal(await errorOf(unknownStream), 'stream "live/nobody" is not live');

  const vp8Viewer = await createTestPeer({ video: 'VP8', direction: 'RecvOnly' });
  peers.push(vp8Viewer);
  const vp8 = await post(`/whep/${STREAM}`, vp8Viewer.offer);
  assert.equal(vp8.status, 406);
  assert.match(await errorOf(vp8), /cannot receive this stream \(video H264 and audio opus\).*VP8\/90000/);
  vp8Viewer.close();

  await waitFor('the publisher to keep flowing', () => (session.incoming.video?.received ?? 0) > before + 50);
  assert.equal(server.webrtc!.sessions.size, 1, 'refused offers leave no session behind');
});

test('an m-section without a usable codec is answered inactive while the rest is taken', async () => {
  const peer = await createTestPeer({ video: 'H264', audio: true, direction: 'SendOnly' });
  peers.push(peer);
  const h265 = peer.offer
    .replace(/m=video (\d+) (\S+) 102/, 'm=video $1 $2 98')
    .replace(/a=rtpmap:102 H264\/90000/, 'a=rtpmap:98 H265/90000')
    .replace(/a=(rtcp-fb|fmtp):102 .*\r\n/g, '');
  const response = await post('/whip/live/partial', h265);
  assert.equal(response.status, 201, await response.clone().text());
  const answer = await response.text();
  const video = answer.slice(
    answer.indexOf('m=video'),
    answer.indexOf('m=audio') > answer.indexOf('m=video') ? answer.indexOf('m=audio') : undefined,
  );
  assert.match(video, /a=inactive/);
  assert.match(answer, /a=rtpmap:111 opus\/48000\/2/);
  assert.deepEqual(await streamWarnings('live/partial'), [
    'video (mid 0) refused and not received: H265/90000 (pt 98) is not supported',
  ]);
  const location = response.headers.get('location') ?? '';
  assert.equal((await fetch(url(location), { method: 'DELETE' })).status, 200);
  peer.close();
});

async function streamWarnings(path: string): Promise<string[]> {
  const response = await fetch(url(`/api/v1/streams/${path}`));
  assert.equal(response.status, 200, await response.clone().text());
  return ((await response.json()) as { warnings: string[] }).warnings;
}

test('H.264 offered without fmtp (packetization-mode 0) goes live audio-only with a warning naming it', async () => {
  const peer = await createTestPeer({ video: 'H264', audio: true, direction: 'SendOnly' });
  peers.push(peer);
  const response = await post('/whip/live/mode0', peer.offer.replace(/a=fmtp:102 .*\r\n/, ''));
  assert.equal(response.status, 201, await response.clone().text());
  assert.deepEqual(await streamWarnings('live/mode0'), [
    'video (mid 0) refused and not received: H264/90000 (pt 102) has packetization-mode 0 (no fmtp): ' +
      'only packetization-mode=1 (RFC 6184 FU-A/STAP-A) is taken',
  ]);
  assert.equal((await fetch(url(response.headers.get('location') ?? ''), { method: 'DELETE' })).status, 200);
  peer.close();
});

test('remote WHIP publishers need the bearer token', async () => {
  const secured = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { enabled: false },
    webrtc: { udpPort: 0 },
    auth: { loopbackPublish: false, publishKey: 'sekrit' },
    log: { level: 'warn' },
  });
  try {
    const peer = await createTestPeer({ video: 'H264', direction: 'SendOnly' });
    peers.push(peer);
    const send = (headers: Record<string, string>) =>
      fetch(`${secured.httpUrl}/whip/live/secure`, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp', ...headers },
        body: peer.offer,
      });
    const none = await send({});
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer');
    const wrong = await send({ authorization: 'Bearer guess' });
    assert.equal(wrong.status, 403);
    assert.match(await errorOf(wrong), /wrong publish key for "live\/secure"/);
    const right = await send({ authorization: 'Bearer sekrit' });
    assert.equal(right.status, 201);
    peer.close();
  } finally {
    await secured.close();
  }
});

test('RTMP -> WHEP: H.264 packetized once per stream from a keyframe with SPS/PPS; no ffmpeg for Opus is said', async () => {
  const rtmp = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { host: '127.0.0.1', port: 0 },
    webrtc: { udpPort: 0, ffmpegPath: '/nonexistent/ffmpeg' },
    log: { level: 'error' },
  });
  const ffmpeg = publishTestSource(`${rtmp.rtmpUrl}/live/rtmp-src`, { size: '320x240', rate: 30, gop: 15 });
  const viewers: TestPeer[] = [];
  try {
    await waitFor('the RTMP stream', () => rtmp.registry.get('live/rtmp-src')?.ready);
    viewers.push(
      await createTestPeer({ video: 'H264', audio: true, direction: 'RecvOnly' }),
      await createTestPeer({ video: 'H264', audio: true, direction: 'RecvOnly' }),
    );
    const received: Buffer[][] = [[], []];
    for (const [i, viewer] of viewers.entries()) {
      viewer.tracks[0].onMessage((m) => {
        if (m[1] < 192 || m[1] > 223) received[i].push(m);
      });
      const response = await fetch(`${rtmp.httpUrl}/whep/live/rtmp-src`, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp' },
        body: viewer.offer,
      });
      assert.equal(response.status, 201, await response.clone().text());
      viewer.pc.setRemoteDescription(await response.text(), 'answer');
      await connected(viewer.pc);
    }
    await waitFor('both viewers to get video', () => received.every((r) => r.length > 40));
    for (const packets of received) {
      const first = parseRtpPacket(packets[0]);
      // RFC 6184: the first packet a viewer sees starts a keyframe, SPS first (alone or in a STAP-A).
      const nal = first.payload[0] & 0x1f;
      assert.ok(nal === 7 || (nal === 24 && (first.payload[3] & 0x1f) === 7), `first NAL type ${nal}`);
      assert.ok(
        packets.some((p) => (p[1] & 0x80) !== 0),
        'the marker bit ends access units',
      );
    }
    // The same packets, each viewer with its own SSRC: the payloads of a frame are byte-identical.
    const a = received[0].map((m) => parseRtpPacket(m));
    const b = received[1].map((m) => parseRtpPacket(m));
    assert.notEqual(a[0].ssrc, b[0].ssrc);
    const lastKeyB = b.findLastIndex((p) => (p.payload[0] & 0x1f) === 7 || (p.payload[0] & 0x1f) === 24);
    const match = a.find((p) => Buffer.from(p.payload).equals(Buffer.from(b[lastKeyB].payload)));
    assert.ok(match, 'viewer A received the keyframe packet viewer B received, byte for byte');
    const stream = rtmp.registry.get('live/rtmp-src')!;
    await waitFor('the missing transcoder to be reported', () =>
      [...stream.warnings].find((w) => w.includes('Opus transcoder failed (cannot run /nonexistent/ffmpeg')),
    );
    assert.ok([...stream.warnings].some((w) => /WHEP viewers get video only/.test(w)));
  } finally {
    await stop(ffmpeg);
    for (const viewer of viewers) viewer.close();
    await rtmp.close();
  }
});
