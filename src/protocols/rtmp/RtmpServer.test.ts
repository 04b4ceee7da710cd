import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { pino } from 'pino';
import { createPublishPolicy, type PublishPolicy, type PublishRequest } from '../../auth/PublishPolicy.ts';
import type { Logger } from '../../core/log.ts';
import { StreamRegistry } from '../../core/StreamRegistry.ts';
import type { Frame, Track } from '../../media/Frame.ts';
import { FlvTagType, parseFlvTags } from '../../media/flv/tag.ts';
import { parseVideoTag } from '../../media/flv/video.ts';
import { ffmpeg } from '../../media/testing/ffmpeg.ts';
import { decodeAmf0Sequence, encodeAmf0 } from './amf0.ts';
import { encodeChunks } from './chunk.ts';
import {
  MessageType,
  setChunkSizeMessage,
  UserControlEvent,
  userControlMessage,
  windowAckSizeMessage,
} from './messages.ts';
import { RtmpServer } from './RtmpServer.ts';
import { RtmpTestClient } from './testing/RtmpTestClient.ts';

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

interface Harness {
  server: RtmpServer;
  registry: StreamRegistry;
  port: number;
  lines: LogLine[];
  url(path: string): string;
}

async function startServer(
  t: TestContext,
  options: { authorizePublish?: PublishPolicy; handshakeTimeoutMs?: number } = {},
): Promise<Harness> {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => lines.push(JSON.parse(s) as LogLine) });
  const registry = new StreamRegistry();
  const server = new RtmpServer({
    registry,
    host: '127.0.0.1',
    port: 0,
    authorizePublish: options.authorizePublish ?? (() => null),
    log: logger as unknown as Logger,
    ...(options.handshakeTimeoutMs ? { handshakeTimeoutMs: options.handshakeTimeoutMs } : {}),
  });
  await server.listen();
  t.after(() => server.close());
  const port = server.address.port;
  return { server, registry, port, lines, url: (path) => `rtmp://127.0.0.1:${port}/${path}` };
}

interface Ffmpeg {
  proc: ChildProcess;
  exited: Promise<{ code: number | null; stderr: string }>;
}

function runFfmpeg(t: TestContext, args: readonly string[]): Ffmpeg {
  const proc = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    proc.on('exit', (code) => resolve({ code, stderr })),
  );
  t.after(() => {
    if (proc.exitCode === null) proc.kill('SIGKILL');
  });
  return { proc, exited };
}

/** The publish the brief asks for: 640x360 30 fps H.264 (GOP 30, no B-frames) + 48 kHz AAC, in real time. */
function publishTestSource(t: TestContext, url: string, seconds: number): Ffmpeg {
  return runFfmpeg(t, [
    ...['-re', '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30'],
    ...['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000'],
    ...['-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-g', '30', '-c:a', 'aac'],
    ...['-t', String(seconds), '-f', 'flv', url],
  ]);
}

interface Recording {
  tracks: (readonly Track[])[];
  video: Frame[];
  audio: Frame[];
  unpublished: number;
}

