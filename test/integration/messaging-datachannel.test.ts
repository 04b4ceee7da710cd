/**
 * Messaging over WebRTC data channels against the real server: node-datachannel peers do WHIP and WHEP with a
 * `subsecond.messaging` channel (real ICE, DTLS and SCTP on loopback) and speak the WebSocket frame protocol on
 * it: subscribe, publish, order across transports, resume with since on a reopened channel, refusals the
 * channel survives, an unknown label closed while the media session plays on, and the channels ending with
 * their session.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { DataChannel, Track } from 'node-datachannel';
import { writeRtpPacket } from '../../src/media/rtp/packet.ts';
import { type RunningServer, startServer } from '../../src/server.ts';
import { openWs, range, type ServerFrame } from '../helpers/channels.ts';
import { waitFor } from '../helpers/processes.ts';
import { connected, createTestPeer, type TestPeer } from '../helpers/webrtcClient.ts';

const STREAM = 'live/dc';
const CHAT = `${STREAM}:chat`;
const LABEL = 'subsecond.messaging';

let server: RunningServer;
let publisher: TestPeer;
let publisherChannel: DcClient;
let sending: NodeJS.Timeout | undefined;
let sequence = 0;
const peers: TestPeer[] = [];

/** The socket protocol on a data channel: every frame the server sent, and helpers to wait for them. */
class DcClient {
  readonly dc: DataChannel;
  readonly frames: ServerFrame[] = [];
  closed = false;

  constructor(dc: DataChannel) {
    this.dc = dc;
    dc.onMessage((data) => this.frames.push(JSON.parse(String(data)) as ServerFrame));
    dc.onClosed(() => {
      this.closed = true;
    });
  }

  /** Wrap a channel as soon as it is created: what arrives before `onMessage` is set is not kept. */
  static async open(dc: DataChannel): Promise<DcClient> {
    return new DcClient(dc).ready();
  }

  async ready(): Promise<DcClient> {
    await waitFor('the data channel to open', () => this.dc.isOpen());
    await this.next('hello');
    return this;
  }

  send(frame: Record<string, unknown>): void {
    this.dc.sendMessage(JSON.stringify(frame));
  }

  of(event: string): ServerFrame[] {
    return this.frames.filter((f) => f.event === event);
  }

  async next(event: string, count = 1): Promise<ServerFrame[]> {
    await waitFor(`${count} ${event} frame(s) on the data channel`, () => this.of(event).length >= count);
    return this.of(event);
  }

  ids(channel = CHAT): number[] {
    return this.of('message')
      .map((f) => f.message as { id: number; channel: string })
      .filter((m) => m.channel === channel)
      .map((m) => m.id);
  }
}

function sendVideo(track: Track): void {
  const payload = Buffer.alloc(200, sequence & 0xff);
  payload[0] = sequence % 30 === 0 ? 0x65 : 0x41;
  const packet = writeRtpPacket(
    {
      payloadType: 102,
      sequenceNumber: sequence & 0xffff,
      timestamp: sequence * 3000,
      ssrc: 0x1234,
      marker: true,
    },
    payload,
  );
  sequence++;
  track.sendMessageBinary(Buffer.from(packet));
}

async function negotiate(peer: TestPeer, kind: 'whip' | 'whep'): Promise<string> {
  const response = await fetch(`${server.httpUrl}/${kind}/${STREAM}`, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp' },
    body: peer.offer,
  });
  assert.equal(response.status, 201, await response.clone().text());
  const answer = await response.text();
  assert.match(
    answer,
    /m=application \d+ UDP\/DTLS\/SCTP webrtc-datachannel/,
    'the SCTP m-section is answered',
  );
  peer.pc.setRemoteDescription(answer, 'answer');
  await connected(peer.pc);
  return response.headers.get('location') ?? '';
}

