import assert from 'node:assert/strict';
import { test } from 'node:test';
import { log } from '../core/log.ts';
import { ChannelHistory } from './ChannelHistory.ts';
import { ChannelHub } from './ChannelHub.ts';
import { InvalidChannelError, parseChannelName, streamPathOf } from './ChannelName.ts';
import { AnonymousIdentities, compilePattern, PatternChannelPolicy } from './ChannelPolicy.ts';
import { InMemoryBus } from './InMemoryBus.ts';
import { StoredMessage } from './Message.ts';
import { ChannelLimitError } from './MessageBus.ts';
import { MessagingError, parseClientFrame } from './protocol.ts';
import { TokenBucket } from './TokenBucket.ts';

function message(id: number, time = 1000): StoredMessage {
  return new StoredMessage({ id, channel: 'c', time, from: 'u', type: 'chat', data: { n: id } });
}

function filled(count: number, limits = { maxMessages: 5, maxAgeMs: 60_000 }, now = () => 1000) {
  const history = new ChannelHistory('c', limits, now);
  for (let id = 1; id <= count; id++) history.append(message(id, now()));
  return history;
}

test('channel names: the allowed characters pass, anything else is refused naming the value', () => {
  assert.equal(parseChannelName('live/cam1:chat'), 'live/cam1:chat');
  assert.equal(parseChannelName('a.b_c-d:e/f'), 'a.b_c-d:e/f');
  assert.throws(() => parseChannelName(''), /invalid channel name "": it is empty/);
  assert.throws(() => parseChannelName('live cam'), /invalid channel name "live cam": use only/);
  assert.throws(() => parseChannelName('<script>'), InvalidChannelError);
  assert.throws(() => parseChannelName('x'.repeat(257)), /longer than 256/);
  assert.throws(() => parseChannelName(42), /must be a string/);
  assert.equal(streamPathOf('live/cam1:chat'), 'live/cam1');
  assert.equal(streamPathOf('lobby'), null);
});

test('history: after an id gives exactly the later messages in order; from now gives none', () => {
  const history = filled(4);
  assert.deepEqual(
    history.since(1).messages.map((m) => m.id),
    [2, 3, 4],
  );
  assert.deepEqual(
    history.since(0).messages.map((m) => m.id),
    [1, 2, 3, 4],
  );
  assert.deepEqual(history.since(4).messages, []);
  assert.equal(history.since(4).gap, null);
  assert.deepEqual(history.since(undefined), { messages: [], gap: null, lastId: 4 });
});

test('history bounded by count: a client behind it gets a gap counting exactly what it missed', () => {
  const history = filled(12);
  assert.equal(history.size, 5);
  const replay = history.since(3);
  assert.deepEqual(
    replay.messages.map((m) => m.id),
    [8, 9, 10, 11, 12],
  );
  assert.deepEqual(replay.gap, { channel: 'c', since: 3, missed: 4, resumeFrom: 7, reason: 'evicted' });
  // Exactly at the edge: nothing missed.
  assert.equal(history.since(7).gap, null);
  assert.equal(history.since(7).messages.length, 5);
});

test('history bounded by age: old messages expire and count as missed', () => {
  let now = 1000;
  const history = new ChannelHistory('c', { maxMessages: 100, maxAgeMs: 500 }, () => now);
  history.append(message(1, 1000));
  history.append(message(2, 1200));
  now = 1600;
  history.append(message(3, 1600));
  assert.equal(history.size, 2);
  assert.deepEqual(history.since(0).gap?.missed, 1);
  now = 5000;
  assert.equal(history.size, 0);
  const replay = history.since(1);
  assert.deepEqual(replay.messages, []);
  assert.equal(replay.gap?.missed, 2);
  assert.equal(replay.gap?.resumeFrom, 3);
});

test('history: an id from before a restart (past the newest) gets a reset gap and everything retained', () => {
  const history = filled(3);
  const replay = history.since(50);
  assert.equal(replay.gap?.reason, 'reset');
  assert.equal(replay.gap?.resumeFrom, 0);
  assert.deepEqual(
    replay.messages.map((m) => m.id),
    [1, 2, 3],
  );
});

test('history refuses ids that are not dense', () => {
  const history = filled(2);
  assert.throws(() => history.append(message(4)), /id 4 does not follow 2/);
});

test('encodings: one JSON per message, frames and SSE events built from it', () => {
  const m = new StoredMessage({ id: 7, channel: 'c', time: 1, from: 'u', type: 'chat', data: 'a\nb' });
  assert.equal(m.frame, `{"event":"message","message":${m.json}}`);
  assert.equal(m.frame, m.frame);
  assert.equal(m.sseEvent.toString(), `id: 7\nevent: message\ndata: ${m.json}\n\n`);
  assert.ok(!m.json.includes('\n'), 'a newline in data stays escaped, so the SSE data is one line');
});

test('token bucket: burst, then refusal with the wait, then refill at the rate', () => {
  let now = 0;
  const bucket = new TokenBucket(2, 3, () => now);
  assert.deepEqual([bucket.take(), bucket.take(), bucket.take()], [0, 0, 0]);
  assert.equal(bucket.take(), 500);
  now = 500;
  assert.equal(bucket.take(), 0);
  assert.equal(bucket.take(), 500);
  now = 10_000;
  assert.equal(bucket.full, true);
});

