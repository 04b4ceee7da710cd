/**
 * The peers measured beside Subsecond in the same latency run, each fed the same stamped RTMP source and played
 * in the same Chromium by its usual web player (bench/latency/peer-viewer.ts):
 *   - node-media-server v4 (npm): HTTP-FLV, played with mpegts.js in its live latency-chasing mode;
 *   - nginx with its RTMP module (Debian `nginx` + `libnginx-mod-rtmp`): classic HLS, played with hls.js.
 * Each runs from a temporary folder on loopback ports and never touches a system configuration.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Child, type Children, freePort, sleep } from '../fanout/processes.ts';

export interface Peer {
  /** Shown in the table: the server and how it was played. */
  readonly server: string;
  readonly transport: string;
  /** Where the stamped source publishes to this peer. */
  readonly rtmpUrl: string;
  /** The query of the peers' viewer page (BenchPages `/viewer`): `player=…&url=…`. */
  readonly viewerQuery: string;
  /** How the player is tuned, for the report. */
  readonly tuning: string;
  stop(): Promise<void>;
}

const REPO = new URL('../..', import.meta.url).pathname;
const NGINX = '/usr/sbin/nginx';
const NGINX_RTMP_MODULE = '/usr/lib/nginx/modules/ngx_rtmp_module.so';

async function waitForPort(child: Child, port: number, what: string): Promise<void> {
  const { connect } = await import('node:net');
  for (let i = 0; i < 100; i++) {
    if (!child.running) throw new Error(`${what} exited at start:\n${child.tail}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await sleep(100);
  }
  throw new Error(`${what} did not listen on ${port} within 10 s:\n${child.tail}`);
}

export async function startNodeMediaServer(children: Children): Promise<Peer> {
  const [rtmpPort, httpPort] = [await freePort(), await freePort()];
  const child = children.spawn('node-media-server', process.execPath, [
    join(REPO, 'bench/fanout/nms-server.ts'),
    '--rtmp-port',
    String(rtmpPort),
    '--http-port',
    String(httpPort),
  ]);
  await waitForPort(child, httpPort, 'node-media-server');
  return {
    server: 'node-media-server',
    transport: 'http-flv (mpegts.js)',
    rtmpUrl: `rtmp://127.0.0.1:${rtmpPort}/live/latency`,
    viewerQuery: `player=mpegts&url=${encodeURIComponent(`http://127.0.0.1:${httpPort}/live/latency.flv`)}`,
    tuning:
      'mpegts.js 1.8: no stash buffer, liveBufferLatencyChasing with max 0.6 s / min remain 0.2 s, liveSync at 1.2× above 0.6 s',
    stop: () => child.stop(),
  };
}

/** Why nginx cannot run here, or null when it can. */
export function nginxMissing(): string | null {
  if (!existsSync(NGINX) || !existsSync(NGINX_RTMP_MODULE)) {
    return 'nginx with the RTMP module is not installed: run `bash scripts/setup --peers` (Debian nginx + libnginx-mod-rtmp)';
  }
  return null;
}

export async function startNginxRtmp(children: Children): Promise<Peer> {
  const missing = nginxMissing();
  if (missing) throw new Error(missing);
  const [rtmpPort, httpPort] = [await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), 'nginx-rtmp-bench-'));
  const hls = join(dir, 'hls');
  // nginx's worker runs as nobody: it writes the HLS files and reads them back through this folder.
  chmodSync(dir, 0o755);
  for (const sub of [hls, join(dir, 'tmp')]) {
    mkdirSync(sub);
    chmodSync(sub, 0o777);
  }
  const conf = join(dir, 'nginx.conf');
  // The shortest fragments nginx-rtmp makes: it cuts at keyframes, so with a 2 s GOP each is 2 s.
  writeFileSync(
    conf,
    `daemon off;
worker_processes 1;
error_log ${dir}/error.log warn;
pid ${dir}/nginx.pid;
load_module ${NGINX_RTMP_MODULE};
events { worker_connections 256; }
rtmp {
  server {
    listen 127.0.0.1:${rtmpPort};
    chunk_size 4096;
    application live { live on; record off; hls on; hls_path ${hls}; hls_fragment 1s; hls_playlist_length 4s; }
  }
}
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }
  server {
    listen 127.0.0.1:${httpPort};
    location /hls/ {
      alias ${hls}/;
      add_header Access-Control-Allow-Origin * always;
      add_header Cache-Control no-cache always;
    }
  }
}
`,
  );
  const child = children.spawn('nginx', NGINX, ['-p', dir, '-c', conf, '-e', join(dir, 'error.log')]);
  await waitForPort(child, httpPort, 'nginx');
  return {
    server: 'nginx-rtmp',
    transport: 'hls (hls.js)',
    rtmpUrl: `rtmp://127.0.0.1:${rtmpPort}/live/latency`,
    viewerQuery: `player=hls&url=${encodeURIComponent(`http://127.0.0.1:${httpPort}/hls/latency.m3u8`)}`,
    tuning:
      'nginx-rtmp hls_fragment 1s (cut at the 2 s GOP), playlist 4 s; hls.js liveSyncDurationCount 1, catch-up to 1.5×',
    async stop() {
      await child.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