async function viewer(): Promise<{ peer: TestPeer; client: DcClient; location: string; video: Buffer[] }> {
  const peer = await createTestPeer({ video: 'H264', direction: 'RecvOnly', dataChannel: LABEL });
  peers.push(peer);
  const client = new DcClient(peer.dataChannel!);
  const video: Buffer[] = [];
  peer.tracks[0].onMessage((m) => {
    if (m[1] < 192 || m[1] > 223) video.push(m);
  });
  const location = await negotiate(peer, 'whep');
  return { peer, client: await client.ready(), location, video };
}

before(async () => {
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { enabled: false },
    hls: { enabled: false },
    webrtc: { udpPort: 0, keyframeIntervalMs: 100 },
    log: { level: 'warn' },
    messaging: {
      maxMessageBytes: 1024,
      publishRatePerSecond: 1000,
      publishBurst: 1000,
      historyMaxMessages: 100,
    },
  });
  publisher = await createTestPeer({ video: 'H264', direction: 'SendOnly', dataChannel: LABEL });
  peers.push(publisher);
  publisherChannel = new DcClient(publisher.dataChannel!);
  await negotiate(publisher, 'whip');
  await publisherChannel.ready();
  await waitFor('the video track to open', () => publisher.tracks[0].isOpen());
  sending = setInterval(() => sendVideo(publisher.tracks[0]), 10);
});

after(async () => {
  clearInterval(sending);
  for (const peer of peers) peer.close();
  await new Promise((r) => setTimeout(r, 300));
  await server?.close();
});

test('WHIP and WHEP peers chat over their data channels, in order, with a WebSocket client in the same channel', async () => {
  const { client: view } = await viewer();
  const publish = publisherChannel;
  const viewerIdentity = view.of('hello')[0].identity as string;
  const publisherIdentity = publish.of('hello')[0].identity as string;
  assert.match(viewerIdentity, /^anon-/);
  assert.notEqual(viewerIdentity, publisherIdentity);

  const ws = await openWs(`${server.httpUrl.replace('http', 'ws')}/ws/channels/${CHAT}`);
  await ws.waitForFrame('the WebSocket subscription', (f) => f.event === 'subscribed');
  view.send({ op: 'subscribe', channel: CHAT });
  await view.next('subscribed');

  for (let i = 1; i <= 30; i++) {
    publish.send({ op: 'publish', channel: CHAT, type: 'chat', data: { text: `whip ${i}` }, ref: `p${i}` });
  }
  await publish.next('ack', 30);
  assert.deepEqual(
    publish.of('ack').map((a) => a.ref),
    range(1, 30).map((i) => `p${i}`),
    'acked in the order sent',
  );
  ws.send({ op: 'publish', channel: CHAT, type: 'chat', data: { text: 'from ws' }, ref: 'w' });
  await waitFor('all 31 at the WHEP viewer', () => view.ids().length >= 31);
  assert.deepEqual(view.ids(), range(1, 31));
  const messages = view.of('message').map((f) => f.message as { from: string; data: { text: string } });
  assert.equal(messages[0].from, publisherIdentity, 'from is the WHIP session`s identity');
  assert.equal(messages[0].data.text, 'whip 1');
  assert.equal(messages[30].data.text, 'from ws');
  await waitFor('the WebSocket client to get the data channel`s messages', () => ws.ids(CHAT).length >= 31);
  assert.deepEqual(ws.ids(CHAT), range(1, 31));

  // Presence counts the data channel transport.
  await waitFor('presence naming the datachannel transport', () =>
    view
      .of('presence')
      .some((f) => (f.presence as { transports: Record<string, number> }).transports.datachannel === 1),
  );
  ws.close();
});

