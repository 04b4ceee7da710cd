/** What WHIP (RFC 9725) and WHEP clients share: the offer, the POST, the resource URL, the ICE servers. */

const GATHER_LIMIT_MS = 500;

/**
 * Creates the offer and waits (briefly) for host candidates, so the POST carries them; the server answers with
 * all of its own, and ICE starts as soon as the answer is set. Trickle is not needed on the client.
 */
export async function gatherOffer(pc: RTCPeerConnection): Promise<string> {
  await pc.setLocalDescription(await pc.createOffer());
  if (pc.iceGatheringState !== 'complete') {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, GATHER_LIMIT_MS);
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  }
  return pc.localDescription?.sdp ?? '';
}

export interface SdpExchange {
  status: number;
  /** The answer on 201, else ''. */
  body: string;
  /** The server's error message on a refusal. */
  error: string;
  location: string | null;
  etag: string | null;
  links: string | null;
}

/** POSTs an offer; a network failure (no such server, CORS) rejects. */
export async function sdpPost(url: string, offer: string, token?: string): Promise<SdpExchange> {
  const headers: Record<string, string> = { 'content-type': 'application/sdp' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(url, { method: 'POST', headers, body: offer });
  const text = await response.text();
  let error = '';
  if (response.status !== 201) {
    try {
      error = (JSON.parse(text) as { error?: string }).error ?? text;
    } catch {
      error = text.slice(0, 200);
    }
  }
  return {
    status: response.status,
    body: response.status === 201 ? text : '',
    error,
    location: response.headers.get('location'),
    etag: response.headers.get('etag'),
    links: response.headers.get('link'),
  };
}

/** The session resource: Location may be relative to the endpoint (RFC 9725 §4.2). */
export function resourceUrl(endpoint: string, location: string): string {
  return new URL(location, endpoint).href;
}

/** RFC 9725 §4.6: `<turn:host>; rel="ice-server"; username="u"; credential="c"` entries of a Link header. */
export function parseIceServerLinks(header: string | null): RTCIceServer[] {
  if (!header) return [];
  const servers: RTCIceServer[] = [];
  for (const entry of header.split(/,\s*(?=<)/)) {
    const url = /^<([^>]+)>/.exec(entry.trim())?.[1];
    if (!url || !/;\s*rel="?ice-server"?/i.test(entry)) continue;
    const param = (name: string) => new RegExp(`;\\s*${name}="([^"]*)"`, 'i').exec(entry)?.[1];
    const server: RTCIceServer = { urls: url };
    const username = param('username');
    const credential = param('credential');
    if (username !== undefined) server.username = username;
    if (credential !== undefined) server.credential = credential;
    servers.push(server);
  }
  return servers;
}
