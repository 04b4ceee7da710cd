/**
 * Serves the peers' viewer page on a loopback port: two fixed routes (the page and its bundle), nothing read
 * from a URL-derived path.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as esbuild from 'esbuild';

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>peer viewer</title></head>
<body style="margin:0;background:#000"><video playsinline style="width:100%"></video><p id="status" style="color:#fff"></p>
<script src="/peer.js"></script></body></html>`;

export class PeerPages {
  readonly url: string;
  readonly #server: Server;

  private constructor(server: Server) {
    this.#server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  static async start(): Promise<PeerPages> {
    const bundle = await esbuild.build({
      entryPoints: [join(import.meta.dirname, 'peer-viewer.ts')],
      bundle: true,
      format: 'iife',
      platform: 'browser',
      target: 'es2022',
      minify: true,
      write: false,
      logLevel: 'silent',
    });
    const script = bundle.outputFiles[0].contents;
    const server = createServer((request, response) => {
      const pathname = (request.url ?? '/').split('?')[0];
      if (pathname === '/') {
        response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
      } else if (pathname === '/peer.js') {
        response.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
      } else {
        response.writeHead(404, { 'content-type': 'text/plain' }).end(`no page at ${pathname}\n`);
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new PeerPages(server);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
