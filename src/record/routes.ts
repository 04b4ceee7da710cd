import { open } from 'node:fs/promises';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HttpError, requestStreamPath } from '../transport/HttpError.ts';
import { buildMp4Download } from './Mp4Download.ts';
import { parseRange, piecesOf } from './RecordedRange.ts';
import { startOfFileName } from './RecordingFile.ts';
import type { RecordingSegment } from './RecordingStore.ts';
import type { Recordings } from './Recordings.ts';
import { vodPlaylist } from './VodPlaylist.ts';

/*
 * HTTP for recordings:
 *   POST|DELETE /api/v1/streams/{path}/recording   start/stop recording a live stream (control API)
 *   GET /api/v1/recordings                         every recorded path, its time ranges and size
 *   GET /api/v1/recordings/{path}                  its files: start, duration, size, codecs
 *   GET /api/v1/recordings/{path}/download?start=&duration=   one MP4 of the range
 *   GET /recordings/{path}/index.m3u8?start=&duration=        HLS VOD playlist of the range
 *   GET /recordings/{path}/{file}.mp4              a recorded file (byte ranges), what the playlist points at
 * A request names a stream path and at most a file name; both are checked (parseStreamPath, the recorder's
 * file-name pattern, the store's index) before anything touches the disk.
 */

/** Files closer than this are shown as one time range. */
const RANGE_JOIN_MS = 50;
const SUFFIX_RECORDING = '/recording';
const SUFFIX_DOWNLOAD = '/download';

function wildcard(request: FastifyRequest): string {
  return ((request.params as Record<string, string>)['*'] ?? '').replace(/\/+$/, '');
}

function range(query: unknown, defaults: { startMs: number; durationSeconds: number }) {
  try {
    return parseRange((query ?? {}) as Record<string, unknown>, defaults);
  } catch (err) {
    throw new HttpError(400, (err as Error).message);
  }
}

/** `POST|DELETE /api/v1/streams/{path}/recording`: the stream path, or null when the URL is not that. */
export function recordingControlPath(request: FastifyRequest): string | null {
  const raw = wildcard(request);
  if (!raw.endsWith(SUFFIX_RECORDING)) return null;
  return requestStreamPath(raw.slice(0, -SUFFIX_RECORDING.length));
}

export interface RecordingRoutesOptions {
  recordings: Recordings;
  /** The control API's authorization (loopback or auth.apiToken); throws when refused. */
  authorizeControl: (request: FastifyRequest) => void;
}

export function registerRecordingRoutes(app: FastifyInstance, options: RecordingRoutesOptions): void {
  const { recordings, authorizeControl } = options;
  const { store } = recordings;

  app.post('/api/v1/streams/*', async (request, reply) => {
    authorizeControl(request);
    const path = recordingControlPath(request);
    if (path === null) throw new HttpError(404, `no route for POST ${request.url.split('?')[0]}`);
    if (!recordings.startRecording(path)) throw new HttpError(404, `stream "${path}" is not live`);
    return reply.status(201).send(describeRecordingState(recordings, path));
  });

  app.get('/api/v1/recordings', async () => ({
    recordings: store.paths().map((path) => summary(recordings, path)),
  }));

  app.get('/api/v1/recordings/*', async (request, reply) => {
    const raw = wildcard(request);
    if (raw.endsWith(SUFFIX_DOWNLOAD) && raw.length > SUFFIX_DOWNLOAD.length) {
      const path = requestStreamPath(raw.slice(0, -SUFFIX_DOWNLOAD.length));
      if (store.segmentsOf(path).length > 0) return download(request, reply, recordings, path);
    }
    const path = requestStreamPath(raw);
    if (store.segmentsOf(path).length === 0) throw new HttpError(404, `no recordings of "${path}"`);
    return {
      ...summary(recordings, path),
      files: store.segmentsOf(path).map((s) => describeSegment(s)),
    };
  });

  app.get('/recordings/*', async (request, reply) => {
    const raw = wildcard(request);
    const slash = raw.lastIndexOf('/');
    if (slash <= 0) throw new HttpError(404, `no recording resource at /recordings/${raw}`);
    const path = requestStreamPath(raw.slice(0, slash));
    const resource = raw.slice(slash + 1);
    const segments = store.segmentsOf(path);
    if (segments.length === 0) throw new HttpError(404, `no recordings of "${path}"`);
    if (resource === 'index.m3u8') {
      const first = segments[0];
      const last = segments[segments.length - 1];
      const whole = (last.startMs + last.durationMs - first.startMs) / 1000;
      const { startMs, endMs } = range(request.query, { startMs: first.startMs, durationSeconds: whole });
      const pieces = await piecesOf(store, path, startMs, endMs);
      if (pieces.length === 0) {
        throw new HttpError(404, `nothing of "${path}" was recorded in the range asked`);
      }
      return reply
        .header('content-type', 'application/vnd.apple.mpegurl')
        .header('cache-control', 'no-cache')
        .send(vodPlaylist(pieces, { startMs, endMs }));
    }
    if (startOfFileName(resource) === null) {
      throw new HttpError(404, `no recording resource ${JSON.stringify(resource.slice(0, 100))}`);
    }
    const segment = store.find(path, resource);
    if (!segment) throw new HttpError(404, `no recording ${resource} of "${path}"`);
    return sendFileRange(request, reply, segment);
  });
}

