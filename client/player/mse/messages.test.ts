import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mseUrl } from './MseTransport.ts';
import { parseServerMessage } from './messages.ts';

test('parses the MSE text messages', () => {
  const init = parseServerMessage(
    JSON.stringify({
      type: 'init',
      codecs: 'avc1.64001f,mp4a.40.2',
      tracks: [
        { id: 1, kind: 'video', codec: 'h264', codecString: 'avc1.64001f', width: 1280, height: 720 },
        { id: 2, kind: 'audio', codec: 'aac', codecString: 'mp4a.40.2', sampleRate: 48000, channels: 2 },
        { id: 3, kind: 'subtitles' },
      ],
    }),
  );
  assert.equal(init?.type, 'init');
  assert.equal(init?.type === 'init' && init.tracks.length, 2);
  assert.equal(init?.type === 'init' && init.tracks[0].width, 1280);
  assert.deepEqual(parseServerMessage('{"type":"unpublished"}'), { type: 'unpublished' });
  assert.deepEqual(parseServerMessage('{"type":"skipped","frames":12}'), { type: 'skipped', frames: 12 });
  assert.deepEqual(parseServerMessage('{"type":"skipped","frames":"x"}'), { type: 'skipped', frames: 0 });
  assert.deepEqual(parseServerMessage('{"type":"error","message":"gone"}'), {
    type: 'error',
    message: 'gone',
  });
});

test('ignores what it does not understand', () => {
  for (const text of [
    '',
    'nope',
    '[]',
    'null',
    '{"type":"future"}',
    '{"type":"init"}',
    '{"type":"init","codecs":""}',
  ])
    assert.equal(parseServerMessage(text), null, text);
});

test('builds the WebSocket URL from the server origin', () => {
  assert.equal(mseUrl('http://127.0.0.1:8080', 'live/cam1'), 'ws://127.0.0.1:8080/mse/live/cam1');
  assert.equal(mseUrl('https://live.example.com', 'a/b.c'), 'wss://live.example.com/mse/a/b.c');
  assert.equal(mseUrl('wss://edge.example.com:9443', 'x'), 'wss://edge.example.com:9443/mse/x');
});
