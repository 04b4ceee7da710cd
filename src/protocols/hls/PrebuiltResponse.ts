import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * Whole HTTP/1.1 responses (status line, headers and body in one Buffer) built once and written to many
 * sockets: the same playlist version goes to every poller released by a part's completion, so formatting
 * headers and concatenating them with the body once per response (what `writeHead` + `end` do) is work
 * repeated per viewer. One `socket.write` of the shared Buffer is one system call and no allocation per
 * response.
 */

/** The Date header value (RFC 9110 §6.6.1: an origin server with a clock sends it), formatted once a second. */
export class HttpDate {
  #second = -1;
  #value = '';

  /** The current second, to key anything that embeds the value. */
  get second(): number {
    return Math.floor(Date.now() / 1000);
  }

  get value(): string {
    const second = this.second;
    if (second !== this.#second) {
      this.#second = second;
      this.#value = new Date(second * 1000).toUTCString();
    }
    return this.#value;
  }
}

/** `HTTP/1.1 200 OK` with these headers (lower-case names, trusted values) and body, as one Buffer. */
export function buildResponse(
  headers: ReadonlyArray<readonly [string, string | number]>,
  body: Buffer,
): Buffer {
  let head = 'HTTP/1.1 200 OK\r\n';
  for (const [name, value] of headers) head += `${name}: ${value}\r\n`;
  head += `content-length: ${body.length}\r\n\r\n`;
  const headBytes = Buffer.byteLength(head, 'latin1');
  const bytes = Buffer.allocUnsafe(headBytes + body.length);
  bytes.write(head, 0, 'latin1');
  body.copy(bytes, headBytes);
  return bytes;
}

/** The members of node's OutgoingMessage that mark headers as already written; not in its typings. */
interface OutgoingHeaderState {
  _header: string | null;
  _headerSent: boolean;
}

/**
 * Whether `res` may be answered with a prebuilt response: it owns its socket now (not a pipelined response
 * waiting for the one before it), nothing was written yet, and the connection stays open under HTTP/1.1
 * (a `Connection: close` or HTTP/1.0 request takes the ordinary path, which closes or frames it properly),
 * for a GET.
 */
export function canWritePrebuilt(req: IncomingMessage, res: ServerResponse): boolean {
  const socket = res.socket;
  return (
    socket !== null &&
    !socket.destroyed &&
    socket.writable &&
    !res.headersSent &&
    res.shouldKeepAlive &&
    // A HEAD response has the headers only: node's path leaves the body out.
    req.method === 'GET' &&
    req.httpVersionMajor === 1 &&
    req.httpVersionMinor === 1
  );
}

/**
 * Writes `bytes` (a whole response from buildResponse) to `res`'s socket and ends `res` without it writing
 * anything more: node then finishes the response as usual (the next keep-alive request on the socket is
 * parsed and dispatched, 'finish' and 'close' fire). Only after canWritePrebuilt said yes.
 */
export function writePrebuilt(res: ServerResponse, bytes: Buffer): void {
  res.socket!.write(bytes);
  const state = res as unknown as OutgoingHeaderState;
  // end() writes a header only when none exists and nothing once it was sent; the status line and headers
  // are in `bytes`.
  state._header = 'prebuilt';
  state._headerSent = true;
  res.end();
}
