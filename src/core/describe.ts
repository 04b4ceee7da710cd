import { describeTrack } from '../media/Frame.ts';
import type { Stream } from './Stream.ts';

/**
 * The JSON shape of a stream in the control API, the dashboard feed and the OpenAPI document. The publisher's
 * address is personal data: only control-API callers (`withAddress`) see it.
 */
export function describeStream(stream: Stream, withAddress = false) {
  const publisher = stream.publisher;
  return {
    path: stream.path,
    live: stream.live,
    publisher: publisher
      ? withAddress
        ? { protocol: publisher.protocol, remoteAddress: publisher.remoteAddress }
        : { protocol: publisher.protocol }
      : null,
    publishedAt: publisher ? new Date(stream.publishedAt).toISOString() : null,
    uptimeMs: publisher ? Date.now() - stream.publishedAt : 0,
    tracks: stream.tracks.map(describeTrack),
    bitrate: stream.bitrate,
    framesIn: stream.framesIn,
    bytesIn: stream.bytesIn,
    gop: { frames: stream.gop.length, bytes: stream.gop.bytes },
    viewers: { total: stream.viewerCount, byProtocol: Object.fromEntries(stream.viewers) },
    warnings: [...stream.warnings],
  };
}
