import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Relay credentials: HMAC-SHA256 of `cluster.secret` over the asking node, the stream path and the time, so a
 * captured header is good for one stream for RELAY_AUTH_WINDOW_MS and the secret never crosses the wire.
 */
export const RELAY_AUTH_WINDOW_MS = 30_000;

export const RelayHeader = {
  node: 'x-subsecond-node',
  time: 'x-subsecond-time',
  signature: 'x-subsecond-signature',
} as const;

function sign(secret: string, node: string, path: string, time: string): string {
  return createHmac('sha256', secret).update(`${node}\n${path}\n${time}`).digest('hex');
}

export function relayHeaders(secret: string, node: string, path: string): Record<string, string> {
  const time = String(Date.now());
  return {
    [RelayHeader.node]: node,
    [RelayHeader.time]: time,
    [RelayHeader.signature]: sign(secret, node, path, time),
  };
}

/** null when the request is signed with `secret`; else the status and the reason to log. */
export function checkRelayAuth(
  secret: string,
  path: string,
  headers: Record<string, string | string[] | undefined>,
): { status: 401 | 403; reason: string } | null {
  const node = headers[RelayHeader.node];
  const time = headers[RelayHeader.time];
  const signature = headers[RelayHeader.signature];
  if (typeof node !== 'string' || typeof time !== 'string' || typeof signature !== 'string') {
    return { status: 401, reason: 'relay request without cluster credentials' };
  }
  const at = Number(time);
  if (!Number.isFinite(at) || Math.abs(Date.now() - at) > RELAY_AUTH_WINDOW_MS) {
    return {
      status: 403,
      reason: `relay request from "${node}" with a stale or bad time (${time.slice(0, 20)})`,
    };
  }
  const expected = Buffer.from(sign(secret, node, path, time));
  const given = Buffer.from(signature);
  if (expected.byteLength !== given.byteLength || !timingSafeEqual(expected, given)) {
    return { status: 403, reason: `relay request from "${node}" signed with another cluster.secret` };
  }
  return null;
}
