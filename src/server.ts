import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { ControlAccess } from './auth/ControlAccess.ts';
import { MediaUriSigner } from './auth/MediaUriSigning.ts';
import { PlayPolicy } from './auth/PlayPolicy.ts';
import { createPublishPolicy } from './auth/PublishPolicy.ts';
import { createTokenVerifier } from './auth/Tokens.ts';
import { ClusterNode } from './cluster/ClusterNode.ts';
import { resolveNodeId } from './cluster/nodeId.ts';
import { resolveConfig } from './config/load.ts';
import type { Config, ConfigInput } from './config/schema.ts';
import { log as rootLog, setLogLevel } from './core/log.ts';
import { StreamRegistry } from './core/StreamRegistry.ts';
import { createHttpServer } from './http/HttpServer.ts';
import { addClusterMetrics, createMetrics } from './http/metrics.ts';
import { DataChannelServer } from './messaging/datachannel/DataChannelServer.ts';
import { MessagingServer } from './messaging/MessagingServer.ts';
import { connectRedisBus } from './messaging/redis/RedisBus.ts';
import { DashServer } from './protocols/dash/DashServer.ts';
import { HlsServer } from './protocols/hls/HlsServer.ts';
import { MseServer } from './protocols/mse/MseServer.ts';
import { RtmpServer } from './protocols/rtmp/RtmpServer.ts';
import { WebRtcEngine } from './protocols/webrtc/WebRtcEngine.ts';
import { WebRtcServer } from './protocols/webrtc/WebRtcServer.ts';
import { addWorkerMetrics } from './protocols/webrtc/workers/metrics.ts';
import { WhepWorkers } from './protocols/webrtc/workers/WhepWorkers.ts';
import { addRecordingMetrics } from './record/metrics.ts';
import { Recordings } from './record/Recordings.ts';

export interface RunningServer {
  readonly config: Config;
  readonly registry: StreamRegistry;
  readonly mse: MseServer;
  readonly messaging: MessagingServer;
  /** LL-HLS packaging and delivery, or null when hls.enabled is false. */
  readonly hls: HlsServer | null;
  /** LL-DASH over the LL-HLS packager's segments, or null when disabled. */
  readonly dash: DashServer | null;
  readonly rtmp: RtmpServer | null;
  readonly webrtc: WebRtcServer | null;
  /** This node's part in the cluster, or null without cluster.redis. */
  readonly cluster: ClusterNode | null;
  /** Recording (record.*): the on-disk index, recorders and retention. */
  readonly recordings: Recordings;
  /** `http://127.0.0.1:PORT` (https when TLS is configured), with the port actually bound. */
  readonly httpUrl: string;
  /** `rtmp://127.0.0.1:PORT`, or '' when RTMP is disabled. */
  readonly rtmpUrl: string;
  readonly httpPort: number;
  readonly rtmpPort: number;
  close(): Promise<void>;
}

const WEB_ROOT = fileURLToPath(new URL('../web', import.meta.url));

function clientHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * Starts Subsecond: the stream registry, RTMP ingest/play, and the HTTP port with the API, pages and WebSocket
 * media. Accepts a full Config or overrides of the defaults (tests pass `{ http: { port: 0 }, … }`).
 */