function record(registry: StreamRegistry, path: string): Recording {
  const rec: Recording = { tracks: [], video: [], audio: [], unpublished: 0 };
  registry.on('published', (stream) => {
    if (stream.path !== path) return;
    if (stream.consumers.size > 0) return;
    stream.addConsumer({
      onTracks: (tracks) => rec.tracks.push(tracks),
      onFrame: (f) => (f.trackId === 1 ? rec.video : rec.audio).push(f),
      onUnpublish: () => {},
    });
  });
  registry.on('unpublished', (stream) => {
    if (stream.path === path) rec.unpublished++;
  });
  return rec;
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function closedWithin(client: RtmpTestClient, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const result = await Promise.race([client.closed.then(() => true as const), timeout]);
  clearTimeout(timer);
  return result;
}

function hasLine(lines: LogLine[], pattern: RegExp, level?: number): boolean {
  return lines.some((l) => pattern.test(l.msg) && (level === undefined || l.level === level));
}

test('ffmpeg publishes H.264 + AAC: tracks, frame counts, GOP, monotonic timestamps', async (t) => {
  const h = await startServer(t);
  const rec = record(h.registry, 'live/cam1');
  const ffmpeg = publishTestSource(t, h.url('live/cam1'), 4);
  const { code, stderr } = await ffmpeg.exited;
  assert.equal(code, 0, stderr);
  await waitFor(() => rec.unpublished === 1, 'unpublish');

  assert.equal(rec.tracks.length, 1, 'setTracks once');
  const [video, audio] = rec.tracks[0];
  assert.equal(video.codec, 'h264');
  assert.equal(video.width, 640);
  assert.equal(video.height, 360);
  assert.match(video.codecString, /^avc1\.[0-9a-f]{6}$/);
  assert.equal(audio.codec, 'aac');
  assert.equal(audio.sampleRate, 48000);
  assert.equal(audio.timescale, 48000);

  assert.ok(
    rec.video.length >= 108 && rec.video.length <= 132,
    `${rec.video.length} video frames, expected 120 ±10 %`,
  );
  const keys = rec.video.flatMap((f, i) => (f.keyframe ? [i] : []));
  assert.equal(keys[0], 0, 'starts on a keyframe');
  for (let i = 1; i < keys.length; i++) assert.equal(keys[i] - keys[i - 1], 30, `keyframe every 30: ${keys}`);
  for (let i = 1; i < rec.video.length; i++)
    assert.ok(rec.video[i].dts > rec.video[i - 1].dts, `video dts at ${i}`);
  assert.ok(rec.audio.length >= 150, `${rec.audio.length} audio frames`);
  for (let i = 1; i < rec.audio.length; i++)
    assert.ok(rec.audio[i].dts > rec.audio[i - 1].dts, `audio dts at ${i}`);
  // Video at 90 kHz from 33/34 ms RTMP timestamps: 30 fps is 3000 ticks a frame on average.
  const span = rec.video.at(-1)!.dts - rec.video[0].dts;
  assert.ok(
    Math.abs(span / (rec.video.length - 1) - 3000) < 30,
    `mean frame interval ${span / (rec.video.length - 1)}`,
  );

  await waitFor(() => h.server.sessionCount === 0, 'the session to close');
  // Still registered only because the test's recording consumer holds it.
  assert.equal(h.registry.get('live/cam1')?.live, false);
  assert.ok(hasLine(h.lines, /^publish started$/));
  assert.ok(hasLine(h.lines, /^publish ended$/));
});

test('ffmpeg publishing MP3 or Speex audio: the stream goes live video-only and its warnings say why', async (t) => {
  const h = await startServer(t);
  const cases = [
    { path: 'live/mp3', codec: ['-c:a', 'libmp3lame', '-ar', '44100'], named: /FLV sound format 2 \(MP3\)/ },
    {
      path: 'live/speex',
      codec: ['-c:a', 'libspeex', '-ar', '16000'],
      named: /FLV sound format 11 \(Speex\)/,
    },
  ];
  for (const c of cases) {
    runFfmpeg(t, [
      ...['-re', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30'],
      ...['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000'],
      ...['-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-g', '30', ...c.codec],
      ...['-t', '4', '-f', 'flv', h.url(c.path)],
    ]);
  }
  for (const c of cases) {
    await waitFor(() => (h.registry.get(c.path)?.tracks.length ?? 0) > 0, `${c.path} to go live`);
    const stream = h.registry.get(c.path)!;
    await waitFor(() => stream.warnings.size > 0, `a warning on ${c.path}`);
    assert.deepEqual(
      stream.tracks.map((tr) => tr.kind),
      ['video'],
    );
    const warnings = [...stream.warnings];
    assert.equal(warnings.length, 1, warnings.join(' | '));
    assert.match(warnings[0], c.named);
    assert.match(warnings[0], /the audio is ignored/);
    assert.ok(hasLine(h.lines, c.named, 40), 'the same is logged as a warning');
  }
});

test('a second publisher on a live path is refused with BadName while the first keeps publishing', async (t) => {
  const h = await startServer(t);
  const rec = record(h.registry, 'live/cam1');
  const first = publishTestSource(t, h.url('live/cam1'), 4);
  await waitFor(() => rec.video.length >= 15, 'the first publisher to flow');
  const publisher = h.registry.get('live/cam1')!.publisher;

  const client = await RtmpTestClient.open(h.port);
  const status = await client.publish('live', 'cam1');
  assert.equal(status.code, 'NetStream.Publish.BadName');
  assert.equal(status.level, 'error');
  assert.equal(status.description, 'publish refused for "live/cam1": stream already has a publisher');
  assert.ok(await closedWithin(client, 3000), 'the refused connection is closed');
  assert.ok(
    h.lines.some((l) => l.path === 'live/cam1' && /already has a publisher/.test(l.msg) && l.level === 40),
  );

  // ffmpeg as the second publisher fails too.
  const second = runFfmpeg(t, [
    '-f',
    'lavfi',
    '-i',
    'testsrc2=size=160x90:rate=10',
    '-t',
    '1',
    '-f',
    'flv',
    h.url('live/cam1'),
  ]);
  assert.notEqual((await second.exited).code, 0);

  const before = rec.video.length;
  await waitFor(() => rec.video.length >= before + 15, 'the first publisher to keep flowing');
  assert.equal(h.registry.get('live/cam1')!.publisher, publisher);
  assert.equal((await first.exited).code, 0);
  assert.equal(rec.unpublished, 1);
});

test('the publish policy refuses with Unauthorized and gets the stream key from the query string', async (t) => {
  const requests: PublishRequest[] = [];
  const policy = createPublishPolicy({ loopbackPublish: false, publishKey: 's3cret', apiToken: '' });
  const h = await startServer(t, {
    authorizePublish: (r) => {
      requests.push(r);
      return policy(r);
    },
  });

  const refused = await RtmpTestClient.open(h.port);
  const status = await refused.publish('live', 'cam1');
  assert.equal(status.code, 'NetStream.Publish.Unauthorized');
  assert.equal(status.level, 'error');
  assert.equal(
    status.description,
    'publish refused for "live/cam1" from 127.0.0.1: a publish key is required (?key=… on the stream name)',
  );
  assert.ok(await closedWithin(refused, 3000));
  assert.ok(hasLine(h.lines, /^publish unauthorized: publish refused for "live\/cam1"/, 40));
  assert.equal(h.registry.get('live/cam1'), undefined);

  const wrong = await RtmpTestClient.open(h.port);
  assert.equal(
    (await wrong.publish('live', 'cam1?key=nope')).description,
    'wrong publish key for "live/cam1"',
  );

  const allowed = await RtmpTestClient.open(h.port);
  assert.equal((await allowed.publish('live', 'cam1?key=s3cret')).code, 'NetStream.Publish.Start');
  assert.ok(h.registry.get('live/cam1')?.live);
  assert.deepStrictEqual(
    requests.map((r) => [r.protocol, r.path, r.remoteAddress.replace(/^::ffff:/, ''), r.key]),
    [
      ['rtmp', 'live/cam1', '127.0.0.1', undefined],
      ['rtmp', 'live/cam1', '127.0.0.1', 'nope'],
      ['rtmp', 'live/cam1', '127.0.0.1', 's3cret'],
    ],
  );
  allowed.close();
  await waitFor(() => h.registry.get('live/cam1') === undefined, 'unpublish on disconnect');
});

test('invalid paths and unknown streams are refused with the NetStream codes and a log line', async (t) => {
  const h = await startServer(t);
  const bad = await RtmpTestClient.open(h.port);
  const status = await bad.publish('live', 'cam 1!');
  assert.equal(status.code, 'NetStream.Publish.BadName');
  assert.match(String(status.description), /invalid stream path "live\/cam 1!"/);
  assert.ok(h.lines.some((l) => l.name === 'cam 1!' && /^publish refused: invalid stream path/.test(l.msg)));

  const unknown = await RtmpTestClient.open(h.port);
  const play = await unknown.play('live', 'nobody');
  assert.equal(play.code, 'NetStream.Play.StreamNotFound');
  assert.ok(h.lines.some((l) => l.path === 'live/nobody' && /stream not found/.test(l.msg)));
  assert.ok(await closedWithin(unknown, 3000));

  // A nested app maps to a nested path.
  const nested = await RtmpTestClient.open(h.port);
  assert.equal((await nested.publish('org/team', 'cam2')).code, 'NetStream.Publish.Start');
  assert.ok(h.registry.get('org/team/cam2')?.live);
  nested.close();
});

test('RTMP play: ffmpeg reads a live stream back as H.264 + AAC, two players at once', async (t) => {
  const h = await startServer(t);
  const rec = record(h.registry, 'live/cam1');
  publishTestSource(t, h.url('live/cam1'), 7);
  await waitFor(() => rec.video.length >= 20, 'the publisher to flow');
  const dir = mkdtempSync(join(tmpdir(), 'subsecond-rtmp-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const outputs = [join(dir, 'a.flv'), join(dir, 'b.flv')];
  const players = outputs.map((out) =>
    runFfmpeg(t, ['-i', h.url('live/cam1'), '-t', '3', '-c', 'copy', '-f', 'flv', '-y', out]),
  );
  await waitFor(() => h.registry.get('live/cam1')?.viewers.get('rtmp') === 2, 'two RTMP viewers');
  for (const p of players) {
    const { code, stderr } = await p.exited;
    assert.equal(code, 0, stderr);
  }
  for (const out of outputs) {
    const probe = JSON.parse(
      execFileSync(
        'ffprobe',
        [
          '-v',
          'error',
          '-count_packets',
          '-show_entries',
          'stream=codec_name,width,height,sample_rate,nb_read_packets',
          '-of',
          'json',
          out,
        ],
        { encoding: 'utf8' },
      ),
    ) as { streams: { codec_name: string; width?: number; sample_rate?: string; nb_read_packets: string }[] };
    const v = probe.streams.find((s) => s.codec_name === 'h264');
    const a = probe.streams.find((s) => s.codec_name === 'aac');
    assert.ok(v && a, JSON.stringify(probe));
    assert.equal(v.width, 640);
    assert.equal(a.sample_rate, '48000');
    assert.ok(Number(v.nb_read_packets) >= 75, `${v.nb_read_packets} video packets in 3 s`);
  }
  await waitFor(() => h.registry.get('live/cam1')?.viewers.get('rtmp') === undefined, 'the viewers to leave');
  assert.ok(h.lines.some((l) => l.msg === 'player left' && l.skips === 0));
});

test('bad clients are closed with a log line while a healthy publisher keeps flowing', async (t) => {
  const h = await startServer(t, { handshakeTimeoutMs: 800 });
  const rec = record(h.registry, 'live/cam1');
  const healthy = publishTestSource(t, h.url('live/cam1'), 6);
  await waitFor(() => rec.video.length >= 15, 'the publisher to flow');
  const before = rec.video.length;

  // Not RTMP at all.
  const http = await RtmpTestClient.open(h.port, false);
  http.raw(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  // Set Chunk Size 0.
  const zero = await RtmpTestClient.open(h.port);
  zero.raw(
    encodeChunks(
      { csid: 2, timestamp: 0, typeId: MessageType.SetChunkSize, streamId: 0 },
      [new Uint8Array(4)],
      128,
    ),
  );
  // A command cut off in the middle of its command object.
  const truncated = await RtmpTestClient.open(h.port);
  const connect = encodeAmf0('connect', 1, { app: 'live', tcUrl: 'rtmp://127.0.0.1/live' });
  truncated.raw(
    encodeChunks(
      { csid: 3, timestamp: 0, typeId: MessageType.CommandAmf0, streamId: 0 },
      [connect.subarray(0, 30)],
      128,
    ),
  );
  // A 16 MiB message header.
  const huge = await RtmpTestClient.open(h.port);
  huge.send(setChunkSizeMessage(65536));
  huge.raw(Uint8Array.from([0x06, 0, 0, 0, 0xff, 0xff, 0xff, 0x09, 1, 0, 0, 0]));
  // Connects and says nothing.
  const silent = await RtmpTestClient.open(h.port, false);

  for (const [client, name] of [
    [http, 'garbage handshake'],
    [zero, 'chunk size 0'],
    [truncated, 'truncated AMF'],
    [huge, 'huge message'],
    [silent, 'silent socket'],
  ] as const) {
    assert.ok(await closedWithin(client, 3000), `${name}: connection closed`);
  }
  assert.ok(hasLine(h.lines, /^closing connection: handshake refused: version byte 0x47 is not RTMP 3$/, 40));
  assert.ok(
    hasLine(h.lines, /^closing connection: Set Chunk Size 0 is out of range \(1 to 2147483647\)$/, 40),
  );
  assert.ok(hasLine(h.lines, /^closing connection: AMF0 truncated: .* at offset \d+$/, 40));
  assert.ok(
    hasLine(
      h.lines,
      /^closing connection: message of 16777215 bytes \(type 9\) on chunk stream 6 exceeds the 16384-byte limit before a publish or play is accepted$/,
      40,
    ),
  );
  assert.ok(hasLine(h.lines, /^closing connection: no RTMP handshake and connect in time$/, 30));
  for (const l of h.lines.filter((l) => /^closing connection/.test(l.msg)))
    assert.match(String(l.remote), /^127\.0\.0\.1:\d+$/);

  // The healthy publisher never noticed.
  await waitFor(() => rec.video.length >= before + 30, 'frames to keep flowing');
  assert.equal(h.server.sessionCount, 1);
  assert.equal((await healthy.exited).code, 0);
  assert.equal(rec.unpublished, 1);
});

test('protocol control: type 17 commands, pings, acknowledgements and an aggregate publish', async (t) => {
  const h = await startServer(t);
  const rec = record(h.registry, 'live/agg');
  const client = await RtmpTestClient.open(h.port);
  // connect as an AMF3 command message: a zero format byte, then AMF0.
  const connect = encodeAmf0('connect', 1, { app: 'live', tcUrl: 'rtmp://127.0.0.1/live' });
  client.send({
    csid: 3,
    timestamp: 0,
    typeId: MessageType.CommandAmf3,
    streamId: 0,
    payload: Buffer.concat([Buffer.from([0]), connect]),
  });
  const result = await client.waitForCommand((c) => c.transaction === 1);
  assert.equal(result.name, '_result');
  assert.equal((result.values[3] as { code: string }).code, 'NetConnection.Connect.Success');
  assert.equal((result.values[2] as { fmsVer: string }).fmsVer, 'FMS/3,0,1,123');
  // The server announced its own chunk size before the result.
  assert.ok(
    client.messages.some(
      (m) => m.typeId === MessageType.SetChunkSize && Buffer.from(m.payload).readUInt32BE() === 4096,
    ),
  );

  client.send(userControlMessage(UserControlEvent.PingRequest, 123456));
  await waitFor(
    () =>
      client.messages.some(
        (m) => m.typeId === MessageType.UserControl && m.payload[1] === UserControlEvent.PingResponse,
      ),
    'PingResponse',
  );
  const pong = client.messages.find(
    (m) => m.typeId === MessageType.UserControl && m.payload[1] === UserControlEvent.PingResponse,
  )!;
  assert.equal(Buffer.from(pong.payload).readUInt32BE(2), 123456);

  // Publish one second of FLV as a single aggregate message: an FLV body is tags and PreviousTagSizes.
  client.send(windowAckSizeMessage(4096));
  const create = client.command(0, 'createStream');
  const streamId = (await client.waitForCommand((c) => c.transaction === create)).values[3] as number;
  client.command(streamId, 'publish', 'agg', 'live');
  await client.waitForCommand((c) => c.name === 'onStatus');
  const flv = ffmpeg([
    ...['-f', 'lavfi', '-i', 'testsrc2=size=160x96:rate=30', '-f', 'lavfi', '-i', 'sine=sample_rate=48000'],
    ...['-t', '1', '-c:v', 'libx264', '-tune', 'zerolatency', '-c:a', 'aac', '-f', 'flv', '-'],
  ]).subarray(13);
  client.send({ csid: 6, timestamp: 0, typeId: MessageType.Aggregate, streamId, payload: flv });
  await waitFor(() => rec.video.length === 30, 'the aggregate frames');
  assert.deepStrictEqual(
    rec.tracks[0].map((tr) => tr.codec),
    ['h264', 'aac'],
  );
  // Each tag keeps its own timestamp.
  const videoTags = parseFlvTags(flv).filter(
    (tag) => tag.type === FlvTagType.Video && parseVideoTag(tag.body).kind === 'frame',
  );
  assert.deepStrictEqual(
    rec.video.map((f) => f.dts),
    videoTags.map((tag) => tag.timestamp * 90),
  );
  // More than one window (4096 bytes) was received: the server acknowledged with its byte count.
  await waitFor(
    () => client.messages.some((m) => m.typeId === MessageType.Acknowledgement),
    'an acknowledgement',
  );
  const ack = client.messages.find((m) => m.typeId === MessageType.Acknowledgement)!;
  assert.ok(Buffer.from(ack.payload).readUInt32BE() > flv.length);
  client.close();
});

/** Publishes one second of ffmpeg FLV as one aggregate message (an FLV body is tags and PreviousTagSizes). */
async function publishAggregate(port: number, name: string): Promise<RtmpTestClient> {
  const client = await RtmpTestClient.open(port);
  assert.equal((await client.publish('live', name)).code, 'NetStream.Publish.Start');
  const flv = ffmpeg([
    ...['-f', 'lavfi', '-i', 'testsrc2=size=160x96:rate=30', '-f', 'lavfi', '-i', 'sine=sample_rate=48000'],
    ...['-t', '1', '-c:v', 'libx264', '-tune', 'zerolatency', '-c:a', 'aac', '-f', 'flv', '-'],
  ]).subarray(13);
  client.send({ csid: 6, timestamp: 0, typeId: MessageType.Aggregate, streamId: 1, payload: flv });
  return client;
}

test('an RTMP player stays through unpublish and continues on republish with new sequence headers', async (t) => {
  const h = await startServer(t);
  const first = await publishAggregate(h.port, 'cam1');
  await waitFor(() => h.registry.get('live/cam1')?.ready === true, 'the first publish');
  const player = await RtmpTestClient.open(h.port);
  await player.play('live', 'cam1');
  const events = () =>
    player.messages.flatMap((m) => {
      if (m.typeId === MessageType.CommandAmf0) {
        const info = decodeAmf0Sequence(m.payload)[3] as { code?: string } | undefined;
        return info?.code ? [info.code] : [];
      }
      if (m.typeId === MessageType.Video) {
        const p = parseVideoTag(m.payload);
        return [p.kind === 'config' ? 'video config' : `video ${m.timestamp}`];
      }
      return [];
    });
  await waitFor(() => events().filter((e) => /^video \d/.test(e)).length >= 30, 'the first GOP');
  first.close();
  await waitFor(() => events().includes('NetStream.Play.UnpublishNotify'), 'UnpublishNotify');
  assert.ok(h.registry.get('live/cam1'), 'the waiting player keeps the stream registered');
  const lastBefore = Math.max(
    ...player.messages.filter((m) => m.typeId === MessageType.Video).map((m) => m.timestamp),
  );

  const second = await publishAggregate(h.port, 'cam1');
  await waitFor(() => events().filter((e) => /^video \d/.test(e)).length >= 60, 'the second publish');
  const after = events().slice(events().indexOf('NetStream.Play.UnpublishNotify'));
  assert.deepStrictEqual(after.slice(0, 3), [
    'NetStream.Play.UnpublishNotify',
    'NetStream.Play.PublishNotify',
    'video config',
  ]);
  const resumed = player.messages.filter((m) => m.typeId === MessageType.Video).slice(-30);
  assert.ok(
    resumed[0].timestamp > lastBefore,
    `timestamps continue: ${resumed[0].timestamp} after ${lastBefore}`,
  );
  assert.equal(h.registry.get('live/cam1')?.viewers.get('rtmp'), 1);
  second.close();
  player.close();
  await waitFor(() => h.registry.get('live/cam1') === undefined, 'the stream to be dropped');
});

test('a kick from the registry ends the publisher connection and unpublishes once', async (t) => {
  const h = await startServer(t);
  let unpublished = 0;
  h.registry.on('unpublished', () => unpublished++);
  const client = await RtmpTestClient.open(h.port);
  assert.equal((await client.publish('live', 'cam1')).code, 'NetStream.Publish.Start');
  assert.equal(h.registry.kick('live/cam1', 'kicked by test'), true);
  assert.ok(await closedWithin(client, 3000));
  await waitFor(() => h.server.sessionCount === 0, 'the session to end');
  assert.equal(unpublished, 1);
  assert.ok(hasLine(h.lines, /^publisher kicked$/));
});

test('close() ends every session and unpublishes', async (t) => {
  const h = await startServer(t);
  const publisher = await RtmpTestClient.open(h.port);
  await publisher.publish('live', 'cam1');
  const idle = await RtmpTestClient.open(h.port);
  await idle.connect('live');
  assert.equal(h.server.sessionCount, 2);
  await h.server.close();
  assert.equal(h.server.sessionCount, 0);
  assert.equal(h.registry.get('live/cam1'), undefined);
  assert.ok(await closedWithin(publisher, 1000));
  assert.ok(await closedWithin(idle, 1000));
});
