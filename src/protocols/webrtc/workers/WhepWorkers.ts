import { type ChildProcess, fork } from 'node:child_process';
import type { Socket } from 'node:net';
import type { WebRtcConfig } from '../../../config/schema.ts';
import type { Logger } from '../../../core/log.ts';
import type { Stream } from '../../../core/Stream.ts';
import type { StreamRegistry } from '../../../core/StreamRegistry.ts';
import { HttpError } from '../../../transport/HttpError.ts';
import type { FeedKind, RtpFeed, RtpFeedListener } from '../RtpFeed.ts';
import { newResourceId } from '../resource.ts';
import type { ChosenCodec, OfferedMedia, OfferSummary } from '../sdp.ts';
import type { FeedClock } from '../WhepSession.ts';
import type { FromWorker, ToWorker, WorkerStats } from './messages.ts';
import { RtpBatchWriter } from './RtpChannel.ts';

/*
 * WHEP viewers served from worker processes, so that one stream's fan-out (SRTP and sends per viewer, the
 * bulk of a WHEP server's CPU) uses more than one core. Main keeps HTTP, WHIP, RTMP and the feeds; for each
 * media-only WHEP offer it picks the least-loaded worker, which answers with a peer on its own UDP port. A
 * watched feed's packets cross once per worker (RtpChannel.ts) and each worker fans them out to its viewers
 * with the same per-viewer header rewrite as main. Offers with a data channel stay in main, where messaging is.
 */

// From the npm package this module is inside dist/server.js, and the worker is bundled beside it
// (scripts/build-package.ts).
const WORKER_ENTRY = import.meta.url.endsWith('.ts')
  ? new URL('./worker.ts', import.meta.url)
  : new URL('./webrtc-worker.js', import.meta.url);
const START_TIMEOUT_MS = 10_000;
/** The worker gathers candidates (up to 2 s) before it answers. */
const OFFER_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 5_000;
const STOP_GRACE_MS = 3_000;
/** NTP↔RTP mappings go to workers this often; sender reports leave once a second. */
const ANCHOR_INTERVAL_MS = 500;
/** A worker that stops reading loses packets past this backlog rather than growing main's memory. */
const MAX_CHANNEL_BACKLOG_BYTES = 8 * 1024 * 1024;
const RESTART_MIN_MS = 250;
const RESTART_MAX_MS = 10_000;
/** A worker that ran this long before it died restarts at once again (the backoff is for crash loops). */
const STABLE_AFTER_MS = 30_000;
/** On-demand stats are reused for this long, so one metrics scrape asks each worker once. */
const STATS_REUSE_MS = 500;

type Reply = Exclude<FromWorker, { type: 'ready' | 'closed' | 'keyframe' }>;
/** A request to a worker, before WorkerProcess.request numbers it. */
type Request = ToWorker extends infer M
  ? M extends { requestId: number }
    ? Omit<M, 'requestId'>
    : never
  : never;

/** One forked worker: its IPC requests, its RTP channel, the sessions main knows it serves. */
class WorkerProcess {
  readonly index: number;
  /** Configured, or learned from the first start (port 0), so a restarted worker keeps its port. */
  udpPort: number;
  child: ChildProcess | null = null;
  writer: RtpBatchWriter | null = null;
  ready = false;
  /** Bumped on every start: a reply from an earlier child is stale. */
  generation = 0;
  pendingOffers = 0;
  restarts = 0;
  startedAt = 0;
  consecutiveCrashes = 0;
  readonly sessions = new Set<RemoteWhepSession>();
  readonly #requests = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  #nextRequest = 1;

  constructor(index: number, udpPort: number) {
    this.index = index;
    this.udpPort = udpPort;
  }

  get load(): number {
    return this.sessions.size + this.pendingOffers;
  }

  send(message: ToWorker): void {
    if (this.child?.connected) this.child.send(message);
  }

