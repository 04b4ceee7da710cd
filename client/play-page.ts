/** The player page (`/play/{path}`): one stream, its state, and live stats. */
import { mountChat } from './chat-panel.ts';
import { byId, element } from './dom.ts';
import { formatBitrate, formatBytes } from './format.ts';
import { LatencyMeter } from './latency/LatencyMeter.ts';
import type { SubsecondChannel } from './messaging/index.ts';
import {
  type PlayerError,
  PlayerEvent,
  type PlayerStats,
  type StateChange,
  SubsecondPlayer,
  TRANSPORTS,
  type TransportKind,
} from './player/index.ts';
import { playRecording } from './recording-playback.ts';
import { MessagingPeer } from './webrtc/MessagingPeer.ts';

declare global {
  interface Window {
    /** The page's player, for tests and the console. */
    subsecondPlayer?: SubsecondPlayer;
    /** Every error the player reported, oldest first. */
    subsecondErrors?: PlayerError[];
    /** Glass-to-glass latency read from time-stamped frames (`subsecond bench latency` reads it). */
    subsecondLatency?: LatencyMeter;
    /** The stream's chat beside the player. */
    subsecondPlayerChat?: SubsecondChannel;
  }
}

const video = byId('video', HTMLVideoElement);
const stateLine = byId('state', HTMLElement);
const unmute = byId('unmute', HTMLButtonElement);
const statsPanel = byId('stats', HTMLElement);
const statsToggle = byId('stats-toggle', HTMLButtonElement);
const errorLine = byId('error', HTMLElement);
const title = byId('stream-path', HTMLElement);

const STATE_TEXT: Record<StateChange['state'], string> = {
  connecting: 'connecting…',
  playing: 'live',
  'waiting-for-publisher': 'waiting for publisher…',
  reconnecting: 'reconnecting…',
  stopped: 'stopped',
};

/** How long the chat waits for the player to play before it opens without the WebRTC session. */
const CHAT_WAIT_MS = 3000;

function streamPathFromLocation(): string {
  const prefix = '/play/';
  const pathname = location.pathname;
  if (!pathname.startsWith(prefix)) return '';
  return decodeURIComponent(pathname.slice(prefix.length)).replace(/\/+$/, '');
}

function showError(message: string): void {
  errorLine.textContent = message;
  errorLine.hidden = false;
}

/** Shows the state; while reconnecting, counts down to the next attempt. */
let countdown: ReturnType<typeof setInterval> | null = null;
function showState(change: StateChange): void {
  if (countdown) clearInterval(countdown);
  countdown = null;
  stateLine.dataset.state = change.state;
  if (change.state === 'playing') errorLine.hidden = true;
  if (change.state !== 'reconnecting' || change.retryInMs === undefined) {
    stateLine.textContent = STATE_TEXT[change.state];
    return;
  }
  const retryAt = performance.now() + change.retryInMs;
  const reason = change.reason ? `${change.reason} — ` : '';
  const update = () => {
    const left = Math.max(0, retryAt - performance.now());
    stateLine.textContent =
      left > 0 ? `${reason}reconnecting in ${(left / 1000).toFixed(1)} s` : 'reconnecting…';
    if (left === 0 && countdown) clearInterval(countdown);
  };
  update();
  countdown = setInterval(update, 100);
}

const STAT_ROWS: [label: string, value: (s: PlayerStats) => string][] = [
  ['transport', (s) => s.transport ?? '—'],
  ['latency', (s) => `${s.latency.toFixed(2)} s`],
  ['buffer', (s) => `${s.bufferAhead.toFixed(2)} s (target ${s.targetBuffer.toFixed(2)})`],
  ['rate', (s) => `${s.playbackRate.toFixed(2)}×`],
  ['resolution', (s) => (s.width ? `${s.width}×${s.height}` : '—')],
  ['codecs', (s) => s.codecs || '—'],
  ['bitrate', (s) => formatBitrate(s.bitrate)],
  ['received', (s) => formatBytes(s.bytesReceived)],
  ['frames', (s) => `${s.decodedFrames} decoded, ${s.droppedFrames} dropped`],
  ['skipped', (s) => String(s.skippedFrames)],
  ['recoveries', (s) => `${s.liveSeeks} seeks, ${s.stallRecoveries} nudges`],
  ['underruns', (s) => String(s.underruns)],
  ['reconnects', (s) => String(s.reconnects)],
  ['jitter buffer', (s) => (s.webrtc ? `${s.webrtc.jitterBufferMs.toFixed(0)} ms` : '—')],
  ['lost / NACKs', (s) => (s.webrtc ? `${s.webrtc.packetsLost} / ${s.webrtc.nacks}` : '—')],
  ['freezes', (s) => (s.webrtc ? String(s.webrtc.freezes) : '—')],
  ['RTT', (s) => (s.webrtc ? `${s.webrtc.rttMs.toFixed(0)} ms` : '—')],
  [
    'source → playout',
    (s) => (s.webrtc?.senderToPlayoutMs != null ? `${s.webrtc.senderToPlayoutMs.toFixed(0)} ms` : '—'),
  ],
];

