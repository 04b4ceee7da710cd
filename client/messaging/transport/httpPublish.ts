import { type ChannelMessage, PublishError } from '../ChannelTypes.ts';

/** `POST /api/v1/channels/{name}/messages`: the stored message, or a PublishError with the server's reason. */
export async function httpPublish(
  server: string,
  channel: string,
  type: string,
  data: unknown,
  identity?: { token: string | undefined; learn(token: string): void; accessToken?: string },
): Promise<ChannelMessage> {
  let response: Response;
  const params = new URLSearchParams();
  if (identity?.token) params.set('identity', identity.token);
  // A query parameter, not an Authorization header: that would make every cross-origin publish preflighted.
  if (identity?.accessToken) params.set('token', identity.accessToken);
  const query = params.size > 0 ? `?${params}` : '';
  try {
    response = await fetch(`${server}/api/v1/channels/${channel}/messages${query}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type, data }),
    });
  } catch (error) {
    throw new PublishError('transport', `publish to "${channel}" failed: ${(error as Error).message}`);
  }
  const token = response.headers.get('x-subsecond-identity');
  if (token) identity?.learn(token);
  const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (response.status === 201) return body as unknown as ChannelMessage;
  const retryAfter = Number(response.headers.get('retry-after'));
  throw new PublishError(
    String(body.code ?? `http_${response.status}`),
    String(body.error ?? `publish to "${channel}" answered HTTP ${response.status}`),
    Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined,
  );
}
