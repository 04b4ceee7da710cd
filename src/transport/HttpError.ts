import { InvalidPathError, parseStreamPath } from '../shared/streamPath.ts';

/**
 * A refusal a request handler throws: every error handler here (Fastify's own included) answers with
 * `statusCode` and the message, which names what was wrong.
 */
export class HttpError extends Error {
  readonly statusCode: number;
  constructor(statusCode: number, message: string) {
    super(message);
    this.statusCode = statusCode;
  }
}

/** parseStreamPath for a path a request names: an invalid one is an HttpError(400) saying why. */
export function requestStreamPath(raw: string): string {
  try {
    return parseStreamPath(raw);
  } catch (err) {
    if (err instanceof InvalidPathError) throw new HttpError(400, err.message);
    throw err;
  }
}
