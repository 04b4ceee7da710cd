import { recordingPaths } from '../record/openapi.ts';

/** OpenAPI 3.1 description of the control API, served at /api/v1/openapi.json. */
const ErrorBody = {
  type: 'object',
  required: ['error'],
  properties: { error: { type: 'string', description: 'What was wrong, with the offending value' } },
};

const Track = {
  type: 'object',
  required: ['id', 'kind', 'codec', 'codecString'],
  properties: {
    id: { type: 'integer' },
    kind: { enum: ['video', 'audio'] },
    codec: { enum: ['h264', 'h265', 'av1', 'vp9', 'vp8', 'aac', 'opus'] },
    codecString: { type: 'string', examples: ['avc1.64001f', 'mp4a.40.2'] },
    width: { type: 'integer' },
    height: { type: 'integer' },
    sampleRate: { type: 'integer' },
    channels: { type: 'integer' },
  },
};

const Stream = {
  type: 'object',
  properties: {
    path: { type: 'string', examples: ['live/cam1'] },
    live: { type: 'boolean' },
    publisher: {
      type: ['object', 'null'],
      properties: {
        protocol: { type: 'string' },
        remoteAddress: {
          type: 'string',
          description: 'Only for control-API callers (loopback or auth.apiToken)',
        },
      },
    },
    publishedAt: { type: ['string', 'null'], format: 'date-time' },
    uptimeMs: { type: 'integer' },
    tracks: { type: 'array', items: { $ref: '#/components/schemas/Track' } },
    bitrate: { type: 'integer', description: 'Ingest bits per second over the last 2 s' },
    framesIn: { type: 'integer' },
    bytesIn: { type: 'integer' },
    gop: { type: 'object', properties: { frames: { type: 'integer' }, bytes: { type: 'integer' } } },
    viewers: {
      type: 'object',
      properties: {
        total: { type: 'integer' },
        byProtocol: { type: 'object', additionalProperties: { type: 'integer' } },
        acrossNodes: {
          type: 'object',
          description:
            'With cluster.redis: the viewers on every live node (this one now, others at their last heartbeat)',
          properties: {
            total: { type: 'integer' },
            byProtocol: { type: 'object', additionalProperties: { type: 'integer' } },
            nodes: { type: 'integer', description: 'Nodes with at least one viewer' },
          },
        },
      },
    },
    warnings: { type: 'array', items: { type: 'string' } },
  },
};

const pathParam = {
  name: 'path',
  in: 'path',
  required: true,
  description: 'Stream path: one or more `/`-separated segments of [A-Za-z0-9_.-]',
  schema: { type: 'string' },
};

const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
});

export const openApiDocument = {
  openapi: '3.1.0',
  info: { title: 'Subsecond control API', version: '1' },
  paths: {
    '/healthz': { get: { summary: 'Liveness', responses: { 200: { description: 'The server is up' } } } },
    '/metrics': {
      get: { summary: 'Prometheus metrics', responses: { 200: { description: 'text exposition format' } } },
    },
    '/api/v1/streams': {
      get: {
        summary: 'Live streams',
        responses: {
          200: {
            description: 'Every stream with a publisher',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  properties: { streams: { type: 'array', items: { $ref: '#/components/schemas/Stream' } } },
                },
              },
            },
          },
        },
      },
    },
    '/api/v1/streams/{path}': {
      get: {
        summary: 'One live stream',
        parameters: [pathParam],
        responses: {
          200: {
            description: 'The stream',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Stream' } } },
          },
          400: errorResponse('Malformed path'),
          404: errorResponse('The stream is not live'),
        },
      },
      delete: {
        summary: 'Kick the publisher',
        description: 'Accepted from loopback, or with `Authorization: Bearer <auth.apiToken>`.',
        parameters: [pathParam],
        responses: {
          204: { description: 'The publisher was disconnected' },
          400: errorResponse('Malformed path'),
          403: errorResponse('Not allowed from this client'),
          404: errorResponse('No publisher on that path'),
        },
      },
    },
    '/api/v1/events': {
      get: {
        summary:
          'Server-Sent Events: `event: streams` with the stream list whenever it changes and every 2 s',
        responses: { 200: { description: 'text/event-stream' } },
      },
    },
    '/api/v1/server': {
      get: {
        summary:
          'Server counters (WebSocket viewers, fragments, delivery delay; LL-HLS/DASH streams, bytes held, requests) and the bound RTMP port',
        responses: { 200: { description: 'JSON' } },
      },
    },
    '/mse/{path}': {
      get: {
        summary: 'WebSocket + MSE playback (upgrade); protocol in docs/protocols/mse.md',
        parameters: [pathParam],
        responses: {
          101: { description: 'Switching protocols' },
          400: errorResponse('Malformed path'),
          404: errorResponse('The stream is not live'),
        },
      },
    },
    '/api/v1/channels/{name}/messages': {
      post: {
        summary: 'Publish a message on a channel; protocol in docs/protocols/messaging.md',
        parameters: [
          {
            name: 'name',
            in: 'path',
            required: true,
            schema: { type: 'string', examples: ['live/cam1:chat'] },
          },
        ],
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['type'],
                properties: { type: { type: 'string' }, data: {} },
              },
            },
          },
        },
        responses: {
          201: { description: 'Stored: {id, channel, time, from, type, data}' },
          400: errorResponse('Malformed channel name or body'),
          403: errorResponse('The policy refuses publishing on this channel'),
          413: errorResponse('Data over messaging.maxMessageBytes'),
          429: errorResponse('Publish rate limit; see Retry-After'),
        },
      },
    },
    '/hls/{path}/index.m3u8': {
      get: {
        summary:
          'LL-HLS multivariant playlist; media playlist, parts and delivery directives in docs/protocols/hls.md',
        parameters: [pathParam],
        responses: {
          200: { description: 'application/vnd.apple.mpegurl' },
          400: errorResponse('Malformed path'),
          404: errorResponse('The stream is not live'),
          503: errorResponse('No media within the block timeout'),
        },
      },
    },
    '/dash/{path}/manifest.mpd': {
      get: {
        summary: 'LL-DASH dynamic MPD; segments and /dash/time in docs/protocols/hls.md',
        parameters: [pathParam],
        responses: {
          200: { description: 'application/dash+xml' },
          400: errorResponse('Malformed path'),
          404: errorResponse('The stream is not live or has no media yet'),
        },
      },
    },
    ...recordingPaths(pathParam, errorResponse),
  },
  components: { schemas: { Error: ErrorBody, Track, Stream } },
};