test('a reopened data channel resumes with since: everything after it, once, in order', async () => {
  const { peer, client: first } = await viewer();
  first.send({ op: 'subscribe', channel: CHAT });
  const [{ lastId }] = await first.next('subscribed');
  const base = lastId as number;
  const publish = await DcClient.open(publisher.pc.createDataChannel(LABEL));
  for (let i = 1; i <= 10; i++) publish.send({ op: 'publish', channel: CHAT, type: 'chat', data: { n: i } });
  await waitFor('the first ten', () => first.ids().length >= 10);
  const seen = first.ids().at(4)!;
  first.dc.close();
  await waitFor('the first channel closed', () => first.closed);
  // Published while this viewer had no channel open.
  for (let i = 11; i <= 20; i++) publish.send({ op: 'publish', channel: CHAT, type: 'chat', data: { n: i } });
  await publish.next('ack', 20);

  // The SCTP association stays up: a new channel needs no renegotiation.
  const second = await DcClient.open(peer.pc.createDataChannel(LABEL));
  second.send({ op: 'subscribe', channel: CHAT, since: seen });
  const [subscribed] = await second.next('subscribed');
  assert.equal(subscribed.position, seen);
  await waitFor('the resumed messages', () => second.ids().length >= base + 20 - seen);
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(second.ids(), range(seen + 1, base + 20), 'exactly the messages after since, once');
  assert.equal(second.of('gap').length, 0);
});

test('an unordered, no-retransmit channel carries ephemeral events with the same protocol', async () => {
  const { peer } = await viewer();
  const reactions = `${STREAM}:reactions`;
  const client = await DcClient.open(
    peer.pc.createDataChannel(LABEL, { unordered: true, maxRetransmits: 0 }),
  );
  client.send({ op: 'subscribe', channel: reactions });
  await client.next('subscribed');
  for (let i = 0; i < 20; i++)
    client.send({ op: 'publish', channel: reactions, type: 'reaction', data: '👏' });
  await client.next('ack', 20);
  // Loopback loses nothing; unordered delivery may still swap two, so the set is what is compared.
  await waitFor('the reactions back', () => client.ids(reactions).length >= 20);
  assert.deepEqual(
    client.ids(reactions).toSorted((a, b) => a - b),
    range(1, 20),
  );
});

test('bad input: oversized, malformed and refused frames get error events; an unknown label is closed and media plays on', async () => {
  const { peer, client, location, video } = await viewer();
  client.send({ op: 'publish', channel: CHAT, type: 'chat', data: 'x'.repeat(2000), ref: 'big' });
  const [tooLarge] = await client.next('error');
  assert.equal(tooLarge.code, 'too_large');
  assert.equal(tooLarge.ref, 'big');
  assert.match(tooLarge.message as string, /2002 bytes; the limit is 1024 \(messaging\.maxMessageBytes\)/);

  client.send({ op: 'publish', channel: CHAT, type: 'chat', data: 'y'.repeat(10_000) });
  const errors = await client.next('error', 2);
  assert.equal(errors[1].code, 'too_large');
  assert.match(errors[1].message as string, /frame is \d+ bytes; the limit is 5120/);

  client.dc.sendMessage('{not json');
  client.send({ op: 'teleport' });
  client.send({ op: 'subscribe', channel: 'bad channel!' });
  const more = await client.next('error', 5);
  assert.deepEqual(
    more.slice(2).map((e) => e.code),
    ['bad_frame', 'unknown_op', 'invalid_channel'],
  );
  client.send({ op: 'ping', ref: 'still-here' });
  const [pong] = await client.next('pong');
  assert.equal(pong.ref, 'still-here', 'the channel survives every refusal');

  const stranger = peer.pc.createDataChannel('something-else');
  let strangerClosed = false;
  stranger.onClosed(() => {
    strangerClosed = true;
  });
  await waitFor('the server to close the unknown label', () => strangerClosed);
  const before = video.length;
  await waitFor('video to keep flowing to the viewer', () => video.length > before + 30);
  assert.ok(client.dc.isOpen(), 'the messaging channel is untouched');

  // DELETE ends the session, and its messaging channel with it.
  assert.equal((await fetch(`${server.httpUrl}${location}`, { method: 'DELETE' })).status, 200);
  await waitFor(
    'the messaging channel to close with its session',
    () => client.closed || !client.dc.isOpen(),
  );
});
