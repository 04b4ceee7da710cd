import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Messaging } from './Messaging.ts';
import { MessagingError } from './protocol.ts';

/**
 * `POST /api/v1/channels/{name}/messages` with `{"type":"chat","data":…}`: publishes as the request's
 * identity and answers 201 with the stored message (its id, time and `from`). Refusals: 400 bad name or body,
 * 401, 403, 413 too large, 429 rate limited (with Retry-After).
 */
export async function publishOverHttp(
  messaging: Messaging,
  request: FastifyRequest,
  reply: FastifyReply,
  channel: string,
): Promise<FastifyReply> {
  const remoteAddress = request.socket.remoteAddress ?? '';
  const query = new URLSearchParams(request.url.split('?')[1] ?? '');
  try {
    const identity = await messaging.identities.identify({ headers: request.headers, remoteAddress, query });
    if ('refused' in identity) return reply.status(401).send({ error: identity.refused });
    if (identity.token) {
      reply.header('x-subsecond-identity', identity.token);
      reply.header('access-control-expose-headers', 'x-subsecond-identity');
    }
    const body = request.body;
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new MessagingError(
        'invalid_message',
        'the body must be a JSON object {"type": "...", "data": ...} sent as application/json',
      );
    }
    const retryAfterMs = messaging.takeHttpPublishToken(remoteAddress);
    if (retryAfterMs > 0) {
      const { publishRatePerSecond, publishBurst } = messaging.config;
      throw new MessagingError(
        'rate_limited',
        `publish refused: more than ${publishRatePerSecond}/s (burst ${publishBurst}) from ${remoteAddress}; retry in ${retryAfterMs} ms`,
        { retryAfterMs },
      );
    }
    const { type, data } = body as { type?: unknown; data?: unknown };
    const stored = await messaging.publish(identity, channel, { type: type as string, data });
    return reply
      .status(201)
      .header('content-type', 'application/json; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(stored.json);
  } catch (err) {
    if (!(err instanceof MessagingError)) throw err;
    if (err.retryAfterMs) reply.header('retry-after', String(Math.ceil(err.retryAfterMs / 1000)));
    return reply.status(err.status).send({ error: err.message, code: err.code });
  }
}
