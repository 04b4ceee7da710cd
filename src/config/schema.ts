import { z } from 'zod';
import { TOKEN_ALGORITHMS } from '../auth/Tokens.ts';

/**
 * Every setting, its type and its default, in one place. `config.sample.yaml` at the repository root documents
 * each key; keep the two together. Each section is its own object so a protocol takes only its part.
 */
const port = z.number().int().min(0).max(65535);
const host = z.string().min(1);

export const HttpConfig = z
  .object({
    host: host.default('0.0.0.0'),
    port: port.default(8080),
    /** PEM certificate and key paths; when both are set the port serves HTTPS and WSS instead of HTTP/WS. */
    tlsCert: z.string().default(''),
    tlsKey: z.string().default(''),
    /** Allowed CORS origin for media and messaging (never for the control API: docs/security.md). */
    corsOrigin: z.string().default('*'),
    /** Dashboard event streams (`/api/v1/events`) one client address may hold open. */
    maxEventStreamsPerIp: z.number().int().min(1).default(10),
    /** A dashboard event reader holding more unsent bytes than this is cut off (it reconnects). */
    /** A request whose head is not complete within this is closed (Node's default is 60 s). */
    headersTimeoutMs: z.number().int().min(1000).default(10_000),
    /** A request whose body is not complete within this is closed (responses may stream longer). */
    requestTimeoutMs: z.number().int().min(1000).default(30_000),
    eventsMaxBacklogBytes: z
      .number()
      .int()
      .min(16 * 1024)
      .default(1024 * 1024),
  })
  .strict();

export const RtmpConfig = z
  .object({
    enabled: z.boolean().default(true),
    host: host.default('0.0.0.0'),
    port: port.default(1935),
    /** Chunk size the server announces for what it sends (RTMP play). */
    chunkSize: z.number().int().min(128).max(65536).default(4096),
    /** Memory all connections' unfinished (partly received) messages may hold together; past it the connection adding more is closed. */
    maxReassemblyBytes: z
      .number()
      .int()
      .min(1024 * 1024)
      .default(256 * 1024 * 1024),
  })
  .strict();