async function download(request: FastifyRequest, reply: FastifyReply, recordings: Recordings, path: string) {
  const segments = recordings.store.segmentsOf(path);
  const first = segments[0];
  const { startMs, endMs } = range(request.query, { startMs: first.startMs, durationSeconds: 60 });
  const pieces = await piecesOf(recordings.store, path, startMs, endMs);
  // Only the first continuous run goes into the file (buildMp4Download); only its bytes are read.
  const end = pieces.findIndex((p, i) => i > 0 && !p.continues);
  const run = end < 0 ? pieces : pieces.slice(0, end);
  const bytesOf = new Map(
    await Promise.all(
      run.map(async (p) => [p, await recordings.store.read(p.segment, p.contents.size)] as const),
    ),
  );
  const mp4 = buildMp4Download(pieces, bytesOf, startMs, endMs);
  if (!mp4) throw new HttpError(404, `nothing of "${path}" was recorded in the range asked`);
  const size = mp4.chunks.reduce((n, c) => n + c.byteLength, 0);
  const name = `${path.replace(/\//g, '_')}_${new Date(mp4.startMs).toISOString().replace(/:/g, '-')}.mp4`;
  return reply
    .header('content-type', 'video/mp4')
    .header('content-length', size)
    .header('content-disposition', `attachment; filename="${name}"`)
    .header('x-recording-start', new Date(mp4.startMs).toISOString())
    .header('x-recording-duration', (mp4.durationMs / 1000).toFixed(3))
    .send(Buffer.concat(mp4.chunks));
}

/** One `Range: bytes=a-b` (what HLS byte-range segments ask for), or the whole file. */
async function sendFileRange(request: FastifyRequest, reply: FastifyReply, segment: RecordingSegment) {
  const handle = await open(segment.file, 'r');
  try {
    const size = segment.open ? (await handle.stat()).size : segment.bytes;
    let from = 0;
    let to = size - 1;
    const header = request.headers.range;
    if (header !== undefined) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(header);
      if (!m || (m[1] === '' && m[2] === '')) throw new HttpError(416, `unsupported Range ${header}`);
      if (m[1] === '') from = Math.max(0, size - Number(m[2]));
      else {
        from = Number(m[1]);
        if (m[2] !== '') to = Math.min(size - 1, Number(m[2]));
      }
      if (from > to || from >= size) {
        reply.header('content-range', `bytes */${size}`);
        throw new HttpError(416, `Range ${header} is outside the ${size} bytes of ${segment.name}`);
      }
      reply.status(206).header('content-range', `bytes ${from}-${to}/${size}`);
    }
    const body = Buffer.allocUnsafe(to - from + 1);
    let at = 0;
    while (at < body.length) {
      const { bytesRead } = await handle.read(body, at, body.length - at, from + at);
      if (bytesRead === 0) break;
      at += bytesRead;
    }
    return reply
      .header('content-type', 'video/mp4')
      .header('accept-ranges', 'bytes')
      .header('cache-control', segment.open ? 'no-cache' : 'max-age=86400')
      .send(body.subarray(0, at));
  } finally {
    await handle.close();
  }
}

function describeSegment(s: RecordingSegment) {
  return {
    name: s.name,
    start: new Date(s.startMs).toISOString(),
    end: new Date(s.startMs + s.durationMs).toISOString(),
    durationSeconds: s.durationMs / 1000,
    bytes: s.bytes,
    recording: s.open,
    codecs: s.tracks.map((t) => t.codec),
    tracks: s.tracks.map(({ id, kind, codec, timescale, width, height }) => ({
      id,
      kind,
      codec,
      timescale,
      width,
      height,
    })),
    url: `/recordings/${s.path}/${s.name}`,
  };
}

function describeRecordingState(recordings: Recordings, path: string) {
  const segment = recordings.recorderOf(path)?.segment;
  return { path, recording: recordings.recorderOf(path) !== undefined, file: segment?.name ?? null };
}

function summary(recordings: Recordings, path: string) {
  const segments = recordings.store.segmentsOf(path);
  const ranges: { startMs: number; endMs: number; initKey: string }[] = [];
  for (const s of segments) {
    const last = ranges[ranges.length - 1];
    if (last && last.initKey === s.initKey && Math.abs(s.startMs - last.endMs) <= RANGE_JOIN_MS) {
      last.endMs = Math.max(last.endMs, s.startMs + s.durationMs);
    } else ranges.push({ startMs: s.startMs, endMs: s.startMs + s.durationMs, initKey: s.initKey });
  }
  const codecs = [...new Set(segments.flatMap((s) => s.tracks.map((t) => t.codec)))];
  return {
    path,
    recording: recordings.recorderOf(path) !== undefined,
    files: segments.length,
    bytes: segments.reduce((n, s) => n + s.bytes, 0),
    durationSeconds: segments.reduce((n, s) => n + s.durationMs, 0) / 1000,
    codecs,
    ranges: ranges.map((r) => ({
      start: new Date(r.startMs).toISOString(),
      end: new Date(r.endMs).toISOString(),
      durationSeconds: (r.endMs - r.startMs) / 1000,
      playUrl: `/play/${path}?start=${new Date(r.startMs).toISOString()}&duration=${((r.endMs - r.startMs) / 1000).toFixed(3)}`,
      downloadUrl: `/api/v1/recordings/${path}/download?start=${new Date(r.startMs).toISOString()}&duration=${((r.endMs - r.startMs) / 1000).toFixed(3)}`,
    })),
  };
}

/** `DELETE /api/v1/streams/{path}/recording`, called by the streams DELETE route after authorization. */
export async function stopRecordingRoute(recordings: Recordings, path: string, reply: FastifyReply) {
  if (!(await recordings.stopRecording(path))) {
    throw new HttpError(404, `stream "${path}" is not being recorded`);
  }
  return reply.status(204).send();
}
