/**
 * node-media-server v4 for the side-by-side benchmark: RTMP ingest and HTTP/WebSocket-FLV playback
 * (`/live/{name}.flv`) on loopback, everything else off (no HTTPS/RTMPS, no admin console, no API, no
 * recording), and its per-connection logging turned down to warnings as Subsecond runs with --log.level warn.
 *
 *   node bench/fanout/nms-server.ts --rtmp-port 1935 --http-port 8000
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

interface NodeMediaServer {
  run(): Promise<void>;
  stop(): Promise<void>;
}

const require = createRequire(import.meta.url);
const NodeMediaServerClass = require('node-media-server') as new (
  config: object,
  configPath: string,
) => NodeMediaServer;
const logger = require('node-media-server/src/core/logger.js') as { level: string };

const { values } = parseArgs({
  options: { 'rtmp-port': { type: 'string' }, 'http-port': { type: 'string' } },
});
const rtmpPort = Number(values['rtmp-port']);
const httpPort = Number(values['http-port']);
if (!(rtmpPort > 0 && httpPort > 0)) {
  throw new Error(
    `usage: nms-server.ts --rtmp-port N --http-port N (got ${values['rtmp-port']}, ${values['http-port']})`,
  );
}

// Its store (stream history) and record folder are written to disk; keep them out of the repository.
const dataDir = mkdtempSync(join(tmpdir(), 'nms-bench-'));
const config = {
  bind: '127.0.0.1',
  rtmp: { port: rtmpPort },
  http: { port: httpPort },
  webadmin: { enable: false },
  store: { path: dataDir },
  record: { auto: false, path: join(dataDir, 'record') },
  notify: { url: '' },
  auth: { play: false, publish: false, secret: '' },
};
const nms = new NodeMediaServerClass(config, join(dataDir, 'config.json'));
// The constructor sets its logger to debug (a line per play and publish); match Subsecond's warn.
logger.level = 'warn';
await nms.run();

const stop = () => {
  nms
    .stop()
    .catch(() => {})
    .finally(() => {
      rmSync(dataDir, { recursive: true, force: true });
      process.exit(0);
    });
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
