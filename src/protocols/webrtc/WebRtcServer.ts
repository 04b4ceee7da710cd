import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ControlAccess } from '../../auth/ControlAccess.ts';
import { type PlayPolicy, presentedToken, queryOf } from '../../auth/PlayPolicy.ts';
import { isLoopback, type PublishPolicy } from '../../auth/PublishPolicy.ts';
import type { WebRtcConfig } from '../../config/schema.ts';
import { ConnectionsPerIp, TooManyConnectionsError } from '../../core/ConnectionsPerIp.ts';
import type { Logger } from '../../core/log.ts';
import type { Stream } from '../../core/Stream.ts';
import { StreamBusyError, type StreamRegistry } from '../../core/StreamRegistry.ts';
import { HttpError, requestStreamPath } from '../../transport/HttpError.ts';
import type { DataChannelHandler } from './DataChannels.ts';
import type { RtpFeed } from './RtpFeed.ts';
import { StreamRtpFeed } from './StreamRtpFeed.ts';
import {
  type ChosenCodec,
  type OfferedMedia,
  type OfferSummary,
  refusedMediaWarning,
  SdpError,
  summarizeOffer,
} from './sdp.ts';
import type { WebRtcEngine } from './WebRtcEngine.ts';
import type { WebRtcSession } from './WebRtcSession.ts';
import { type FeedClock, WhepSession } from './WhepSession.ts';
import { WhipSession } from './WhipSession.ts';
import type { RemoteWhepSession, WhepWorkers } from './workers/WhepWorkers.ts';

const SDP = 'application/sdp';
/**
 * A DELETE this soon after its session ended is answered 200: some clients (medooze's) close their peer first,
 * and the server frees the session on that before their DELETE arrives.
 */
const ENDED_SESSION_DELETE_MS = 60_000;
const TRICKLE = 'application/trickle-ice-sdpfrag';

/** `<stun:…>; rel="ice-server"` per RFC 9725 §4.6, with TURN credentials as RFC 8489-style parameters. */
function iceServerLinks(config: WebRtcConfig): string[] {
  const links: string[] = [];
  for (const server of config.iceServers) {
    for (const url of Array.isArray(server.urls) ? server.urls : [server.urls]) {
      let link = `<${url}>; rel="ice-server"`;
      if (server.username !== undefined) link += `; username="${server.username}"`;
      if (server.credential !== undefined)
        link += `; credential="${server.credential}"; credential-type="password"`;
      links.push(link);
    }
  }
  return links;
}

