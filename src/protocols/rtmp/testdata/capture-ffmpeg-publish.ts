/**
 * Regenerates ffmpeg-publish.bin: the bytes a real ffmpeg publisher sends after the handshake (connect,
 * releaseStream, FCPublish, createStream, publish, @setDataFrame, sequence headers, a few frames), recorded by
 * a TCP proxy in front of RtmpServer. The chunk reader test replays them split at every offset.
 *
 *   node src/protocols/rtmp/testdata/capture-ffmpeg-publish.ts
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { log } from '../../../core/log.ts';
import { StreamRegistry } from '../../../core/StreamRegistry.ts';
import { HANDSHAKE_SIZE } from '../handshake.ts';
import { RtmpServer } from '../RtmpServer.ts';

const LIMIT = 24 * 1024;
log.level = 'warn';
const server = new RtmpServer({
  registry: new StreamRegistry(),
  host: '127.0.0.1',
  port: 0,
  authorizePublish: () => null,
  log,
});
await server.listen();
const recorded: Buffer[] = [];
const proxy = createServer((client) => {
  const upstream = createConnection(server.address.port, '127.0.0.1');
  client.on('data', (d) => {
    recorded.push(d);
    upstream.write(d);
  });
  upstream.on('data', (d) => client.write(d));
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
});
await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
const port = (proxy.address() as { port: number }).port;
// A 3 s input at -re so that -t 0.5 ends the publish through the normal FCUnpublish/deleteStream path.
const ffmpeg = spawn(
  'ffmpeg',
  [
    '-hide_banner',
    '-loglevel',
    'error',
    '-re',
    '-f',
    'lavfi',
    '-i',
    'testsrc2=size=128x72:rate=10',
    '-f',
    'lavfi',
    '-i',
    'sine=frequency=440:sample_rate=44100',
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    '-tune',
    'zerolatency',
    '-g',
    '10',
    '-c:a',
    'aac',
    '-t',
    '0.5',
    '-f',
    'flv',
    `rtmp://127.0.0.1:${port}/live/cam1?key=abc`,
  ],
  { stdio: 'inherit' },
);
await once(ffmpeg, 'exit');
const all = Buffer.concat(recorded).subarray(1 + 2 * HANDSHAKE_SIZE);
const out = all.subarray(0, Math.min(all.length, LIMIT));
writeFileSync(fileURLToPath(new URL('./ffmpeg-publish.bin', import.meta.url)), out);
console.log(`recorded ${all.length} bytes after the handshake, kept ${out.length}`);
proxy.close();
await server.close();
