/**
 * A WHEP worker process (forked by WhepWorkers when `webrtc.workers` > 0): its own libdatachannel engine on its
 * own UDP port, WHEP sessions for the offers main hands it, fed from per-stream copies of main's feeds. Exits
 * when main says so or when main is gone (IPC disconnect).
 */
import { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { WebRtcConfig } from '../../../config/schema.ts';
import { log as rootLog, setLogLevel } from '../../../core/log.ts';
import { SdpError } from '../sdp.ts';
import { WebRtcEngine } from '../WebRtcEngine.ts';
import { WhepSession } from '../WhepSession.ts';
import type { FromWorker, ToWorker, WorkerStats } from './messages.ts';
import { RtpBatchReader, RtpChannelError } from './RtpChannel.ts';
import { WorkerFeed } from './WorkerFeed.ts';

/** The fd of the RTP socket pair: stdio[4] of the fork (0-2 standard, 3 the IPC channel). */
const RTP_CHANNEL_FD = 4;

let engine: WebRtcEngine | null = null;
let config: WebRtcConfig | null = null;
let index = -1;
let log = rootLog;
const feeds = new Map<number, WorkerFeed>();
const sessions = new Map<string, WhepSession>();
/** What closed sessions sent, so the totals in stats only grow. */
const closedTotals = { packets: 0, bytes: 0 };
let lastElu = performance.eventLoopUtilization();
let shuttingDown = false;

function send(message: FromWorker): void {
  if (process.connected) process.send?.(message);
}

const reader = new RtpBatchReader((feedId, kind, packet, sequence, timestamp, ssrc, keyframeStart) => {
  feeds.get(feedId)?.push(kind, packet, sequence, timestamp, ssrc, keyframeStart);
});

const channel = new Socket({ fd: RTP_CHANNEL_FD, readable: true, writable: false });
channel.on('data', (chunk: Buffer) => {
  try {
    reader.read(chunk);
  } catch (err) {
    if (!(err instanceof RtpChannelError)) throw err;
    // Out of step with main for good: exiting makes main drop this worker's viewers and start a fresh one.
    log.error({ err: err.message }, 'RTP channel from the main process is corrupt; worker exits');
    process.exit(1);
  }
});
channel.on('error', (err) => log.warn({ err: err.message }, 'RTP channel error'));

function sent(session: WhepSession): { packets: number; bytes: number } {
  let packets = 0;
  let bytes = 0;
  for (const out of Object.values(session.outgoing)) {
    packets += out.packets;
    bytes += out.octets;
  }
  return { packets, bytes };
}

async function offer(m: Extract<ToWorker, { type: 'offer' }>): Promise<void> {
  const feed = feeds.get(m.feedId);
  if (!engine || !config || !feed) {
    send({
      type: 'failed',
      requestId: m.requestId,
      status: 503,
      message: `stream "${m.path}" left the worker`,
    });
    return;
  }
  const own = engine;
  const session = new WhepSession(
    own,
    m.path,
    m.remoteAddress,
    {
      connectTimeoutMs: config.connectTimeoutMs,
      disconnectTimeoutMs: config.disconnectTimeoutMs,
      inactivityTimeoutMs: config.inactivityTimeoutMs,
    },
    log,
  );
  // Offers with a data channel stay in the main process (messaging lives there); nothing is served here.
  session.pc.onDataChannel((dc) => own.refuseDataChannel(session.pc, dc));
  session.onClose(() => {
    const totals = sent(session);
    closedTotals.packets += totals.packets;
    closedTotals.bytes += totals.bytes;
    if (sessions.delete(session.id))
      send({ type: 'closed', sessionId: session.id, reason: session.closedReason });
  });
  try {
    const chosen = new Map(m.summary.media.map((media, i) => [media.mid, m.chosen[i] ?? null]));
    const taken = session.setup(m.summary, feed, (media) => chosen.get(media.mid) ?? null);
    if (taken.length === 0) throw new SdpError(406, `the offer cannot receive stream "${m.path}"`);
    const answer = await session.answer(m.offer, m.clientIsLoopback);
    if (feeds.get(m.feedId) !== feed) throw new SdpError(400, `stream "${m.path}" ended while answering`);
    sessions.set(session.id, session);
    send({ type: 'answer', requestId: m.requestId, sessionId: session.id, etag: session.etag, answer });
  } catch (err) {
    session.close(`setup failed: ${(err as Error).message}`);
    send({
      type: 'failed',
      requestId: m.requestId,
      status: err instanceof SdpError ? err.status : 500,
      message: (err as Error).message,
    });
  }
}

function stats(): WorkerStats {
  const elu = performance.eventLoopUtilization(lastElu);
  lastElu = performance.eventLoopUtilization();
  const cpu = process.cpuUsage();
  let packets = closedTotals.packets;
  let bytes = closedTotals.bytes;
  for (const session of sessions.values()) {
    const totals = sent(session);
    packets += totals.packets;
    bytes += totals.bytes;
  }
  return {
    index,
    pid: process.pid,
    sessions: sessions.size,
    packetsSent: packets,
    bytesSent: bytes,
    packetsReceivedFromMain: reader.records,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    rssBytes: process.memoryUsage.rss(),
    eventLoopUtilization: Number(elu.utilization.toFixed(4)),
  };
}

async function shutdown(reason: string): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  for (const session of [...sessions.values()]) session.close(reason);
  for (const feed of feeds.values()) feed.finish(reason);
  feeds.clear();
  channel.destroy();
  await engine?.close();
  process.exit(0);
}