const statValues = STAT_ROWS.map(([label]) => {
  const value = element('dd');
  statsPanel.append(element('dt', {}, label), value);
  return value;
});
const glassValue = element('dd');
statsPanel.append(element('dt', {}, 'glass-to-glass'), glassValue);

function showStats(player: SubsecondPlayer, meter: LatencyMeter | null): void {
  const stats = player.stats();
  STAT_ROWS.forEach(([, value], i) => {
    statValues[i].textContent = value(stats);
  });
  // Measured from the time stamp in the picture when the source carries one, else the buffer's estimate.
  const measured = meter?.recentMedian() ?? null;
  glassValue.textContent =
    measured !== null
      ? `${Math.round(measured)} ms (measured)`
      : `~${stats.latency.toFixed(2)} s (estimated)`;
}

/** The button offers what the browser's autoplay policy held back: sound, or playback itself. */
function showPlaybackButton(): void {
  const blocked = video.paused && video.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA;
  unmute.hidden = !blocked && !video.muted;
  unmute.textContent = blocked ? 'Play' : 'Unmute';
}

function main(): void {
  const path = streamPathFromLocation();
  title.textContent = path || '(no stream)';
  document.title = path ? `${path} · Subsecond` : 'Subsecond';
  // ?start=: a past range, played from the recordings instead of live.
  if (new URLSearchParams(location.search).has('start')) {
    void playRecording(video, path, new URLSearchParams(location.search), showError, (text) => {
      stateLine.dataset.state = 'playing';
      stateLine.textContent = text;
    });
    return;
  }
  const requested = new URLSearchParams(location.search).get('transport') ?? 'auto';
  const kinds = TRANSPORTS.map((factory) => factory.kind);
  const transport =
    requested === 'auto' ? 'auto' : kinds.find((kind): kind is TransportKind => kind === requested);
  if (!transport) {
    showError(`unknown transport "${requested}": use ?transport=auto or one of ${kinds.join(', ')}`);
    return;
  }
  let player: SubsecondPlayer;
  // A WHEP session carries the chat on its data channel (docs/protocols/messaging.md).
  const messaging = new MessagingPeer();
  try {
    // ?token= in the page URL: a token granting play on the path (auth.play: token).
    const token = new URLSearchParams(location.search).get('token') ?? undefined;
    player = new SubsecondPlayer(video, { path, transport, messaging, ...(token ? { token } : {}) });
  } catch (error) {
    showError((error as Error).message);
    return;
  }
  const errors: PlayerError[] = [];
  window.subsecondPlayer = player;
  window.subsecondErrors = errors;
  player.on(PlayerEvent.State, showState);
  player.on(PlayerEvent.Error, (error) => {
    errors.push(error);
    showError(error.message);
  });

  unmute.addEventListener('click', () => {
    video.muted = false;
    void video.play().catch(() => {});
  });
  for (const name of ['volumechange', 'play', 'pause', 'playing', 'loadeddata'] as const)
    video.addEventListener(name, showPlaybackButton);
  statsToggle.addEventListener('click', () => {
    statsPanel.hidden = !statsPanel.hidden;
    statsToggle.setAttribute('aria-pressed', String(!statsPanel.hidden));
  });
  const meter =
    LatencyMeter.isSupported() && new URLSearchParams(location.search).get('latency') !== '0'
      ? new LatencyMeter(video).start()
      : null;
  if (meter) window.subsecondLatency = meter;
  setInterval(() => showStats(player, meter), 500);
  player.start();
  showStats(player, meter);
  // The stream's chat and reactions, beside the video (messaging: docs/protocols/messaging.md).
  // Over the player's WebRTC session when it has one: the chat opens once the player plays (or after
  // CHAT_WAIT_MS without a picture, over WebSocket), so it does not wait on a session that never comes.
  let chatMounted = false;
  const mount = () => {
    if (chatMounted) return;
    chatMounted = true;
    const peer = player.transport === 'webrtc' && messaging.available ? { peer: messaging } : {};
    window.subsecondPlayerChat = mountChat(byId('chat', HTMLElement), `${path}:chat`, { since: 0, ...peer });
  };
  player.on(PlayerEvent.State, (change) => {
    if (change.state === 'playing') mount();
  });
  setTimeout(mount, CHAT_WAIT_MS);
}

main();
