/**
 * A WHIP publisher (node-datachannel peer) watched by a WHEP viewer on a worker process (`webrtc.workers: 1`):
 * packets arrive as forwarded, with the viewer's own SSRC and continuous sequence from a keyframe; the joining
 * viewer's keyframe request and its PLI travel worker → main → publisher; its NACK is answered from the
 * worker's own retransmission cache; the worker sends sender reports.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Track } from 'node-datachannel';
import { parseRtpPacket, writeRtpPacket } from '../../src/media/rtp/packet.ts';
import { writeNack, writePli } from '../../src/media/rtp/rtcp.ts';
import { type RunningServer, startServer } from '../../src/server.ts';
import { waitFor } from '../helpers/processes.ts';
import { connected, createTestPeer, type TestPeer } from '../helpers/webrtcClient.ts';

const STREAM = 'live/rtc-workers-whip';
const PUBLISHER_SSRC = 0x0c0ffee0;

let server: RunningServer;
let sending: NodeJS.Timeout | undefined;
let sequence = 500;
let timestamp = 90_000;
const peers: TestPeer[] = [];
const publisherRtcp: Buffer[] = [];

/** Fake H.264: every 30th packet an IDR slice (NAL type 5), the rest non-IDR slices (type 1). */
function sendVideo(track: Track): void {
  const payload = Buffer.alloc(300, sequence & 0xff);
  payload[0] = sequence % 30 === 0 ? 0x65 : 0x41;
  const packet = writeRtpPacket(
    { payloadType: 102, sequenceNumber: sequence & 0xffff, timestamp, ssrc: PUBLISHER_SSRC, marker: true },
    payload,
  );
  sequence++;
  timestamp += 3000;
  track.sendMessageBinary(Buffer.from(packet));
}

const plis = () => publisherRtcp.filter((m) => m[1] === 206 && (m[0] & 0x1f) === 1).length;

function post(path: string, body: string): Promise<Response> {
  return fetch(`${server.httpUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp' },
    body,
  });
}

before(async () => {
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { enabled: false },
    webrtc: { udpPort: 0, workers: 1, keyframeIntervalMs: 100 },
    log: { level: 'warn' },
  });
  const publisher = await createTestPeer({
    video: 'H264',
    direction: 'SendOnly',
    ssrcs: { video: PUBLISHER_SSRC },
  });
  peers.push(publisher);
  publisher.tracks[0].onMessage((m) => publisherRtcp.push(m));
  const response = await post(`/whip/${STREAM}`, publisher.offer);
  assert.equal(response.status, 201, await response.clone().text());
  publisher.pc.setRemoteDescription(await response.text(), 'answer');
  await connected(publisher.pc);
  sending = setInterval(() => sendVideo(publisher.tracks[0]), 10);
});

after(async () => {
  clearInterval(sending);
  for (const peer of peers) peer.close();
  await server?.close();
});

test('WHIP → WHEP on a worker: forwarded packets, PLI up to the publisher, NACK from the worker cache', async () => {
  const viewer = await createTestPeer({ video: 'H264', direction: 'RecvOnly' });
  peers.push(viewer);
  const received: Buffer[] = [];
  const reports: Buffer[] = [];
  viewer.tracks[0].onMessage((m) => {
    // RFC 5761 §4: RTCP packet types 192-223 share the port; 200 is a sender report.
    if (m[1] === 200) reports.push(m);
    else if (m[1] < 192 || m[1] > 223) received.push(m);
  });
  const plisBefore = plis();
  const response = await post(`/whep/${STREAM}`, viewer.offer);
  assert.equal(response.status, 201, await response.clone().text());
  const location = response.headers.get('location') ?? '';
  const answer = await response.text();
  const ssrc = Number(/a=ssrc:(\d+) /.exec(answer)?.[1]);
  assert.ok(ssrc > 0);
  viewer.pc.setRemoteDescription(answer, 'answer');
  await connected(viewer.pc);
  await waitFor('forwarded packets', () => received.length > 40);
  const { sessions } = (await (await fetch(`${server.httpUrl}/api/v1/webrtc/sessions`)).json()) as {
    sessions: { id: string; worker?: number; tracks?: { nacks: number; retransmitted: number }[] }[];
  };
  const listed = sessions.find((s) => s.id === server.webrtc?.sessionAt(location)?.id);
  assert.equal(listed?.worker, 0, 'served by the worker');

  const packets = received.map((m) => parseRtpPacket(m));
  assert.ok(
    packets.every((p) => p.ssrc === ssrc && p.payloadType === 102),
    'the viewer own SSRC and PT',
  );
  assert.equal(packets[0].payload[0] & 0x1f, 5, 'the first packet starts a keyframe');
  for (let i = 1; i < packets.length; i++) {
    assert.equal(packets[i].sequenceNumber, (packets[i - 1].sequenceNumber + 1) & 0xffff, 'continuous');
    assert.equal((packets[i].timestamp - packets[i - 1].timestamp) >>> 0, 3000, 'spacing kept');
  }
  await waitFor('the joining viewer’s keyframe request to reach the publisher', () => plis() > plisBefore);

  // NACK for two packets: resent by the worker from its copy of the cache (the SRTP replay check drops the
  // duplicates at the viewer; the worker's counters show they were sent).
  viewer.tracks[0].sendMessageBinary(
    Buffer.from(writeNack(1, ssrc, [packets[5].sequenceNumber, packets[6].sequenceNumber])),
  );
  const video = async () => {
    const list = (await (await fetch(`${server.httpUrl}/api/v1/webrtc/sessions`)).json()) as {
      sessions: typeof sessions;
    };
    return list.sessions.find((s) => s.id === server.webrtc?.sessionAt(location)?.id)?.tracks?.[0];
  };
  await waitFor('the retransmissions from the worker', async () => (await video())?.retransmitted === 2);
  assert.equal((await video())?.nacks, 2);

  // The viewer's PLI goes worker → main → publisher (after the rate limit of 100 ms).
  await new Promise((r) => setTimeout(r, 150));
  const before = plis();
  viewer.tracks[0].sendMessageBinary(Buffer.from(writePli(1, ssrc)));
  await waitFor('the forwarded PLI', () => plis() > before);

  await waitFor('a sender report from the worker', () => reports.length > 0, 5000);
  assert.equal(reports[0].readUInt32BE(4), ssrc, 'the sender report is for the viewer SSRC');
  assert.equal((await fetch(`${server.httpUrl}${location}`, { method: 'DELETE' })).status, 200);
});