function mediaType(request: FastifyRequest): string {
  return (request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
}

/**
 * WHIP ingest and WHEP playback over HTTP (RFC 9725 and its WHEP sibling): the session resources, their
 * routes, and the feeds that join publishers to viewers.
 */
export class WebRtcServer {
  readonly engine: WebRtcEngine;
  readonly sessions = new Map<string, WebRtcSession>();
  /** Sessions by the capability in their resource URL. */
  readonly #resources = new Map<string, WebRtcSession>();
  readonly #control: ControlAccess;
  readonly #sessionsPerIp: ConnectionsPerIp;
  /** Offers being answered now (not yet sessions in `sessions`). */
  #answering = 0;
  readonly #registry: StreamRegistry;
  readonly #config: WebRtcConfig;
  readonly #authorizePublish: PublishPolicy;
  readonly #authorizePlay: PlayPolicy | null;
  readonly #log: Logger;
  readonly #links: string[];
  readonly #keyframeCadenceMs: number;
  readonly #dataChannels: DataChannelHandler | null;
  /** WHEP viewers by stream path, bound to a feed or waiting for one. */
  readonly #viewersByPath = new Map<string, Set<WhepSession>>();
  /** The stream each bound viewer is counted on, and how to uncount it. */
  readonly #counted = new Map<WhepSession, { stream: Stream; uncount: () => void }>();
  /** Viewers waiting for a publisher, and the timer that gives up on it. */
  readonly #waiting = new Map<WhepSession, NodeJS.Timeout>();
  readonly #onStream = (stream: Stream) => this.#bindViewers(stream);
  /** webrtc.workers > 0: media-only WHEP offers are served from worker processes. */
  readonly workers: WhepWorkers | null;
  #closed = false;
  /** Sessions that ended within ENDED_SESSION_DELETE_MS, by resource capability: their kind and when they ended, oldest first. */
  readonly #ended = new Map<string, { kind: 'whip' | 'whep'; at: number }>();

  constructor(options: {
    engine: WebRtcEngine;
    registry: StreamRegistry;
    config: WebRtcConfig;
    authorizePublish: PublishPolicy;
    /** auth.play; absent: anyone may watch. */
    authorizePlay?: PlayPolicy;
    log: Logger;
    /** Serves the data channels peers open (messaging); without it every data channel is closed. */
    dataChannels?: DataChannelHandler;
    workers?: WhepWorkers;
    /** Who may list sessions (a control-API call); absent, loopback callers only. */
    control?: ControlAccess;
    /** While a WHIP stream has frame consumers its publisher is asked for a keyframe at least this often. */
    keyframeCadenceMs?: number;
  }) {
    this.#control = options.control ?? new ControlAccess('');
    this.#keyframeCadenceMs = options.keyframeCadenceMs ?? 0;
    this.#sessionsPerIp = new ConnectionsPerIp(
      () => this.#config.maxSessionsPerIp,
      'WHIP/WHEP sessions',
      'webrtc.maxSessionsPerIp',
    );
    this.workers = options.workers ?? null;
    if (this.workers) this.workers.onSessionEnded = (resource) => this.#rememberEnded('whep', resource);
    this.#dataChannels = options.dataChannels ?? null;
    this.engine = options.engine;
    this.#registry = options.registry;
    this.#config = options.config;
    this.#authorizePublish = options.authorizePublish;
    this.#authorizePlay = options.authorizePlay ?? null;
    this.#log = options.log.child({ component: 'webrtc' });
    this.#links = iceServerLinks(this.#config);
    // A stream going live (or getting its tracks) is what viewers waiting on its path start with.
    this.#registry.on('published', this.#onStream);
    this.#registry.on('changed', this.#onStream);
  }

  /** WHIP sessions publishing now, by path. */
  get publishers(): WhipSession[] {
    return [...this.sessions.values()].filter((s): s is WhipSession => s instanceof WhipSession);
  }

  get viewers(): WhepSession[] {
    return [...this.sessions.values()].filter((s): s is WhepSession => s instanceof WhepSession);
  }

  registerRoutes(app: FastifyInstance): void {
    const limit = this.#config.maxSdpBytes;
    app.register(async (scope) => {
      scope.addContentTypeParser(
        [SDP, TRICKLE],
        { parseAs: 'string', bodyLimit: limit },
        (_request, body, done) => done(null, body),
      );
      scope.setErrorHandler((error: Error & { statusCode?: number; code?: string }, request, reply) => {
        let status = error.statusCode ?? 500;
        let message = error.message;
        if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
          status = 413;
          message = `SDP body is larger than ${limit} bytes (webrtc.maxSdpBytes)`;
        } else if (error instanceof SdpError) status = error.status;
        // 501 and 503 carry their reason (an unsupported feature, a limit reached); other 5xx are internal.
        const internal = status >= 500 && status !== 501 && status !== 503;
        if (internal) request.log.error({ err: error, url: request.url }, 'WebRTC request failed');
        this.#cors(reply);
        reply.status(status).send({ error: internal ? 'internal server error' : message });
      });
      for (const kind of ['whip', 'whep'] as const) {
        scope.options(`/${kind}/*`, async (_request, reply) => {
          this.#cors(reply);
          reply
            .header('access-control-allow-methods', 'POST, PATCH, DELETE, OPTIONS')
            .header('access-control-allow-headers', 'authorization, content-type, if-match')
            .header('access-control-max-age', '600')
            .header('accept-post', SDP);
          // RFC 9725 §4.6: one Link header per ICE server (reply.header would keep only the last).
          if (this.#links.length > 0) reply.header('link', this.#links);
          return reply.status(204).send();
        });
        scope.patch(`/${kind}/resource/:id`, (request, reply) => this.#patch(kind, request, reply));
        scope.delete(`/${kind}/resource/:id`, (request, reply) => this.#delete(kind, request, reply));
      }
      scope.post('/whip/*', (request, reply) => this.#publish(request, reply));
      scope.post('/whep/*', (request, reply) => this.#play(request, reply));
      scope.get('/api/v1/webrtc/sessions', async (request) => {
        this.#control.authorize(request);
        return {
          sessions: [
            ...[...this.sessions.values()].map((s) => s.describe()),
            ...((await this.workers?.describe()) ?? []),
          ],
        };
      });
    });
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#registry.off('published', this.#onStream);
    this.#registry.off('changed', this.#onStream);
    for (const session of [...this.sessions.values()]) session.close('server shutting down');
    return Promise.all([this.workers?.close(), this.engine.close()]).then(() => {});
  }

  #cors(reply: FastifyReply): void {
    reply.header('access-control-expose-headers', 'location, etag, link, accept-patch, accept-post');
  }

  #streamPath(request: FastifyRequest): string {
    // Fastify has percent-decoded the path once already; decoding again made `live%252Fcam1` mean live/cam1.
    return requestStreamPath((request.params as Record<string, string>)['*'] ?? '');
  }

  #offerBody(request: FastifyRequest): string {
    const type = mediaType(request);
    if (type !== SDP) {
      throw new HttpError(
        415,
        `the offer must be sent as Content-Type: ${SDP}, got ${JSON.stringify(type || '(none)')}`,
      );
    }
    if (typeof request.body !== 'string' || request.body.length === 0)
      throw new HttpError(400, 'the SDP offer is empty');
    return request.body;
  }

  #timeouts() {
    return {
      connectTimeoutMs: this.#config.connectTimeoutMs,
      disconnectTimeoutMs: this.#config.disconnectTimeoutMs,
      inactivityTimeoutMs: this.#config.inactivityTimeoutMs,
    };
  }

  /** The session (in this process or a worker) whose resource URL is `location`, as Location gave it. */
  sessionAt(location: string): WebRtcSession | RemoteWhepSession | undefined {
    const resource = location.slice(location.lastIndexOf('/') + 1);
    return this.#resources.get(resource) ?? this.workers?.session('whep', resource);
  }

  #created(reply: FastifyReply, session: { kind: string; resource: string; etag: string }, answer: string) {
    this.#cors(reply);
    reply
      .status(201)
      .header('content-type', SDP)
      .header('location', `/${session.kind}/resource/${session.resource}`)
      .header('etag', session.etag)
      .header('accept-patch', TRICKLE);
    if (this.#links.length > 0) reply.header('link', this.#links);
    return reply.send(answer);
  }

  /**
   * Hands each data channel the peer opens to the handler; one whose label it does not serve is closed and
   * the session goes on. Whatever the handler serves ends with the session.
   */
  #serveDataChannels(session: WebRtcSession, request: FastifyRequest): void {
    const peer = {
      kind: session.kind,
      path: session.path,
      sessionId: session.id,
      remoteAddress: session.remoteAddress,
      headers: request.headers,
      query: new URLSearchParams(request.url.split('?')[1] ?? ''),
    };
    session.pc.onDataChannel((dc) => {
      this.engine.adoptDataChannel(session.pc, dc);
      const label = dc.getLabel();
      const end = session.closed ? null : (this.#dataChannels?.open(dc, peer) ?? null);
      if (!end) {
        this.#log.info(
          { path: session.path, session: session.id, label },
          `data channel ${JSON.stringify(label.slice(0, 64))} is not served here; closed`,
        );
        this.engine.refuseDataChannel(session.pc, dc);
        return;
      }
      session.onClose(end);
    });
  }

  /**
   * Admits one more offer from `remoteAddress`: within webrtc.maxSessionsPerIp for the address and
   * webrtc.maxPendingSessions for offers not yet connected (each holds a peer until webrtc.connectTimeoutMs).
   * Returns the release, which the session calls when it closes.
   */
  #admit(remoteAddress: string): () => void {
    let pending = this.#answering;
    for (const session of this.sessions.values()) if (session.state === 'connecting') pending++;
    if (pending >= this.#config.maxPendingSessions) {
      throw new HttpError(
        503,
        `${pending} WebRTC sessions are still connecting, the limit is ${this.#config.maxPendingSessions} (webrtc.maxPendingSessions); try again shortly`,
      );
    }
    try {
      return this.#sessionsPerIp.admit(remoteAddress);
    } catch (err) {
      if (err instanceof TooManyConnectionsError) throw new HttpError(429, err.message);
      throw err;
    }
  }

  #track(session: WebRtcSession): void {
    this.sessions.set(session.id, session);
    this.#resources.set(session.resource, session);
    session.onClose(() => {
      this.sessions.delete(session.id);
      this.#resources.delete(session.resource);
      this.#rememberEnded(session.kind, session.resource);
    });
  }

  /** `resource` is the capability of the session's URL: only its holder can learn that it ended. */
  #rememberEnded(kind: 'whip' | 'whep', resource: string): void {
    const now = performance.now();
    for (const [old, ended] of this.#ended) {
      if (now - ended.at < ENDED_SESSION_DELETE_MS) break;
      this.#ended.delete(old);
    }
    this.#ended.set(resource, { kind, at: now });
  }

  async #publish(request: FastifyRequest, reply: FastifyReply) {
    const path = this.#streamPath(request);
    const remoteAddress = request.socket.remoteAddress ?? '';
    const auth = request.headers.authorization ?? '';
    const token = /^bearer\s+/i.test(auth) ? auth.replace(/^bearer\s+/i, '') : undefined;
    const refusal = await this.#authorizePublish({
      protocol: 'whip',
      path,
      remoteAddress,
      key: token,
      headers: request.headers,
    });
    if (refusal) {
      this.#log.info({ path, remote: remoteAddress }, refusal);
      reply.header('www-authenticate', 'Bearer');
      throw new HttpError(token ? 403 : 401, refusal);
    }
    const offer = this.#offerBody(request);
    if (this.#registry.get(path)?.publisher) throw new HttpError(409, new StreamBusyError(path).message);
    const summary = summarizeOffer(offer, { video: this.#config.videoCodecs });
    // Refused before any peer exists: a peer closed with tracks never negotiated upsets libdatachannel.
    if (!summary.media.some((m) => m.codec && (m.direction === 'sendonly' || m.direction === 'sendrecv'))) {
      throw new SdpError(406, noUsableMedia(summary.media, 'send', this.#config.videoCodecs));
    }
    const release = this.#admit(remoteAddress);
    const session = new WhipSession(this.engine, path, remoteAddress, this.#timeouts(), this.#log);
    session.onClose(release);
    this.#serveDataChannels(session, request);
    this.#answering++;
    try {
      const taken = session.setup(summary, {
        maxBitrate: this.#config.maxPublishBitrate,
        minKeyframeIntervalMs: this.#config.keyframeIntervalMs,
        keyframeCadenceMs: this.#keyframeCadenceMs,
      });
      if (taken.length === 0)
        throw new SdpError(406, noUsableMedia(summary.media, 'send', this.#config.videoCodecs));
      const answer = await session.answer(offer, isLoopback(remoteAddress));
      let stream: Stream;
      try {
        stream = this.#registry.publish(path, session);
      } catch (err) {
        if (err instanceof StreamBusyError) throw new HttpError(409, err.message);
        throw err;
      }
      try {
        // In a cluster: refused as above when the path is live on another node.
        await this.#registry.confirmPublish(stream, session);
      } catch (err) {
        this.#registry.unpublish(stream, session);
        if (err instanceof StreamBusyError) throw new HttpError(409, err.message);
        throw err;
      }
      session.claimed(stream);
      for (const media of summary.media) {
        const refused = refusedMediaWarning(media);
        if (!refused) continue;
        stream.warnings.add(refused);
        this.#log.warn({ path, session: session.id }, `WHIP offer: ${refused}`);
      }
      if (session.layers.length > 0) {
        stream.warnings.add(
          `simulcast: layers ${session.rids.join(', ')}; ${session.rids[0]} is forwarded (the offer's first)`,
        );
      }
      session.onClose(() => this.#registry.unpublish(stream, session));
      this.#track(session);
      this.#log.info(
        { path, session: session.id, remote: remoteAddress, codecs: taken.map((m) => m.codec?.name) },
        'WHIP publisher offered',
      );
      return this.#created(reply, session, answer);
    } catch (err) {
      session.close(`setup failed: ${(err as Error).message}`);
      throw err;
    } finally {
      this.#answering--;
    }
  }

  async #play(request: FastifyRequest, reply: FastifyReply) {
    const path = this.#streamPath(request);
    const remoteAddress = request.socket.remoteAddress ?? '';
    if (this.#authorizePlay?.requiresToken(path)) {
      const token = presentedToken(request.headers, queryOf(request.url));
      const refusal = await this.#authorizePlay.authorize({
        protocol: 'whep',
        path,
        remoteAddress,
        ...(token ? { token } : {}),
      });
      if (refusal) {
        this.#log.info({ path, remote: remoteAddress }, refusal.reason);
        reply.header(
          'www-authenticate',
          refusal.status === 401 ? 'Bearer' : 'Bearer error="insufficient_scope"',
        );
        throw new HttpError(refusal.status, refusal.reason);
      }
    }
    const offer = this.#offerBody(request);
    const stream = await this.#registry.acquire(path);
    const feed = stream?.live ? this.#feedOf(stream) : null;
    const waitMs = this.#config.whepWaitForPublisherMs;
    if (!feed && (stream?.ready || waitMs <= 0)) {
      if (!stream?.live) throw new HttpError(404, `stream "${path}" is not live`);
      const codecs = stream.tracks.map((t) => t.codec).join(', ') || 'no tracks yet';
      throw new HttpError(409, `stream "${path}" has nothing WebRTC can carry (${codecs})`);
    }
    let summary: OfferSummary;
    let pick: (media: OfferedMedia) => ChosenCodec | null;
    if (feed) {
      // The viewer must take the codec the stream has: that is the only one in the preference.
      const plid = /profile-level-id=([0-9a-f]{2})/i.exec(feed.video?.fmtp ?? '')?.[1];
      summary = summarizeOffer(offer, {
        video: feed.video ? [feed.video.codec.toLowerCase()] : [],
        h264ProfileIdc: plid ? Number.parseInt(plid, 16) : undefined,
      });
      pick = (media) => pickForFeed(media, feed);
    } else {
      // Not live yet: the viewer is answered with the codecs a publisher most likely brings (the WHIP
      // preference), and is told why if the stream then goes live with another.
      summary = summarizeOffer(offer, { video: this.#config.videoCodecs });
      pick = (media) => media.codec;
    }
    const receives = (m: OfferedMedia) => m.direction === 'recvonly' || m.direction === 'sendrecv';
    if (!summary.media.some((m) => receives(m) && pick(m))) {
      throw new SdpError(
        406,
        feed
          ? noMatchingMedia(summary.media, feed)
          : noUsableMedia(summary.media, 'receive', this.#config.videoCodecs),
      );
    }
    // Workers serve live streams; a viewer waiting for its publisher is served here.
    if (feed && stream && this.workers?.takes(summary)) {
      const clientIsLoopback = isLoopback(remoteAddress);
      const served = await this.workers.play({
        path,
        remoteAddress,
        clientIsLoopback,
        offer,
        summary,
        stream,
        feed,
        pick,
      });
      return this.#created(reply, served.session, served.answer);
    }
    const release = this.#admit(remoteAddress);
    const session = new WhepSession(this.engine, path, remoteAddress, this.#timeouts(), this.#log);
    session.onClose(release);
    this.#serveDataChannels(session, request);
    this.#answering++;
    try {
      const taken = session.setup(summary, null, pick);
      if (taken.length === 0)
        throw new SdpError(406, feed ? noMatchingMedia(summary.media, feed) : 'no usable media');
      const answer = await session.answer(offer, isLoopback(remoteAddress));
      this.#track(session);
      this.#addViewer(session);
      // The stream may have gone live (or away) while the answer was gathered.
      const now = this.#registry.get(path);
      const current = now?.live ? this.#feedOf(now) : null;
      if (now && current && !session.mismatch(current)) this.#bind(session, now, current);
      else if (waitMs > 0) this.#wait(session, waitMs);
      else throw new HttpError(404, `stream "${path}" is not live`);
      this.#log.info(
        { path, session: session.id, remote: remoteAddress, waiting: session.feed === null },
        session.feed ? 'WHEP viewer offered' : 'WHEP viewer offered; waiting for the publisher',
      );
      return this.#created(reply, session, answer);
    } catch (err) {
      session.close(`setup failed: ${(err as Error).message}`);
      throw err;
    } finally {
      this.#answering--;
    }
  }

  #addViewer(session: WhepSession): void {
    let viewers = this.#viewersByPath.get(session.path);
    if (!viewers) {
      viewers = new Set();
      this.#viewersByPath.set(session.path, viewers);
    }
    viewers.add(session);
    session.onSourceEnded = (s, reason) => this.#sourceEnded(s, reason);
    session.onClose(() => {
      this.#unbind(session);
      viewers.delete(session);
      if (viewers.size === 0 && this.#viewersByPath.get(session.path) === viewers)
        this.#viewersByPath.delete(session.path);
    });
  }

  /** Counts the viewer on the stream (which keeps it registered while the publisher is away) and feeds it. */
  #bind(session: WhepSession, stream: Stream, feed: RtpFeed & FeedClock): void {
    this.#unbind(session);
    // The feed first: counting emits 'changed', which comes back to #bindViewers for this path.
    session.bind(feed);
    this.#counted.set(session, { stream, uncount: stream.addViewer('whep') });
  }

  #unbind(session: WhepSession): void {
    const timer = this.#waiting.get(session);
    if (timer) clearTimeout(timer);
    this.#waiting.delete(session);
    const counted = this.#counted.get(session);
    this.#counted.delete(session);
    session.unbind();
    if (counted) {
      counted.uncount();
      this.#registry.release(counted.stream);
    }
  }

  /** `webrtc.whepWaitForPublisherMs`: the viewer stays connected this long for a publisher to appear. */
  #wait(session: WhepSession, ms: number): void {
    this.#unbind(session);
    const timer = setTimeout(() => {
      this.#waiting.delete(session);
      session.close(`no publisher on "${session.path}" within ${ms} ms (webrtc.whepWaitForPublisherMs)`);
    }, ms);
    timer.unref();
    this.#waiting.set(session, timer);
  }

  /** The viewer's source is gone (a WHIP publisher left; an RTMP one did not come back in time). */
  #sourceEnded(session: WhepSession, reason: string): void {
    const waitMs = this.#config.whepWaitForPublisherMs;
    if (waitMs <= 0 || this.#closed) {
      session.close(reason);
      return;
    }
    this.#log.info(
      { path: session.path, session: session.id, reason },
      'WHEP viewer waits for a new publisher',
    );
    this.#wait(session, waitMs);
  }

  /** Viewers of `stream`'s path not yet on its current feed move to it (first publish, or a new publisher). */
  #bindViewers(stream: Stream): void {
    const viewers = this.#viewersByPath.get(stream.path);
    if (!viewers || viewers.size === 0 || !stream.live) return;
    const feed = this.#feedOf(stream);
    if (!feed) return;
    for (const session of [...viewers]) {
      if (session.feed === feed || session.closed) continue;
      const why = session.mismatch(feed);
      if (why) {
        session.close(`the stream went live with codecs this viewer did not negotiate: ${why}`);
        continue;
      }
      this.#log.info({ path: stream.path, session: session.id }, 'WHEP viewer starts with the new publisher');
      this.#bind(session, stream, feed);
    }
  }

  #feedOf(stream: Stream): (RtpFeed & FeedClock) | null {
    const publisher = stream.publisher;
    // A closing publisher's feed is ending: its viewers are on their way to waiting (or closing).
    if (publisher instanceof WhipSession) return publisher.closed ? null : publisher.feed;
    if (!stream.ready) return null;
    const feed = StreamRtpFeed.of(stream, {
      opusBitrate: this.#config.opusBitrate,
      ffmpegPath: this.#config.ffmpegPath,
      republishWaitMs: this.#config.republishWaitMs,
      log: this.#log,
    });
    return feed.playable ? feed : null;
  }

  #session(kind: 'whip' | 'whep', request: FastifyRequest): WebRtcSession | RemoteWhepSession {
    const { id } = request.params as { id: string };
    const session = this.#resources.get(id) ?? this.workers?.session(kind, id);
    // The URL is a capability: the error does not echo it back.
    if (!session || session.kind !== kind) throw new HttpError(404, `no such ${kind.toUpperCase()} resource`);
    return session;
  }

  async #patch(kind: 'whip' | 'whep', request: FastifyRequest, reply: FastifyReply) {
    const session = this.#session(kind, request);
    const type = mediaType(request);
    if (type !== TRICKLE) {
      throw new HttpError(
        415,
        `PATCH takes Content-Type: ${TRICKLE}, got ${JSON.stringify(type || '(none)')}`,
      );
    }
    const ifMatch = request.headers['if-match'];
    if (ifMatch !== undefined && ifMatch !== '*' && ifMatch !== session.etag) {
      throw new HttpError(412, `If-Match ${ifMatch} does not match the session's ETag ${session.etag}`);
    }
    const remoteUfrag =
      session instanceof WhipSession || session instanceof WhepSession ? session.remoteUfrag : '';
    const body = typeof request.body === 'string' ? request.body : '';
    if (!(await session.trickle(body, remoteUfrag))) {
      // RFC 9725 §4.3.1: a session that supports trickle ICE but not ICE restarts answers 422 to a restart and
      // keeps the session (it ends only if consent is then lost). libdatachannel cannot restart ICE on a live
      // peer (libdatachannel issue #545).
      throw new HttpError(
        422,
        `ICE restart is not supported (the PATCH carries a new ice-ufrag ${JSON.stringify(fragmentUfrag(body))}); ` +
          'the session goes on with its current ICE credentials: DELETE it and POST a new offer to reconnect',
      );
    }
    this.#cors(reply);
    return reply.status(204).send();
  }

  async #delete(kind: 'whip' | 'whep', request: FastifyRequest, reply: FastifyReply) {
    const { id } = request.params as { id: string };
    const ended = this.#ended.get(id);
    if (ended?.kind === kind && performance.now() - ended.at < ENDED_SESSION_DELETE_MS) {
      this.#cors(reply);
      return reply.status(200).send();
    }
    const session = this.#session(kind, request);
    session.close('DELETE by the client');
    this.#cors(reply);
    return reply.status(200).send();
  }
}

