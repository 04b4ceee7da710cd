/**
 * Serves the benchmark's own pages on a loopback port: the peers' viewer (`/viewer`, peer-viewer.ts) and the
 * browser sources (`/source`, canvas-source.ts). Fixed routes only, nothing read from a URL-derived path.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as esbuild from 'esbuild';

const page = (
  script: string,
) => `<!doctype html><html><head><meta charset="utf-8"><title>bench</title><link rel="icon" href="data:,"></head>
<body style="margin:0;background:#000"><video playsinline style="width:100%"></video><p id="status" style="color:#fff"></p>
<script src="/${script}"></script></body></html>`;

async function bundle(entry: string): Promise<Uint8Array> {
  const result = await esbuild.build({
    entryPoints: [join(import.meta.dirname, entry)],
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    write: false,
    logLevel: 'silent',
  });
  return result.outputFiles[0].contents;
}

export class BenchPages {
  readonly url: string;
  readonly #server: Server;

  private constructor(server: Server) {
    this.#server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  static async start(): Promise<BenchPages> {
    const routes = new Map<string, [type: string, body: string | Uint8Array]>([
      ['/viewer', ['text/html; charset=utf-8', page('viewer.js')]],
      ['/viewer.js', ['text/javascript', await bundle('peer-viewer.ts')]],
      ['/source', ['text/html; charset=utf-8', page('source.js')]],
      ['/source.js', ['text/javascript', await bundle('canvas-source.ts')]],
    ]);
    const server = createServer((request, response) => {
      const pathname = (request.url ?? '/').split('?')[0];
      const route = routes.get(pathname);
      if (route) response.writeHead(200, { 'content-type': route[0] }).end(route[1]);
      else response.writeHead(404, { 'content-type': 'text/plain' }).end(`no page at ${pathname}\n`);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new BenchPages(server);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
