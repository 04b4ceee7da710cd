import type { FastifyReply, FastifyRequest } from 'fastify';
import type { TokenVerifier } from '../auth/Tokens.ts';
import type { MessagingConfig } from '../config/schema.ts';
import type { Logger } from '../core/log.ts';
import { channelFromUrlPath, InvalidChannelError } from './ChannelName.ts';
import type { ChannelPolicy, IdentityResolver } from './ChannelPolicy.ts';
import { publishOverHttp } from './HttpPublish.ts';
import type { MessageBus } from './MessageBus.ts';
import { Messaging } from './Messaging.ts';
import { PollChannelEndpoint } from './poll/PollChannelEndpoint.ts';
import { SseChannelEndpoint } from './sse/SseChannelEndpoint.ts';
import { WsChannelServer } from './ws/WsChannelServer.ts';

/** The part of a URL path after `prefix`, without the query. */
function pathAfter(request: FastifyRequest, prefix: string): string {
  return request.url.split('?')[0].slice(prefix.length);
}

/** The messaging layer with its transports, as the HTTP server routes to it. */
export class MessagingServer {
  readonly messaging: Messaging;
  readonly ws: WsChannelServer;
  readonly sse: SseChannelEndpoint;
  readonly poll: PollChannelEndpoint;

  constructor(options: {
    config: MessagingConfig;
    corsOrigin: string;
    /** `auth.jwtSecret`: signed tokens name clients and their grants; empty or absent, tokens are off. */
    jwtSecret?: string;
    /** The server's token verifier (auth.jwtSecret, auth.jwksUrl); wins over `jwtSecret`. */
    tokens?: TokenVerifier | null;
    log: Logger;
    bus?: MessageBus;
    policy?: ChannelPolicy;
    identities?: IdentityResolver;
    viewersOf?: (streamPath: string) => number | undefined;
  }) {
    this.messaging = new Messaging(options);
    this.ws = new WsChannelServer(this.messaging);
    this.sse = new SseChannelEndpoint(this.messaging, options.corsOrigin);
    this.poll = new PollChannelEndpoint(this.messaging);
  }

  /** Request body limit for HTTP publish: the largest data plus room for the envelope. */
  get bodyLimit(): number {
    return this.messaging.config.maxMessageBytes + 4096;
  }

  /** `GET /sse/channels/{name}`. */
  serveEvents(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    return this.sse.handle(request, reply, pathAfter(request, '/sse/channels/'));
  }

  /** `GET /poll/channels/{name}`. */
  servePoll(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    return this.poll.handle(request, reply, pathAfter(request, '/poll/channels/'));
  }

  /** `POST /api/v1/channels/{name}/messages`. */
  async servePublish(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const rest = pathAfter(request, '/api/v1/channels/');
    if (!rest.endsWith('/messages')) {
      return reply.status(404).send({ error: `no route for POST ${request.url.split('?')[0]}` });
    }
    let channel: string;
    try {
      channel = channelFromUrlPath(rest.slice(0, -'/messages'.length));
    } catch (err) {
      if (err instanceof InvalidChannelError) return reply.status(400).send({ error: err.message });
      throw err;
    }
    return publishOverHttp(this.messaging, request, reply, channel);
  }

  async close(): Promise<void> {
    this.ws.close();
    this.sse.close();
    this.poll.close();
    await this.messaging.close();
  }
}
