/**
 * probe.ts plus Subsecond's WebSocket+MSE counters read from inside the server: the delivery-delay histogram's
 * buckets (GET /api/v1/server gives only quantiles since start, which cannot be split into windows) and the
 * fragment counters. The MseServer instance is picked up on the first viewer's upgrade: one extra call per
 * join, nothing per frame.
 *
 * The server under test may be another checkout (run.ts --subsecond-root), so this reaches its classes by path
 * and relies only on the few members below, checked when patched, not on this checkout's types.
 */
import type { Socket } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { addProbeReader } from './probe.ts';
import { type SparseCounts, sparseCounts } from './stats.ts';

export interface MseProbe {
  viewers: number;
  delayCounts: SparseCounts;
  fragmentsSent: number;
  fragmentsDropped: number;
  skips: number;
  bytesSent: number;
}

/** What the probe reads from an MseServer. */
interface MseServerShape {
  sessions: { size: number };
  deliveryDelay: { counts: Uint32Array };
  counters: { fragmentsSent: number; fragmentsDropped: number; skips: number; bytesSent: number };
  handleUpgrade(...args: unknown[]): void;
}

/** What the experiments change on an MseSession: its socket writes and its per-fragment entry point. */
interface MseSessionShape {
  ws: { _socket?: Socket };
  write(item: unknown): void;
  onInit(init: unknown): void;
  /** Called per fragment: `onFragment` in older servers, `onItem` since the SharedFeed refactor. */
  onFragment?(fragment: { track: { kind: string } }): void;
  onItem?(fragment: { track: { kind: string } }): void;
}

type Prototype<T> = { prototype: T };

const root = process.env.FANOUT_SUBSECOND_ROOT || fileURLToPath(new URL('../..', import.meta.url));
async function load<T>(path: string, name: string): Promise<T> {
  const module = (await import(pathToFileURL(`${root}/${path}`).href)) as Record<string, unknown>;
  if (!module[name])
    throw new Error(`${root}/${path} exports no ${name}: the probe does not fit this server`);
  return module[name] as T;
}
const MseServer = await load<Prototype<MseServerShape>>('src/protocols/mse/MseServer.ts', 'MseServer');
const MseSession = await load<Prototype<MseSessionShape>>('src/protocols/mse/MseSession.ts', 'MseSession');

let mse: MseServerShape | null = null;
const handleUpgrade = MseServer.prototype.handleUpgrade;
MseServer.prototype.handleUpgrade = function (this: MseServerShape, ...args: unknown[]) {
  mse = this;
  return handleUpgrade.apply(this, args);
};

addProbeReader('mse', (): MseProbe | null =>
  mse ? { viewers: mse.sessions.size, delayCounts: sparseCounts(mse.deliveryDelay), ...mse.counters } : null,
);

/*
 * Experiments on the send path, measured without editing the server (`--experiment NAME` in run.ts sets
 * FANOUT_EXPERIMENT for the Subsecond process only). Each changes how many writev(2) calls a viewer costs:
 *
 * - cork-per-tick: cork a viewer's socket on its first fragment in an event-loop turn and uncork on the next
 *   tick, so fragments produced in the same turn (an RTMP read holding audio and video) go out in one writev.
 *   No added delay.
 * - audio-rides-video: hold a viewer's audio fragments until the next video fragment and send them together
 *   in one writev (at most 4 held). Audio waits up to one video frame interval; the delivery-delay histogram
 *   includes that wait because it is recorded when a fragment is written.
 */
const experiment = process.env.FANOUT_EXPERIMENT ?? '';
const session = MseSession.prototype;

if (experiment === 'cork-per-tick') {
  const write = session.write;
  const corked = new WeakSet<MseSessionShape>();
  session.write = function (this: MseSessionShape, item: unknown) {
    const socket = this.ws._socket;
    if (socket && !corked.has(this)) {
      corked.add(this);
      socket.cork();
      process.nextTick(() => {
        corked.delete(this);
        socket.uncork();
      });
    }
    write.call(this, item);
  };
} else if (experiment === 'audio-rides-video') {
  const entry = session.onItem ? 'onItem' : 'onFragment';
  const onFragment = session[entry];
  if (!onFragment) throw new Error('audio-rides-video needs MseSession.prototype.onItem or onFragment');
  const onInit = session.onInit;
  type Fragment = Parameters<typeof onFragment>[0];
  const held = new WeakMap<MseSessionShape, Fragment[]>();
  session.onInit = function (this: MseSessionShape, init: unknown) {
    held.get(this)?.splice(0);
    onInit.call(this, init);
  };
  session[entry] = function (this: MseSessionShape, fragment: Fragment) {
    let mine = held.get(this);
    if (!mine) {
      mine = [];
      held.set(this, mine);
    }
    if (fragment.track.kind === 'audio' && mine.length < 4) {
      mine.push(fragment);
      return;
    }
    const socket = this.ws._socket;
    socket?.cork();
    for (const f of mine) onFragment.call(this, f);
    mine.length = 0;
    onFragment.call(this, fragment);
    socket?.uncork();
  };
} else if (experiment) {
  throw new Error(`unknown FANOUT_EXPERIMENT "${experiment}": use cork-per-tick or audio-rides-video`);
}