test('patterns: * stays within a segment, ** matches anything', () => {
  assert.ok(compilePattern('live/*:chat').test('live/cam1:chat'));
  assert.ok(!compilePattern('live/*:chat').test('live/a/b:chat'));
  assert.ok(compilePattern('**').test('a/b/c:d'));
  assert.ok(!compilePattern('live.x').test('liveAx'), 'a dot is literal');
  const policy = new PatternChannelPolicy({ anonymousRead: '**', anonymousWrite: 'live/*:chat' });
  const anon = { id: 'anon-1', anonymous: true };
  assert.equal(policy.authorize(anon, 'live/cam1:auction', 'subscribe'), null);
  assert.equal(policy.authorize(anon, 'live/cam1:chat', 'publish'), null);
  assert.match(
    policy.authorize(anon, 'live/cam1:auction', 'publish') ?? '',
    /anonymous clients may not publish/,
  );
  const host = {
    id: 'host',
    anonymous: false,
    grants: [{ pattern: 'live/**', actions: ['publish' as const] }],
  };
  assert.equal(policy.authorize(host, 'live/cam1:auction', 'publish'), null);
  // A connection that outlives its token may do nothing more, not even what anonymous clients may.
  const lapsed = { ...host, expiresAt: Date.now() - 1 };
  assert.match(policy.authorize(lapsed, 'live/cam1:auction', 'publish') ?? '', /token of host expired at/);
  assert.match(policy.authorize(lapsed, 'live/cam1:chat', 'subscribe') ?? '', /expired/);
  assert.equal(policy.authorize({ ...host, expiresAt: Date.now() + 60_000 }, 'live/x:y', 'publish'), null);
});

test('client frames: each op parsed, bad ones refused with what was wrong', () => {
  assert.deepEqual(parseClientFrame('{"op":"subscribe","channel":"c","since":3}'), {
    op: 'subscribe',
    channel: 'c',
    since: 3,
  });
  assert.deepEqual(parseClientFrame('{"op":"publish","channel":"c","type":"chat","data":1,"from":"x"}'), {
    op: 'publish',
    channel: 'c',
    type: 'chat',
    data: 1,
    ref: undefined,
  });
  assert.throws(() => parseClientFrame('{oops'), /frame is not JSON/);
  assert.throws(() => parseClientFrame('[1]'), /JSON object/);
  assert.throws(() => parseClientFrame('{"op":"dance"}'), /unknown op "dance"/);
  assert.throws(
    () => parseClientFrame('{"op":"subscribe","channel":"c","since":-1}'),
    /non-negative integer/,
  );
  assert.throws(() => parseClientFrame('{"op":"publish","channel":"c"}'), /needs "type"/);
});

test('anonymous identities: a signed token proves its id; forged or foreign tokens get a fresh one', () => {
  const identities = new AnonymousIdentities('secret-a');
  const request = (identity?: string) => ({
    headers: {},
    remoteAddress: '127.0.0.1',
    query: new URLSearchParams(identity ? { identity } : {}),
  });
  const first = identities.identify(request());
  assert.match(first.id, /^anon-[A-Za-z0-9_-]{8}$/);
  assert.equal(identities.identify(request(first.token)).id, first.id);
  assert.equal(identities.verify(first.token!), first.id);
  assert.equal(identities.verify(`${first.id}.x${first.token!.slice(first.id.length + 2)}`), null);
  assert.equal(identities.verify('anon-abcdefgh'), null);
  assert.equal(new AnonymousIdentities('secret-b').verify(first.token!), null);
  assert.notEqual(identities.identify(request('admin.xyz')).id, 'admin');
  const viaHeader = identities.identify({ ...request(), headers: { 'x-subsecond-identity': first.token } });
  assert.equal(viaHeader.id, first.id);
});

test('bus: past maxChannels the longest-idle channel without listeners is forgotten; with none, a clear refusal', async () => {
  const bus = new InMemoryBus({ maxMessages: 10, maxAgeMs: 60_000, maxChannels: 2 });
  await bus.publish('a', 'u', { type: 'chat', data: 1 });
  const stop = bus.subscribe('b', () => {});
  await bus.publish('c', 'u', { type: 'chat', data: 1 });
  assert.equal(bus.channelCount, 2);
  // "a" was forgotten: a client resuming on it learns the ids restarted instead of silently missing them.
  const replay = await bus.replay('a', 1);
  assert.equal(replay.gap?.reason, 'reset');
  stop();
  const listen = bus.subscribe('a', () => {});
  const listen2 = bus.subscribe('b', () => {});
  await assert.rejects(
    bus.publish('d', 'u', { type: 'chat', data: 1 }),
    (err: Error) => err instanceof ChannelLimitError && /already has 2 channels in use/.test(err.message),
  );
  const hub = new ChannelHub({ bus, node: 'n', presenceIntervalMs: 1000, log });
  assert.throws(
    () => hub.add({ channel: 'e', transport: 'ws', offer() {}, offerPresence() {} }),
    (err: Error) => err instanceof MessagingError && err.code === 'unavailable',
  );
  assert.equal(hub.subscriberCount('e'), 0);
  listen();
  listen2();
});
