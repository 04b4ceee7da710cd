import type { FastifyReply } from 'fastify';
import type { MediaBody } from './MediaBody.ts';

/** Media URIs carry the packager's epoch, so their bytes never change: any cache may keep them. */
export const IMMUTABLE = 'public, max-age=3600, immutable';

/**
 * Writes a part or segment as the list of shared fragment buffers, corked into one write. One still being
 * produced is streamed with chunked transfer as its fragments arrive, and ends when it completes.
 */
export function sendMediaBody(reply: FastifyReply, body: MediaBody, timeoutMs: number): void {
  reply.hijack();
  const res = reply.raw;
  const headers: Record<string, string | number | string[]> = {};
  for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) headers[k] = v;
  // video/mp4 for fMP4 parts and segments as for init segments: what players, Apple's validator and CDNs expect.
  headers['content-type'] = 'video/mp4';
  headers['cache-control'] = IMMUTABLE;
  if (body.complete) {
    headers['content-length'] = body.bytes;
    res.writeHead(200, headers);
    res.cork();
    for (const fragment of body.fragments) res.write(fragment);
    res.end();
    return;
  }
  res.writeHead(200, headers);
  // A publisher that stalls without leaving must not hold the response forever.
  const timer = setTimeout(() => res.destroy(), Math.max(timeoutMs, 1000) * 2);
  const stop = body.follow({
    write: (chunk) => res.write(chunk),
    end: () => {
      clearTimeout(timer);
      res.end();
    },
  });
  res.once('close', () => {
    clearTimeout(timer);
    stop();
  });
}