export const AuthConfig = z
  .object({
    /** Loopback clients (127.0.0.0/8, ::1) may publish without a key. */
    loopbackPublish: z.boolean().default(true),
    /**
     * The key remote publishers must present: `?key=` on the RTMP stream name. Empty: remote publishing is
     * refused.
     */
    publishKey: z.string().default(''),
    /** Bearer token for mutating control-API calls (DELETE …) from non-loopback clients. Empty: loopback only. */
    apiToken: z.string().default(''),
    /**
     * HMAC secret of signed access tokens (HS256 JWTs, src/auth/Tokens.ts): `sub` names the client, `grants`
     * the channels and streams it may use. Empty: tokens are off (a presented one is refused).
     */
    jwtSecret: z.string().default(''),
    /** Bearer token `/metrics` requires. Empty: /metrics is public (it shows counts, no addresses or keys). */
    metricsToken: z.string().default(''),
    /**
     * JSON Web Key Set of an identity provider (Auth0, Keycloak, Cognito, your backend): asymmetric tokens
     * (RS256, PS256, ES256, EdDSA) are checked against its keys, fetched, cached and refetched on an unknown
     * `kid`. Empty: only HMAC tokens (auth.jwtSecret).
     */
    jwksUrl: z
      .string()
      .default('')
      .refine((v) => v === '' || /^https?:\/\//.test(v), { message: 'expected an http:// or https:// URL' }),
    /** The token algorithms accepted, whatever a token's header says (never `none`). */
    jwtAlgorithms: z
      .preprocess(
        (v) =>
          typeof v === 'string'
            ? v
                .split(',')
                .map((s) => s.trim())
                .filter(Boolean)
            : v,
        z.array(z.enum(TOKEN_ALGORITHMS)).min(1),
      )
      .default(['HS256', 'RS256', 'PS256', 'ES256', 'EdDSA']),
    /** When set, a token's `iss` must equal it. */
    issuer: z.string().default(''),
    /** When set, a token's `aud` must be or include it. */
    audience: z.string().default(''),
    /** A key-set fetch that takes longer fails, and the token it was for is refused. */
    jwksTimeoutMs: z.number().int().min(100).default(5000),
    /** A token with an unknown `kid` refetches the key set at most this often (a rotation is picked up). */
    jwksCooldownMs: z.number().int().min(0).default(30_000),
    /**
     * `open`: anyone may watch. `token`: WHEP, WebSocket+MSE, LL-HLS, LL-DASH, RTMP play and the stream's API
     * details need a token granting `play` on the path (bearer or `?token=`).
     */
    play: z.enum(['open', 'token']).default('open'),
    /**
     * Signs the media URIs of LL-HLS/LL-DASH for token-protected paths (nginx secure_link form, so a CDN edge
     * can verify them). Empty: random per process (only this server can verify).
     */
    segmentSigningSecret: z.string().default(''),
    /** A signed media URI is valid between one and two of these after it was written; viewers share it. */
    segmentSignatureTtlSeconds: z.number().int().min(5).max(86_400).default(60),
  })
  .strict();

export const MseConfig = z
  .object({
    /** A viewer whose socket holds more unsent bytes than this skips to the next keyframe. */
    maxBacklogBytes: z
      .number()
      .int()
      .min(16 * 1024)
      .default(1024 * 1024),
    /** How long an open viewer waits for the publisher to come back before the server closes it. */
    republishWaitMs: z.number().int().min(0).default(30_000),
    /** WebSocket ping interval; a viewer that misses two pongs is dropped. */
    pingIntervalMs: z.number().int().min(1000).default(15_000),
    /** Open WebSocket+MSE viewers per client IP. */
    maxViewersPerIp: z.number().int().min(1).default(100),
  })
  .strict();

export const GopConfig = z
  .object({
    /** The GOP cache holds at most this many frames and bytes; past either it waits for the next keyframe. */
    maxFrames: z.number().int().min(1).default(900),
    maxBytes: z
      .number()
      .int()
      .min(64 * 1024)
      .default(32 * 1024 * 1024),
    /**
     * A new viewer is replayed the cached GOP only while it spans at most this long; past it, a publisher that
     * makes keyframes on request (WHIP) is asked for one and the viewer starts with it (RTMP GOPs are always
     * replayed).
     */
    maxReplayMs: z.number().int().min(0).default(3000),
  })
  .strict();

export const MessagingConfig = z
  .object({
    /** Each channel keeps at most this many messages for clients that resume… */
    historyMaxMessages: z.number().int().min(1).max(1_000_000).default(1000),
    /** …and none older than this. */
    historyMaxAgeMs: z.number().int().min(1000).default(3_600_000),
    /** …and at most this many bytes of messages (their JSON) per channel; the oldest go first. */
    historyMaxBytes: z
      .number()
      .int()
      .min(1024)
      .default(1024 * 1024),
    /** All channels' histories together hold at most this many bytes; past it the least recently used lose their oldest. */
    maxHistoryBytesTotal: z
      .number()
      .int()
      .min(1024)
      .default(64 * 1024 * 1024),
    /** Channels the server keeps at once; past it the longest-idle channel without subscribers is forgotten. */
    maxChannels: z.number().int().min(1).default(100_000),
    /** Largest `data` of one message, as JSON bytes. */
    maxMessageBytes: z
      .number()
      .int()
      .min(64)
      .max(1024 * 1024)
      .default(16 * 1024),
    /** Publish rate limit per connection (per IP for HTTP publish): sustained rate and burst. */
    publishRatePerSecond: z.number().min(0.1).default(10),
    publishBurst: z.number().int().min(1).default(20),
    maxChannelsPerConnection: z.number().int().min(1).default(32),
    /** Open messaging connections (WebSocket, SSE, held long-polls) per client IP. */
    maxConnectionsPerIp: z.number().int().min(1).default(100),
    /** WebSocket ping interval; a client that misses two pongs is dropped. */
    pingIntervalMs: z.number().int().min(100).default(20_000),
    /** SSE comment heartbeat interval, and the reconnect delay (`retry:`) SSE clients are told. */
    sseHeartbeatMs: z.number().int().min(100).default(15_000),
    sseRetryMs: z.number().int().min(100).default(2000),
    /** How long a long-poll is held when nothing newer exists. */
    pollTimeoutMs: z.number().int().min(100).default(25_000),
    /** Presence events per channel at most this often. */
    presenceIntervalMs: z.number().int().min(50).default(1000),
    /** A client whose connection holds more unsent bytes than this is disconnected (it resumes later). */
    maxBacklogBytes: z
      .number()
      .int()
      .min(16 * 1024)
      .default(1024 * 1024),
    /** Comma-separated channel patterns anonymous clients may subscribe to / publish on (`*` one segment). */
    anonymousRead: z.string().default('**'),
    anonymousWrite: z.string().default('**'),
    /**
     * Signs the tokens that keep an anonymous client's id across reconnects. Empty: random per process (ids
     * survive reconnects, not restarts). Give every node of a cluster the same value.
     */
    identitySecret: z.string().default(''),
  })
  .strict();

export const HlsConfig = z
  .object({
    /** Serve every live stream as LL-HLS at /hls/{path}/index.m3u8. */
    enabled: z.boolean().default(true),
    /** Segments are cut at the first keyframe at or after this duration. */
    segmentTargetMs: z.number().int().min(500).max(30_000).default(2000),
    /** Partial segments (RFC 8216bis §4.4.4.9) last at most this long; must be below segmentTargetMs. */
    partTargetMs: z.number().int().min(50).max(5000).default(200),
    /** Complete segments listed in the media playlist. */
    playlistSegments: z.number().int().min(3).max(100).default(10),
    /** Bytes of segments one stream may hold (listed ones and those kept after leaving the playlist). */
    maxBytesPerStream: z
      .number()
      .int()
      .min(1024 * 1024)
      .default(128 * 1024 * 1024),
    /** A blocking playlist or preload-hint request waits at most this long; 0 means 3 × target duration (§6.2.5.2). */
    blockTimeoutMs: z.number().int().min(0).default(0),
    /** After the publisher leaves, the ended playlist stays served this long so a republish continues it. */
    endedRetentionMs: z.number().int().min(0).default(60_000),
  })
  .strict()
  // RFC 8216bis §4.4.3.7: a part is a piece of a segment, so it must be shorter than one.
  .refine((c) => c.partTargetMs < c.segmentTargetMs, {
    path: ['partTargetMs'],
    message: 'must be below hls.segmentTargetMs',
  });

export const DashConfig = z
  .object({
    /** Serve the LL-HLS segments as low-latency DASH at /dash/{path}/manifest.mpd (off too when hls.enabled is false). */
    enabled: z.boolean().default(true),
    /** The latency the DASH ServiceDescription asks players to hold behind the live edge. */
    targetLatencyMs: z.number().int().min(200).default(1000),
  })
  .strict();

/** A STUN/TURN server handed to WebRTC clients (RFC 9725 §4.6 Link headers), as RTCIceServer has it. */
const IceServer = z
  .object({
    urls: z.union([
      z.string().regex(/^(stun|stuns|turn|turns):/),
      z.array(z.string().regex(/^(stun|stuns|turn|turns):/)),
    ]),
    username: z.string().optional(),
    credential: z.string().optional(),
  })
  .strict();

/** A comma-separated string (from the environment or a flag) or a YAML list. */
const stringList = z.preprocess(
  (v) =>
    typeof v === 'string'
      ? v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : v,
  z.array(z.string().min(1)),
);

export const WebRtcConfig = z
  .object({
    enabled: z.boolean().default(true),
    /** The one UDP port every WebRTC peer shares (ICE UDP mux). 0: a free port chosen at start. */
    udpPort: port.default(8189),
    /** Address the UDP port binds to. */
    bindAddress: host.default('0.0.0.0'),
    /** Public IPs or names put in answers as host candidates, for a server behind NAT or in a container. */
    announcedAddresses: stringList.default([]),
    /** Offer a 127.0.0.1 candidate to clients on this machine (the ICE library skips loopback interfaces). */
    loopbackCandidate: z.boolean().default(true),
    /** STUN/TURN servers given to clients in Link headers. */
    iceServers: z
      .preprocess((v) => (typeof v === 'string' ? JSON.parse(v) : v), z.array(IceServer))
      .default([]),
    /** Video codecs accepted from WHIP publishers, best first. */
    videoCodecs: z
      .array(z.enum(['h264', 'vp8', 'vp9', 'av1']))
      .min(1)
      .default(['h264', 'vp8', 'vp9', 'av1']),
    /** ICE and DTLS must complete within this after the answer. */
    connectTimeoutMs: z.number().int().min(1000).default(15_000),
    /** A session whose ICE consent is lost ends unless it recovers within this. */
    disconnectTimeoutMs: z.number().int().min(500).default(5_000),
    /** A connected session from which nothing (RTP or RTCP) arrives for this long is freed. */
    inactivityTimeoutMs: z.number().int().min(1000).default(10_000),
    /** Keyframe requests (PLI) to a publisher are at most this often; viewers joining together share one. */
    keyframeIntervalMs: z.number().int().min(50).default(500),
    /** Bitrate announced to WHIP publishers (REMB), bits per second. */
    maxPublishBitrate: z.number().int().min(100_000).default(6_000_000),
    /** Bitrate of the Opus rendition made for WHEP viewers of an AAC stream, bits per second. */
    opusBitrate: z.number().int().min(6000).max(510_000).default(96_000),
    /** The ffmpeg that transcodes AAC to Opus. */
    ffmpegPath: z.string().min(1).default('ffmpeg'),
    /** A WHEP viewer of an RTMP stream waits this long for a departed publisher to come back. */
    republishWaitMs: z.number().int().min(0).default(30_000),
    /**
     * A WHEP viewer of a path with no publisher (not live yet, or its WHIP publisher left) stays connected
     * this long for one to appear, then starts at its first keyframe. 0: such a request gets 404.
     */
    whepWaitForPublisherMs: z.number().int().min(0).default(0),
    /** Largest SDP body accepted; larger ones get 413. */
    maxSdpBytes: z
      .number()
      .int()
      .min(4096)
      .default(64 * 1024),
    /** WHEP viewers served from this many worker processes, to use more cores; 0: all in the main process. */
    workers: z.number().int().min(0).max(64).default(0),
    /** WHIP and WHEP sessions (served in this process) one client IP may hold. */
    maxSessionsPerIp: z.number().int().min(1).default(100),
    /** Sessions still connecting (answered, ICE/DTLS not done) the server holds at once; past it offers get 503. */
    maxPendingSessions: z.number().int().min(1).default(200),
    /** The workers' UDP ports by index (a comma-separated string from a flag); unlisted: udpPort + 1 + index. */
    workerUdpPorts: z
      .preprocess(
        (v) =>
          typeof v === 'string'
            ? v
                .split(',')
                .filter((s) => s.trim())
                .map(Number)
            : v,
        z.array(port),
      )
      .default([]),
  })
  .strict();

export const ClusterConfig = z
  .object({
    /**
     * The Redis (7.x or Valkey) that holds the cluster's control plane: `redis://[user:password@]host:port[/db]`
     * (`rediss://` for TLS), or Sentinel: `redis+sentinel://[:password@]host1:26379,host2:26379/masterName`.
     * Empty: this node runs alone, as without a cluster.
     */
    redis: z
      .string()
      .default('')
      .refine((v) => v === '' || /^(rediss?|redis\+sentinel):\/\//.test(v), {
        message: 'expected redis://host:port, rediss://host:port or redis+sentinel://host:port,…/masterName',
      }),
    /** Shared by every node of the cluster; authenticates the relay between nodes. Required with `redis`. */
    secret: z.string().default(''),
    /** Where other nodes and redirected clients reach this node (`https://edge1.example.net`). Empty: derived. */
    publicUrl: z.string().default(''),
    /** This node's id in the registry. Empty: the host name and a random suffix. */
    nodeId: z.string().default(''),
    /** A WHIP/WHEP POST to a node that should not take it is answered 307 with the chosen node (RFC 9725 §4.5). */
    redirect: z.boolean().default(false),
    /** Viewers this node takes before it answers new ones 503 + Retry-After (and routing avoids it). 0: no limit. */
    maxViewers: z.number().int().min(0).default(0),
    /** Estimated egress (bits/s) past which this node refuses new viewers like maxViewers. 0: no limit. */
    maxEgressBitrate: z.number().int().min(0).default(0),
    /** An edge keeps pulling a stream this long after its last viewer left, so a viewer coming back is instant. */
    relayIdleMs: z.number().int().min(0).default(15_000),
    /**
     * A Redis command not answered within this long fails: a publish answers 503 naming this setting (and is
     * never stored afterwards), the directory retries at its next heartbeat. Guards against a stuck Redis.
     */
    redisCommandTimeoutMs: z.number().int().min(100).max(60_000).default(2000),
  })
  .strict();

