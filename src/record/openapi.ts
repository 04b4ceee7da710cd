/** The recording routes in the OpenAPI document (src/http/openapi.ts), built with its parameter helpers. */
export function recordingPaths(pathParam: object, errorResponse: (description: string) => object) {
  const range = [
    pathParam,
    {
      name: 'start',
      in: 'query',
      schema: { type: 'string', format: 'date-time', examples: ['2026-12-07T12:00:00Z'] },
      description: 'ISO 8601 with a zone; default: the first recorded moment',
    },
    {
      name: 'duration',
      in: 'query',
      schema: { type: 'number', examples: [600] },
      description: 'Seconds; default: to the end (playlist) or 60 (download)',
    },
  ];
  return {
    '/api/v1/streams/{path}/recording': {
      post: {
        summary: 'Record a live stream now and on every republish until stopped (or the server restarts)',
        description: 'Accepted from loopback, or with `Authorization: Bearer <auth.apiToken>`.',
        parameters: [pathParam],
        responses: {
          201: { description: '{path, recording, file}' },
          400: errorResponse('Malformed path'),
          403: errorResponse('Not allowed from this client'),
          404: errorResponse('The stream is not live'),
        },
      },
      delete: {
        summary: 'Stop recording a stream (the open file is finished)',
        description: 'Accepted from loopback, or with `Authorization: Bearer <auth.apiToken>`.',
        parameters: [pathParam],
        responses: {
          204: { description: 'Stopped' },
          400: errorResponse('Malformed path'),
          403: errorResponse('Not allowed from this client'),
          404: errorResponse('The stream is not being recorded'),
        },
      },
    },
    '/api/v1/recordings': {
      get: {
        summary: 'Every recorded path: time ranges (with play and download links), files, bytes, codecs',
        responses: { 200: { description: '{recordings: [...]}' } },
      },
    },
    '/api/v1/recordings/{path}': {
      get: {
        summary: "One path's recordings and its files: start, end, duration, bytes, codecs, tracks",
        parameters: [pathParam],
        responses: {
          200: { description: 'JSON' },
          400: errorResponse('Malformed path'),
          404: errorResponse('No recordings'),
        },
      },
    },
    '/api/v1/recordings/{path}/download': {
      get: {
        summary: 'One MP4 of a time range (the first continuous run of files in it), time 0 at `start`',
        parameters: range,
        responses: {
          200: { description: 'video/mp4; X-Recording-Start and X-Recording-Duration say what it holds' },
          400: errorResponse('Malformed path, start or duration'),
          404: errorResponse('Nothing recorded in the range'),
        },
      },
    },
    '/recordings/{path}/index.m3u8': {
      get: {
        summary:
          'HLS VOD playlist of a time range: byte ranges of the recorded files, EXT-X-START at `start`',
        parameters: range,
        responses: {
          200: { description: 'application/vnd.apple.mpegurl' },
          400: errorResponse('Malformed path, start or duration'),
          404: errorResponse('Nothing recorded in the range'),
        },
      },
    },
  };
}
