/** The publish page (`/publish/{path}`): camera, screen or a test pattern over WHIP, with live stats. */
import { byId, element } from './dom.ts';
import { formatBitrate } from './format.ts';
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

/** A moving test pattern and a 440 Hz tone: publishing without a camera (and in headless tests). */
function testPattern(withAudio: boolean): MediaStream {
  const canvas = element('canvas', { width: '1280', height: '720' });
  const g = canvas.getContext('2d');
  if (!g) throw new Error('this browser cannot draw on a canvas');
  let frame = 0;
  const draw = () => {
    frame++;
    g.fillStyle = `hsl(${(frame * 2) % 360} 70% 45%)`;
    g.fillRect(0, 0, 1280, 720);
    g.fillStyle = '#fff';
    g.font = 'bold 96px system-ui, sans-serif';
    g.fillText(new Date().toISOString().slice(11, 23), 200 + ((frame * 4) % 300), 400);
  };
  draw();
  setInterval(draw, 1000 / 30);
  const tracks = [...canvas.captureStream(30).getVideoTracks()];
  if (withAudio) {
    const audio = new AudioContext();
    const tone = audio.createOscillator();
    const destination = audio.createMediaStreamDestination();
    tone.frequency.value = 440;
    tone.connect(destination);
    tone.start();
    tracks.push(...destination.stream.getAudioTracks());
  }
  return new MediaStream(tracks);
}

async function capture(kind: string, withAudio: boolean): Promise<MediaStream> {
  if (kind === 'canvas') return testPattern(withAudio);
  if (kind === 'screen')
    return navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 30 }, audio: withAudio });
  return navigator.mediaDevices.getUserMedia({
    video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } },
    audio: withAudio,
  });
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
        media = await capture(source.value, microphone.checked);
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
