/**
 * docs/security.md "RTMP": an onMetaData whose AMF0 references expand past MAX_EXPANDED_BYTES, or that refers
 * to itself, is refused alone (the publisher goes on, the stream says why), and players receive metadata
 * encoded once, no larger than the bound.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { FlvTagType, parseFlvTags } from '../../src/media/flv/tag.ts';
import { ffmpeg } from '../../src/media/testing/ffmpeg.ts';
import { decodeAmf0Sequence, MAX_EXPANDED_BYTES } from '../../src/protocols/rtmp/amf0.ts';
import { Csid, MessageType } from '../../src/protocols/rtmp/messages.ts';
import { metadataWith, referenceBomb, selfReference } from '../../src/protocols/rtmp/testing/amf0Bombs.ts';
import { RtmpTestClient } from '../../src/protocols/rtmp/testing/RtmpTestClient.ts';
import { type RunningServer, startServer } from '../../src/server.ts';
import { waitFor } from '../helpers/processes.ts';

let server: RunningServer;
const clients: RtmpTestClient[] = [];

before(async () => {
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { host: '127.0.0.1', port: 0 },
    hls: { enabled: false },
    webrtc: { enabled: false },
    log: { level: 'error' },
  });
});

after(async () => {
  for (const client of clients) client.close();
  await server?.close();
});

function data(payload: Uint8Array) {
  return { csid: Csid.StreamCommand, timestamp: 0, typeId: MessageType.DataAmf0, streamId: 1, payload };
}

test('a reference bomb or a cycle in onMetaData is refused alone; players get bounded metadata', async () => {
  const publisher = await RtmpTestClient.open(server.rtmpPort);
  clients.push(publisher);
  await publisher.publish('live', 'meta');
  const bomb = metadataWith(referenceBomb(18, 1)); // ~26 MB once expanded
  assert.ok(bomb.length < 400, `${bomb.length} bytes`);
  publisher.send(data(bomb));
  publisher.send(data(metadataWith(selfReference(1))));
  // Aliasing within the bound is legitimate AMF0: 2^9 × 100 bytes.
  publisher.send(data(metadataWith(referenceBomb(9, 1))));
  const clip = ffmpeg([
    ...['-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=30', '-t', '1'],
    ...['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '15', '-f', 'flv', '-'],
  ]);
  for (const tag of parseFlvTags(clip.subarray(13))) {
    if (tag.type !== FlvTagType.Video) continue;
    publisher.send({
      csid: Csid.Video,
      timestamp: tag.timestamp,
      typeId: MessageType.Video,
      streamId: 1,
      payload: tag.body,
    });
  }
  const stream = server.registry.get('live/meta');
  await waitFor('the tracks', () => (stream?.tracks.length ?? 0) > 0);
  const warnings = [...(stream?.warnings ?? [])];
  assert.ok(
    warnings.some((w) => /onMetaData ignored: AMF0 references expand the value past 262144 bytes/.test(w)),
    `the stream says why: ${warnings.join(' | ')}`,
  );
  assert.ok(
    warnings.some((w) => /a cycle/.test(w)),
    'and why the self-reference was refused',
  );

  const players = await Promise.all(
    [0, 1, 2, 3, 4, 5].map(async () => {
      const player = await RtmpTestClient.open(server.rtmpPort);
      clients.push(player);
      await player.play('live', 'meta');
      return player;
    }),
  );
  const metadataOf = (player: RtmpTestClient) =>
    player.messages.find(
      (m) => m.typeId === MessageType.DataAmf0 && decodeAmf0Sequence(m.payload)[0] === 'onMetaData',
    );
  for (const player of players) {
    await waitFor('onMetaData at the player', () => metadataOf(player) !== undefined);
    const metadata = metadataOf(player)!;
    assert.ok(metadata.payload.length <= MAX_EXPANDED_BYTES, `${metadata.payload.length} bytes to a player`);
    const [, body] = decodeAmf0Sequence(metadata.payload) as [string, { bomb?: unknown[] }];
    assert.equal(body.bomb?.length, 10, 'the accepted metadata reached the player');
  }
  let publisherClosed = false;
  void publisher.closed.then(() => {
    publisherClosed = true;
  });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(publisherClosed, false, 'the publisher was kept');
  assert.ok(stream?.live);
});