export const RecordConfig = z
  .object({
    /** Record every live stream whose path matches record.paths (POST /api/v1/streams/{path}/recording starts one). */
    enabled: z.boolean().default(false),
    /** Path patterns recorded when enabled: `*` within one segment, `**` anything (e.g. "live/**"). */
    paths: stringList.default(['**']),
    /** Recordings are written and read only under this folder, one subfolder per stream path. */
    dir: z.string().min(1).default('./recordings'),
    /** A file is closed at the first keyframe at or after this many seconds, and the next one started. */
    segmentSeconds: z.number().min(1).max(3600).default(60),
    /** Files that ended longer ago than this are deleted, oldest first; 0: kept regardless of age. */
    maxAgeHours: z.number().min(0).default(0),
    /** Recordings of all paths together are kept below this many bytes, the oldest deleted first; 0: no limit. */
    maxBytes: z.number().int().min(0).default(0),
  })
  .strict();

export const LogConfig = z
  .object({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .strict();

export const Config = z
  .object({
    http: HttpConfig.prefault({}),
    rtmp: RtmpConfig.prefault({}),
    auth: AuthConfig.prefault({}),
    mse: MseConfig.prefault({}),
    gop: GopConfig.prefault({}),
    messaging: MessagingConfig.prefault({}),
    hls: HlsConfig.prefault({}),
    dash: DashConfig.prefault({}),
    webrtc: WebRtcConfig.prefault({}),
    cluster: ClusterConfig.prefault({}),
    log: LogConfig.prefault({}),
    record: RecordConfig.prefault({}),
  })
  .strict()
  .refine((c) => c.cluster.redis === '' || c.cluster.secret !== '', {
    path: ['cluster', 'secret'],
    message:
      'cluster.redis is set, so cluster.secret must be too: every node needs the same secret for the relay',
  });

export type Config = z.infer<typeof Config>;
export type HttpConfig = z.infer<typeof HttpConfig>;
export type RtmpConfig = z.infer<typeof RtmpConfig>;
export type AuthConfig = z.infer<typeof AuthConfig>;
export type MseConfig = z.infer<typeof MseConfig>;
export type MessagingConfig = z.infer<typeof MessagingConfig>;
export type HlsConfig = z.infer<typeof HlsConfig>;
export type DashConfig = z.infer<typeof DashConfig>;
export type WebRtcConfig = z.infer<typeof WebRtcConfig>;
export type ClusterConfig = z.infer<typeof ClusterConfig>;
export type RecordConfig = z.infer<typeof RecordConfig>;

/** Recursively optional: what a config file, the environment, flags or a test may override. */
export type ConfigInput = { [S in keyof Config]?: Partial<Config[S]> };

export const DEFAULTS: Config = Config.parse({});

/** Settings that moved, by old `section.key`: refused at start with the new key named, never silently ignored. */
export const MOVED_SETTINGS: Readonly<Record<string, string>> = {
  'hls.dash': 'dash.enabled',
  'hls.dashTargetLatencyMs': 'dash.targetLatencyMs',
};
