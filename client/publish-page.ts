/** The publish page (`/publish/{path}`): camera, screen or a test pattern over WHIP, with live stats. */
import { byId, element } from './dom.ts';
import { formatBitrate } from './format.ts';
import { type CaptureSource, captureMedia } from './publisher/capture.ts';
import { type PublisherStats, type PublishVideoCodec, WhipPublisher } from './publisher/WhipPublisher.ts';

declare global {
  interface Window {
    /** The page's publisher, for tests and the console. */
    subsecondPublisher?: WhipPublisher;
  }
}

const form = byId('controls', HTMLFormElement);
const source = byId('source', HTMLSelectElement);
const microphone = byId('microphone', HTMLInputElement);
const codec = byId('codec', HTMLSelectElement);
const bitrate = byId('bitrate', HTMLInputElement);
const token = byId('token', HTMLInputElement);
const startButton = byId('start', HTMLButtonElement);
const stopButton = byId('stop', HTMLButtonElement);
const preview = byId('preview', HTMLVideoElement);
const statsPanel = byId('stats', HTMLElement);
const stateLine = byId('state', HTMLElement);
const errorLine = byId('error', HTMLElement);
const watch = byId('watch', HTMLAnchorElement);
const title = byId('stream-path', HTMLElement);

const STAT_ROWS: [label: string, value: (s: PublisherStats) => string][] = [
  ['state', (s) => s.state],
  ['bitrate', (s) => formatBitrate(s.bitrate)],
  ['frame rate', (s) => `${s.framesPerSecond.toFixed(0)} fps`],
  ['resolution', (s) => (s.width ? `${s.width}×${s.height}` : '—')],
  ['codec', (s) => s.videoCodec || '—'],
  ['RTT', (s) => `${s.rttMs.toFixed(0)} ms`],
  ['packets lost', (s) => String(s.packetsLost)],
];
const statValues = STAT_ROWS.map(([label]) => {
  const value = element('dd');
  statsPanel.append(element('dt', {}, label), value);
  return value;
});

function showError(message: string): void {
  errorLine.textContent = message;
  errorLine.hidden = message === '';
}

function main(): void {
  const prefix = '/publish/';
  const path = location.pathname.startsWith(prefix)
    ? decodeURIComponent(location.pathname.slice(prefix.length)).replace(/\/+$/, '')
    : '';
  title.textContent = path || '(no stream)';
  document.title = path ? `Publish ${path} · Subsecond` : 'Subsecond';
  watch.href = `/play/${path}`;
  const params = new URLSearchParams(location.search);
  if (params.get('source')) source.value = params.get('source') ?? 'camera';
  if (params.get('codec')) codec.value = params.get('codec') ?? 'h264';
  let publisher: WhipPublisher | null = null;
  let media: MediaStream | null = null;
  let statsTimer: ReturnType<typeof setInterval> | null = null;

  const stop = async () => {
    if (statsTimer) clearInterval(statsTimer);
    statsTimer = null;
    await publisher?.stop();
    publisher = null;
    for (const track of media?.getTracks() ?? []) track.stop();
    media = null;
    preview.srcObject = null;
    startButton.disabled = false;
    stopButton.disabled = true;
  };

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void (async () => {
      showError('');
      startButton.disabled = true;
      try {
        media = await captureMedia(source.value as CaptureSource, microphone.checked);
        preview.srcObject = media;
        publisher = new WhipPublisher({
          path,
          token: token.value || undefined,
          videoCodec: codec.value as PublishVideoCodec,
          videoBitrate: Number(bitrate.value) * 1000,
        });
        window.subsecondPublisher = publisher;
        publisher.on('state', ({ state, reason }) => {
          stateLine.dataset.state = state === 'live' ? 'playing' : state;
          stateLine.textContent = state === 'live' ? 'live' : state;
          if (reason) showError(reason);
        });
        stopButton.disabled = false;
        await publisher.start(media);
        const current = publisher;
        statsTimer = setInterval(() => {
          void current.stats().then((stats) => {
            STAT_ROWS.forEach(([, value], i) => {
              statValues[i].textContent = value(stats);
            });
          });
        }, 1000);
      } catch (error) {
        showError((error as Error).message);
        await stop();
      }
    })();
  });
  stopButton.addEventListener('click', () => void stop());
  if (params.get('autostart') === '1') form.requestSubmit();
}

main();
