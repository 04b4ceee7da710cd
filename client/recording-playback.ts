/**
 * A past range of a stream on the player page (`/play/{path}?start=ISO&duration=S`): hls.js over the
 * server's VOD playlist of the recorded files (`/recordings/{path}/index.m3u8`), starting at `start` exactly.
 */
import type Hls from 'hls.js';
import { lazyLibrary, streamUrl } from './player/transport/LibraryTransport.ts';

type HlsClass = typeof Hls;
const loadHls = lazyLibrary('hlsjs.js', (m) => (m as { default: HlsClass }).default);

declare global {
  interface Window {
    /** The recorded range being played, for tests and the console. */
    subsecondRecording?: { hls: Hls; playlist: string; errors: string[]; fatal: string[] };
  }
}

export function recordingPlaylistUrl(path: string, start: string, duration: string | null): string {
  const url = new URL(streamUrl(location.href, 'recordings', path, 'index.m3u8'));
  url.searchParams.set('start', start);
  if (duration) url.searchParams.set('duration', duration);
  return url.href;
}

/** Plays the range; errors that stop playback are shown through `showError`. */
export async function playRecording(
  video: HTMLVideoElement,
  path: string,
  params: URLSearchParams,
  showError: (message: string) => void,
  showState: (text: string) => void,
): Promise<void> {
  const playlist = recordingPlaylistUrl(path, params.get('start') ?? '', params.get('duration'));
  const check = await fetch(playlist);
  if (!check.ok) {
    const body = (await check.json().catch(() => ({}))) as { error?: string };
    showError(body.error ?? `recording playlist: HTTP ${check.status}`);
    return;
  }
  const HlsLibrary = await loadHls();
  const hls = new HlsLibrary({ lowLatencyMode: false, startPosition: -1 });
  const errors: string[] = [];
  const fatal: string[] = [];
  window.subsecondRecording = { hls, playlist, errors, fatal };
  hls.on(HlsLibrary.Events.ERROR, (_event, data) => {
    errors.push(
      `${data.type}: ${data.details}${data.frag ? ` (segment ${data.frag.sn})` : ''}${data.error ? `: ${data.error.message}` : ''}`,
    );
    if (!data.fatal) return;
    fatal.push(data.details);
    showError(`playback failed: ${data.details}`);
  });
  hls.on(HlsLibrary.Events.MANIFEST_PARSED, () => {
    showState('recording');
    void video.play().catch(() => {});
  });
  video.controls = true;
  hls.loadSource(playlist);
  hls.attachMedia(video);
}