  request(message: Request, timeoutMs: number): Promise<Reply> {
    if (!this.child?.connected)
      return Promise.reject(new HttpError(503, `WHEP worker ${this.index} is down`));
    const requestId = this.#nextRequest++;
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#requests.delete(requestId);
        reject(new HttpError(503, `WHEP worker ${this.index} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#requests.set(requestId, {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child?.send({ ...message, requestId } as ToWorker);
    });
  }

  settle(reply: Reply): void {
    const pending = this.#requests.get(reply.requestId);
    if (!pending) return;
    this.#requests.delete(reply.requestId);
    if (reply.type === 'failed') pending.reject(new HttpError(reply.status, reply.message));
    else pending.resolve(reply);
  }

  failPending(reason: string): void {
    for (const pending of this.#requests.values()) pending.reject(new HttpError(503, reason));
    this.#requests.clear();
  }
}

/** A WHEP resource served by a worker, as main routes it (PATCH, DELETE) and counts it on its stream. */
export class RemoteWhepSession {
  readonly kind = 'whep' as const;
  readonly id: string;
  /** The capability in the resource URL, minted here: the worker's session id is listed, this never is. */
  readonly resource = newResourceId();
  readonly etag: string;
  readonly path: string;
  readonly worker: WorkerProcess;
  readonly fanout: WorkerFanout;
  readonly #owner: WhepWorkers;
  readonly release: () => void;

  constructor(
    owner: WhepWorkers,
    reply: { sessionId: string; etag: string },
    path: string,
    worker: WorkerProcess,
    fanout: WorkerFanout,
    release: () => void,
  ) {
    this.#owner = owner;
    this.id = reply.sessionId;
    this.etag = reply.etag;
    this.path = path;
    this.worker = worker;
    this.fanout = fanout;
    this.release = release;
  }

  /** RFC 9725 §4.3.1 trickle, applied by the worker; false for an ICE restart, as WebRtcSession.trickle. */
  async trickle(body: string, _remoteUfrag: string): Promise<boolean> {
    const reply = await this.worker.request(
      { type: 'trickle', sessionId: this.id, body },
      REQUEST_TIMEOUT_MS,
    );
    return reply.type === 'trickled' && reply.ok;
  }

  close(reason: string): void {
    this.#owner.closeSession(this, reason, true);
  }
}

/** The one listener a watched feed has for all workers: each packet is queued once per worker. */
class WorkerFanout implements RtpFeedListener {
  readonly feedId: number;
  readonly feed: RtpFeed & FeedClock;
  /** Viewers per worker. */
  readonly workers = new Map<WorkerProcess, number>();
  ended = false;
  #writers: RtpBatchWriter[] = [];
  #removeListener: (() => void) | null = null;
  readonly #onEnded: (fanout: WorkerFanout) => void;

  constructor(feedId: number, feed: RtpFeed & FeedClock, onEnded: (fanout: WorkerFanout) => void) {
    this.feedId = feedId;
    this.feed = feed;
    this.#onEnded = onEnded;
  }

  attach(): void {
    this.#removeListener = this.feed.addListener(this);
  }

  detach(): void {
    this.#removeListener?.();
    this.#removeListener = null;
  }

  description() {
    return {
      feedId: this.feedId,
      path: this.feed.path,
      video: this.feed.video,
      audio: this.feed.audio,
      anchor: this.feed.anchor,
    };
  }

  /** One more viewer on `worker`; its copy of the feed is described (again: tracks may have changed). */
  join(worker: WorkerProcess): void {
    worker.send({ type: 'feed', ...this.description() });
    this.workers.set(worker, (this.workers.get(worker) ?? 0) + 1);
    this.#refresh();
  }

  /** Returns true when no worker is left. */
  leave(worker: WorkerProcess, workerAlive: boolean): boolean {
    const n = (this.workers.get(worker) ?? 0) - 1;
    if (n > 0) {
      this.workers.set(worker, n);
      return false;
    }
    this.workers.delete(worker);
    this.#refresh();
    if (workerAlive && !this.ended) worker.send({ type: 'feedDrop', feedId: this.feedId });
    return this.workers.size === 0;
  }

  onRtp(
    kind: FeedKind,
    packet: Buffer,
    sequence: number,
    timestamp: number,
    ssrc: number,
    keyframeStart: boolean,
  ): void {
    const writers = this.#writers;
    for (let i = 0; i < writers.length; i++) {
      writers[i].push(this.feedId, kind, packet, sequence, timestamp, ssrc, keyframeStart);
    }
  }

  onTracksChanged(): void {
    for (const worker of this.workers.keys()) worker.send({ type: 'feedTracksChanged', feedId: this.feedId });
  }

  onEnd(reason: string): void {
    this.ended = true;
    this.#removeListener = null;
    // The workers close their viewers and report each closed: main's records go with those reports.
    for (const worker of this.workers.keys()) worker.send({ type: 'feedEnd', feedId: this.feedId, reason });
    this.#onEnded(this);
  }

  #refresh(): void {
    this.#writers = [...this.workers.keys()].flatMap((w) => (w.writer ? [w.writer] : []));
  }
}

export interface WorkerPlayRequest {
  readonly path: string;
  readonly remoteAddress: string;
  readonly clientIsLoopback: boolean;
  readonly offer: string;
  readonly summary: OfferSummary;
  readonly stream: Stream;
  readonly feed: RtpFeed & FeedClock;
  /** main's codec choice for an m-section (the worker answers with exactly these). */
  readonly pick: (media: OfferedMedia) => ChosenCodec | null;
}

/** The worker processes of `webrtc.workers`, and main's side of every WHEP session they serve. */
export class WhepWorkers {
  readonly #config: WebRtcConfig;
  readonly #registry: StreamRegistry;
  readonly #log: Logger;
  readonly #workers: WorkerProcess[];
  readonly #sessions = new Map<string, RemoteWhepSession>();
  readonly #byResource = new Map<string, RemoteWhepSession>();
  readonly #fanouts = new Map<RtpFeed, WorkerFanout>();
  #nextFeedId = 1;
  #closed = false;
  /** Told the resource capability of every session that ends (WebRtcServer answers a late DELETE for it with 200). */
  onSessionEnded: ((resource: string) => void) | null = null;
  readonly #anchors: NodeJS.Timeout;
  #stats: { at: number; value: Promise<WorkerStats[]> } | null = null;

  private constructor(config: WebRtcConfig, registry: StreamRegistry, log: Logger) {
    this.#config = config;
    this.#registry = registry;
    this.#log = log.child({ component: 'webrtc-workers' });
    this.#workers = Array.from(
      { length: config.workers },
      (_, i) => new WorkerProcess(i, workerUdpPort(config, i)),
    );
    this.#anchors = setInterval(() => this.#sendAnchors(), ANCHOR_INTERVAL_MS);
    this.#anchors.unref();
  }

  /** Forks `config.workers` workers and waits until each has its engine up. */
  static async start(options: {
    config: WebRtcConfig;
    registry: StreamRegistry;
    log: Logger;
  }): Promise<WhepWorkers> {
    const workers = new WhepWorkers(options.config, options.registry, options.log);
    try {
      await Promise.all(workers.#workers.map((w) => workers.#start(w)));
    } catch (err) {
      await workers.close();
      throw new Error(`WHEP workers did not start: ${(err as Error).message}`);
    }
    return workers;
  }

  get sessions(): ReadonlyMap<string, RemoteWhepSession> {
    return this.#sessions;
  }

  /** UDP ports the workers' peers use, by worker index. */
  get udpPorts(): number[] {
    return this.#workers.map((w) => w.udpPort);
  }

  /** Whether a worker serves this offer: it has no data channel (messaging is in main) and a worker is up. */
  takes(summary: OfferSummary): boolean {
    return !this.#closed && summary.dataMid === null && this.#workers.some((w) => w.ready);
  }

  /** The WHEP session at resource URL segment `resource` when a worker serves it. */
  session(kind: string, resource: string): RemoteWhepSession | undefined {
    return kind === 'whep' ? this.#byResource.get(resource) : undefined;
  }

  /** Offers to the least-loaded worker; one that dies meanwhile passes the offer to the next one up. */
  async play(request: WorkerPlayRequest): Promise<{ session: RemoteWhepSession; answer: string }> {
    for (let attempt = 0; ; attempt++) {
      const worker = this.#leastLoaded();
      if (!worker) throw new HttpError(503, 'no WHEP worker is up; try again in a moment');
      const generation = worker.generation;
      try {
        return await this.#playOn(worker, request);
      } catch (err) {
        const died = worker.generation !== generation || !worker.ready;
        if (!died || attempt + 1 >= this.#workers.length) throw err;
        this.#log.warn(
          { worker: worker.index, path: request.path },
          'WHEP worker died answering; next worker',
        );
      }
    }
  }

  async #playOn(
    worker: WorkerProcess,
    request: WorkerPlayRequest,
  ): Promise<{ session: RemoteWhepSession; answer: string }> {
    const generation = worker.generation;
    let fanout = this.#fanouts.get(request.feed);
    if (!fanout) {
      fanout = new WorkerFanout(this.#feedId(), request.feed, (ended) => this.#fanouts.delete(ended.feed));
      this.#fanouts.set(request.feed, fanout);
      fanout.attach();
    }
    fanout.join(worker);
    worker.pendingOffers++;
    let reply: Reply;
    try {
      reply = await worker.request(
        {
          type: 'offer',
          feedId: fanout.feedId,
          path: request.path,
          remoteAddress: request.remoteAddress,
          clientIsLoopback: request.clientIsLoopback,
          offer: request.offer,
          summary: request.summary,
          chosen: request.summary.media.map(request.pick),
        },
        OFFER_TIMEOUT_MS,
      );
      if (reply.type !== 'answer') throw new HttpError(500, `WHEP worker replied ${reply.type} to an offer`);
      if (worker.generation !== generation || this.#closed) {
        throw new HttpError(503, `WHEP worker ${worker.index} went away while answering`);
      }
      if (fanout.ended) {
        worker.send({ type: 'close', sessionId: reply.sessionId, reason: 'the stream ended' });
        throw new HttpError(404, `stream "${request.path}" ended while answering`);
      }
    } catch (err) {
      this.#leave(fanout, worker, worker.generation === generation);
      throw err;
    } finally {
      worker.pendingOffers--;
    }
    const uncount = request.stream.addViewer('whep');
    const stream = request.stream;
    const session = new RemoteWhepSession(this, reply, request.path, worker, fanout, () => {
      uncount();
      this.#registry.release(stream);
    });
    this.#sessions.set(session.id, session);
    this.#byResource.set(session.resource, session);
    worker.sessions.add(session);
    this.#log.info(
      { path: request.path, session: session.id, remote: request.remoteAddress, worker: worker.index },
      'WHEP viewer offered to a worker',
    );
    return { session, answer: reply.answer };
  }

  /** Frees main's side of a session; `tellWorker` when the worker did not end it itself. */
  closeSession(session: RemoteWhepSession, reason: string, tellWorker: boolean): void {
    if (this.#sessions.get(session.id) !== session) return;
    this.#sessions.delete(session.id);
    this.#byResource.delete(session.resource);
    session.worker.sessions.delete(session);
    if (tellWorker) session.worker.send({ type: 'close', sessionId: session.id, reason });
    this.#leave(session.fanout, session.worker, tellWorker);
    session.release();
    this.onSessionEnded?.(session.resource);
  }

  /** Every worker's sessions as WebRtcSession.describe() has them, plus `worker`. */
  async describe(): Promise<Record<string, unknown>[]> {
    const lists = await Promise.all(
      this.#workers.map(async (worker) => {
        try {
          const reply = await worker.request({ type: 'describe' }, REQUEST_TIMEOUT_MS);
          return reply.type === 'described' ? reply.sessions : [];
        } catch {
          // Down or slow: main still knows which sessions it routes there.
          return [...worker.sessions].map((s) => ({
            id: s.id,
            kind: s.kind,
            path: s.path,
            state: 'unknown',
            worker: worker.index,
          }));
        }
      }),
    );
    return lists.flat();
  }

  /** Each running worker's counters and resource use, asked on demand (metrics, benchmarks). */
  stats(): Promise<WorkerStats[]> {
    const now = performance.now();
    if (this.#stats && now - this.#stats.at < STATS_REUSE_MS) return this.#stats.value;
    const value = Promise.all(
      this.#workers.map((worker) =>
        worker
          .request({ type: 'stats' }, REQUEST_TIMEOUT_MS)
          .then((r) => (r.type === 'stats' ? r.stats : null))
          .catch(() => null),
      ),
    ).then((all) => all.filter((s): s is WorkerStats => s !== null));
    this.#stats = { at: now, value };
    return value;
  }

  /** Restarts after crashes, and packets main dropped because a worker did not keep up, per worker. */
  counters(): { index: number; restarts: number; droppedPackets: number; ready: boolean }[] {
    return this.#workers.map((w) => ({
      index: w.index,
      restarts: w.restarts,
      droppedPackets: w.writer?.dropped ?? 0,
      ready: w.ready,
    }));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#anchors);
    for (const session of [...this.#sessions.values()])
      this.closeSession(session, 'server shutting down', false);
    for (const fanout of this.#fanouts.values()) fanout.detach();
    this.#fanouts.clear();
    await Promise.all(this.#workers.map((w) => this.#stop(w)));
  }

  #leastLoaded(): WorkerProcess | null {
    let best: WorkerProcess | null = null;
    for (const worker of this.#workers) {
      if (worker.ready && (!best || worker.load < best.load)) best = worker;
    }
    return best;
  }

  #feedId(): number {
    const used = new Set([...this.#fanouts.values()].map((f) => f.feedId));
    for (let i = 0; i < 0xffff; i++) {
      const id = this.#nextFeedId;
      this.#nextFeedId = (this.#nextFeedId % 0xffff) + 1;
      if (!used.has(id)) return id;
    }
    throw new HttpError(503, 'every WHEP worker feed id is in use');
  }

  #leave(fanout: WorkerFanout, worker: WorkerProcess, workerAlive: boolean): void {
    if (fanout.leave(worker, workerAlive) && !fanout.ended) {
      fanout.detach();
      this.#fanouts.delete(fanout.feed);
    }
  }

  #sendAnchors(): void {
    for (const fanout of this.#fanouts.values()) {
      for (const worker of fanout.workers.keys()) {
        worker.send({ type: 'anchor', feedId: fanout.feedId, anchor: fanout.feed.anchor });
      }
    }
  }

  #start(worker: WorkerProcess): Promise<void> {
    worker.generation++;
    const generation = worker.generation;
    const child = fork(WORKER_ENTRY, [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc', 'pipe'],
      // Not the parent's --import/--test flags (a benchmark probe, the test runner): only heap sizing.
      execArgv: process.execArgv.filter((a) => /^--max-(semi|old)-space-size/.test(a)),
    });
    worker.child = child;
    worker.startedAt = performance.now();
    const channel = child.stdio[4] as Socket;
    // A worker that dies leaves writes failing with EPIPE: its 'exit' is what is handled.
    channel.on('error', () => {});
    worker.writer = new RtpBatchWriter(channel, MAX_CHANNEL_BACKLOG_BYTES);
    const started = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`worker ${worker.index} not ready within ${START_TIMEOUT_MS} ms`)),
        START_TIMEOUT_MS,
      );
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`worker ${worker.index} exited at start (${signal ?? `code ${code}`})`));
      });
      child.on('message', (m: FromWorker) => {
        if (m.type !== 'ready') return;
        clearTimeout(timer);
        worker.udpPort = m.udpPort;
        worker.ready = true;
        resolve();
      });
    });
    child.on('message', (m: FromWorker) => this.#onMessage(worker, m));
    child.on('exit', (code, signal) => this.#onExit(worker, generation, code, signal));
    child.send({
      type: 'start',
      index: worker.index,
      config: this.#config,
      udpPort: worker.udpPort,
      logLevel: this.#log.level,
    } satisfies ToWorker);
    return started.then(() => {
      this.#log.info(
        { worker: worker.index, pid: child.pid, udpPort: worker.udpPort },
        'WHEP worker started',
      );
    });
  }

  #onMessage(worker: WorkerProcess, m: FromWorker): void {
    switch (m.type) {
      case 'ready':
        return;
      case 'closed': {
        const session = this.#sessions.get(m.sessionId);
        if (session && session.worker === worker) this.closeSession(session, m.reason, false);
        return;
      }
      case 'keyframe':
        for (const fanout of this.#fanouts.values()) {
          if (fanout.feedId === m.feedId) fanout.feed.requestKeyframe();
        }
        return;
      default:
        worker.settle(m);
    }
  }

  #onExit(
    worker: WorkerProcess,
    generation: number,
    code: number | null,
    signal: NodeJS.Signals | null,
  ): void {
    if (worker.generation !== generation) return;
    worker.ready = false;
    worker.child = null;
    worker.writer = null;
    worker.failPending(`WHEP worker ${worker.index} exited`);
    const dropped = [...worker.sessions];
    for (const session of dropped) this.closeSession(session, `WHEP worker ${worker.index} exited`, false);
    if (this.#closed) return;
    const ranFor = performance.now() - worker.startedAt;
    worker.consecutiveCrashes = ranFor > STABLE_AFTER_MS ? 1 : worker.consecutiveCrashes + 1;
    const delay = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** (worker.consecutiveCrashes - 1));
    this.#log.error(
      { worker: worker.index, code, signal, viewersDropped: dropped.length, restartInMs: delay },
      'WHEP worker exited; its viewers were dropped and it restarts',
    );
    const timer = setTimeout(() => {
      if (this.#closed) return;
      worker.restarts++;
      this.#start(worker).catch((err: Error) => {
        this.#log.error({ worker: worker.index, err: err.message }, 'WHEP worker restart failed');
      });
    }, delay);
    timer.unref();
  }

  async #stop(worker: WorkerProcess): Promise<void> {
    const child = worker.child;
    worker.ready = false;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    worker.send({ type: 'shutdown' });
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }
}

/** `webrtc.workerUdpPorts[i]`, else the port after the main one (`udpPort + i + 1`); 0 stays 0 (a free one). */
export function workerUdpPort(config: WebRtcConfig, i: number): number {
  const listed = config.workerUdpPorts[i];
  if (listed !== undefined) return listed;
  return config.udpPort === 0 ? 0 : config.udpPort + i + 1;
}