process.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'start':
      index = m.index;
      config = m.config;
      setLogLevel(m.logLevel);
      log = rootLog.child({ component: 'webrtc-worker', worker: index });
      WebRtcEngine.start({ ...m.config, udpPort: m.udpPort }, log).then(
        (started) => {
          engine = started;
          send({ type: 'ready', udpPort: started.udpPort });
        },
        (err: Error) => {
          log.error({ err: err.message }, 'WebRTC engine did not start in the worker');
          process.exit(1);
        },
      );
      break;
    case 'feed': {
      const feed = feeds.get(m.feedId);
      if (feed) feed.describe(m);
      else feeds.set(m.feedId, new WorkerFeed(m, config?.keyframeIntervalMs ?? 500, askKeyframe));
      break;
    }
    case 'anchor': {
      const feed = feeds.get(m.feedId);
      if (feed) feed.anchor = m.anchor;
      break;
    }
    case 'feedTracksChanged':
      feeds.get(m.feedId)?.tracksChanged();
      break;
    case 'feedEnd':
      endFeed(m.feedId, m.reason);
      break;
    case 'feedDrop':
      endFeed(m.feedId, 'no viewer of the stream is left on this worker');
      break;
    case 'offer':
      void offer(m);
      break;
    case 'trickle': {
      const session = sessions.get(m.sessionId);
      if (!session) {
        send({
          type: 'failed',
          requestId: m.requestId,
          status: 404,
          message: `no WHEP session ${m.sessionId}`,
        });
        break;
      }
      try {
        send({ type: 'trickled', requestId: m.requestId, ok: session.trickle(m.body, session.remoteUfrag) });
      } catch (err) {
        const status = err instanceof SdpError ? err.status : 500;
        send({ type: 'failed', requestId: m.requestId, status, message: (err as Error).message });
      }
      break;
    }
    case 'close':
      sessions.get(m.sessionId)?.close(m.reason);
      break;
    case 'describe':
      send({
        type: 'described',
        requestId: m.requestId,
        sessions: [...sessions.values()].map((s) => ({ ...s.describe(), worker: index })),
      });
      break;
    case 'stats':
      send({ type: 'stats', requestId: m.requestId, stats: stats() });
      break;
    case 'shutdown':
      void shutdown('server shutting down');
      break;
  }
});

/** Ends a feed and every session on it, also those not connected yet (not yet listening to the feed). */
function endFeed(feedId: number, reason: string): void {
  const feed = feeds.get(feedId);
  if (!feed) return;
  feeds.delete(feedId);
  feed.finish(reason);
  for (const session of [...sessions.values()]) if (session.feed === feed) session.close(reason);
}

function askKeyframe(feedId: number): void {
  send({ type: 'keyframe', feedId });
}

// Main is gone (it exited or crashed): nothing here can be reached any more.
process.on('disconnect', () => void shutdown('the main process is gone'));