export async function startServer(input: Config | ConfigInput = {}): Promise<RunningServer> {
  const config = resolveConfig(input as ConfigInput);
  setLogLevel(config.log.level);
  const log = rootLog;
  const startedAt = Date.now();
  const gopLimits = {
    maxItems: config.gop.maxFrames,
    maxBytes: config.gop.maxBytes,
    maxReplayMs: config.gop.maxReplayMs,
  };
  const registry = new StreamRegistry(gopLimits);
  registry.on('published', (s, { republished }) =>
    log.info(
      { path: s.path, protocol: s.publisher?.protocol, remote: s.publisher?.remoteAddress, republished },
      'stream published',
    ),
  );
  registry.on('unpublished', (s) => log.info({ path: s.path }, 'stream unpublished'));

  const control = new ControlAccess(config.auth.apiToken);
  // One verifier (and so one cached key set) for every protocol and messaging.
  const tokens = createTokenVerifier(config.auth);
  const play = new PlayPolicy(() => config.auth.play, tokens);
  const signer = new MediaUriSigner(config.auth.segmentSigningSecret, config.auth.segmentSignatureTtlSeconds);
  // Before any protocol: it installs the registry's resolver (edges pull what they do not have).
  // One id for this node in the registry and on the message bus.
  const nodeId = resolveNodeId(config.cluster.nodeId);
  const cluster = config.cluster.redis
    ? new ClusterNode({ config: { ...config.cluster, nodeId }, registry, gopLimits, log })
    : null;
  const mse = new MseServer({ registry, config: config.mse, gopLimits, log, play });
  const messaging = new MessagingServer({
    config: config.messaging,
    corsOrigin: config.http.corsOrigin,
    jwtSecret: config.auth.jwtSecret,
    tokens,
    log,
    // With a cluster, a stream's viewers on every live node.
    viewersOf: (path) =>
      cluster ? cluster.viewersAcrossNodes(path)?.total : registry.get(path)?.viewerCount,
    // cluster.redis: one id sequence, history and presence per channel across every node.
    bus: config.cluster.redis
      ? await connectRedisBus({
          url: config.cluster.redis,
          node: nodeId,
          limits: {
            maxMessages: config.messaging.historyMaxMessages,
            maxAgeMs: config.messaging.historyMaxAgeMs,
            maxBytes: config.messaging.historyMaxBytes,
            maxBytesTotal: config.messaging.maxHistoryBytesTotal,
          },
          log,
          commandTimeoutMs: config.cluster.redisCommandTimeoutMs,
        })
      : undefined,
  });
  registry.on('changed', (s) => messaging.messaging.hub.streamViewersChanged(s.path));
  cluster?.viewerTotals.onChanged((path) => messaging.messaging.hub.streamViewersChanged(path));
  const hls = config.hls.enabled
    ? new HlsServer({ registry, config: config.hls, gopLimits, log, play, signer })
    : null;
  const dash =
    hls && config.dash.enabled
      ? new DashServer({
          packagers: hls.packagers,
          targetLatencyMs: config.dash.targetLatencyMs,
          acquire: (path) => registry.acquire(path),
          access: hls,
        })
      : null;
  const webrtc = config.webrtc.enabled
    ? new WebRtcServer({
        engine: await WebRtcEngine.start(config.webrtc, log),
        registry,
        config: config.webrtc,
        authorizePublish: createPublishPolicy(config.auth, tokens),
        authorizePlay: play,
        log,
        control,
        // WHIP publishers are asked for a keyframe on the LL-HLS/LL-DASH segment cadence while frames are used.
        keyframeCadenceMs: config.hls.segmentTargetMs,
        // Messaging over the peers' data channels (label subsecond.messaging).
        dataChannels: new DataChannelServer(messaging.messaging),
        // webrtc.workers > 0: WHEP viewers served from worker processes too (more cores for one stream).
        workers:
          config.webrtc.workers > 0
            ? await WhepWorkers.start({ config: config.webrtc, registry, log })
            : undefined,
      })
    : null;

  const recordings = new Recordings({ config: config.record, registry, gopLimits, log });
  await recordings.start();

  const metrics = createMetrics(registry, mse, hls);
  if (webrtc?.workers) addWorkerMetrics(metrics, webrtc.workers);
  addRecordingMetrics(metrics, recordings);
  if (cluster) addClusterMetrics(metrics, cluster);
  let rtmp: RtmpServer | null = null;
  const http = createHttpServer({
    recordings,
    config,
    registry,
    mse,
    messaging,
    hls,
    dash,
    webrtc,
    cluster,
    log,
    webRoot: WEB_ROOT,
    startedAt,
    metrics,
    rtmpPort: () => (rtmp ? rtmp.address.port : 0),
    control,
    play,
  });

  if (config.rtmp.enabled) {
    rtmp = new RtmpServer({
      registry,
      host: config.rtmp.host,
      port: config.rtmp.port,
      chunkSize: config.rtmp.chunkSize,
      maxReassemblyBytes: config.rtmp.maxReassemblyBytes,
      authorizePublish: createPublishPolicy(config.auth, tokens),
      authorizePlay: play,
      log,
    });
  }

  try {
    await http.listen({ host: config.http.host, port: config.http.port });
    await rtmp?.listen();
  } catch (err) {
    await http.close().catch(() => {});
    await rtmp?.close().catch(() => {});
    hls?.close();
    await webrtc?.close();
    await cluster?.close();
    await recordings.close();
    throw new Error(`cannot start: ${(err as Error).message}`);
  }
  const httpPort = (http.server.address() as AddressInfo).port;
  const rtmpPort = rtmp ? rtmp.address.port : 0;
  const scheme = config.http.tlsCert && config.http.tlsKey ? 'https' : 'http';
  const httpUrl = `${scheme}://${clientHost(config.http.host)}:${httpPort}`;
  const rtmpUrl = rtmp ? `rtmp://${clientHost(config.rtmp.host)}:${rtmpPort}` : '';
  log.info(
    { http: httpUrl, rtmp: rtmpUrl || 'disabled', webrtcUdp: webrtc ? webrtc.engine.udpPort : 'disabled' },
    'Subsecond is listening',
  );

  if (cluster) {
    const publicUrl = config.cluster.publicUrl.replace(/\/+$/, '');
    const publicHost = publicUrl ? new URL(publicUrl).hostname : clientHost(config.http.host);
    await cluster.start({
      http: publicUrl || httpUrl,
      rtmp: rtmp ? `rtmp://${publicHost}:${rtmpPort}` : '',
      webrtcUdp: webrtc ? `${publicHost}:${webrtc.engine.udpPort}` : '',
    });
  }

  let closing: Promise<void> | null = null;
  return {
    config,
    registry,
    mse,
    messaging,
    hls,
    dash,
    rtmp,
    webrtc,
    cluster,
    recordings,
    httpUrl,
    rtmpUrl,
    httpPort,
    rtmpPort,
    close() {
      closing ??= (async () => {
        // First: the claims are released and the node leaves routing while its streams still flow.
        await cluster?.close();
        mse.close();
        await messaging.close();
        hls?.close();
        await webrtc?.close();
        await rtmp?.close();
        await recordings.close();
        await http.close();
      })();
      return closing;
    },
  };
}