function fragmentUfrag(body: string): string {
  return (/^a=ice-ufrag:(\S+)/m.exec(body)?.[1] ?? '').slice(0, 64);
}

function noUsableMedia(media: readonly OfferedMedia[], verb: string, video: readonly string[]): string {
  const parts = media.map(
    (m) => `${m.kind} mid ${m.mid} (${m.direction}): ${m.offered.join(', ') || 'no codec'}`,
  );
  return `the offer has nothing this server can receive: it needs an m-section that can ${verb} Opus audio or ${video.join('/')} video (H.264 with packetization-mode=1); offered ${parts.join('; ') || 'no audio or video'}`;
}

function noMatchingMedia(media: readonly OfferedMedia[], feed: RtpFeed): string {
  const has = [feed.video && `video ${feed.video.codec}`, feed.audio && `audio ${feed.audio.codec}`]
    .filter(Boolean)
    .join(' and ');
  const parts = media.map(
    (m) => `${m.kind} mid ${m.mid} (${m.direction}): ${m.offered.join(', ') || 'no codec'}`,
  );
  return `the offer cannot receive this stream (${has || 'no tracks'}): offered ${parts.join('; ')}`;
}

/** The viewer's format for the feed's codec of that kind (H.264: packetization-mode 1, matching profile). */
function pickForFeed(media: OfferedMedia, feed: RtpFeed): ChosenCodec | null {
  const track = feed[media.kind];
  if (!track) return null;
  const offerCodec = media.codec;
  if (offerCodec && offerCodec.name === track.codec) return offerCodec;
  return null;
}
