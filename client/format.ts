/** Display formatting shared by the pages. */

export interface TrackSummary {
  kind: string;
  codec: string;
  codecString?: string;
  width?: number;
  height?: number;
  sampleRate?: number;
  channels?: number;
}

const CODEC_NAMES: Record<string, string> = {
  h264: 'H.264',
  h265: 'H.265',
  hevc: 'H.265',
  av1: 'AV1',
  vp8: 'VP8',
  vp9: 'VP9',
  aac: 'AAC',
  opus: 'Opus',
  mp3: 'MP3',
};

export function codecName(codec: string): string {
  return CODEC_NAMES[codec.toLowerCase()] ?? codec.toUpperCase();
}

export function channelLayout(channels: number | undefined): string {
  if (channels === 1) return 'mono';
  if (channels === 2) return 'stereo';
  return channels ? `${channels} ch` : '';
}

/** `H.264 1280×720` or `AAC 48 kHz stereo`. */
export function describeTrack(track: TrackSummary): string {
  const parts = [codecName(track.codec)];
  if (track.kind === 'video' && track.width && track.height) parts.push(`${track.width}×${track.height}`);
  if (track.kind === 'audio') {
    if (track.sampleRate) parts.push(`${+(track.sampleRate / 1000).toFixed(1)} kHz`);
    const layout = channelLayout(track.channels);
    if (layout) parts.push(layout);
  }
  return parts.join(' ');
}

/** `1.23 Mb/s`, `850 kb/s`. */
export function formatBitrate(bitsPerSecond: number): string {
  if (!Number.isFinite(bitsPerSecond) || bitsPerSecond <= 0) return '—';
  if (bitsPerSecond >= 1e6) return `${(bitsPerSecond / 1e6).toFixed(2)} Mb/s`;
  return `${Math.round(bitsPerSecond / 1e3)} kb/s`;
}

/** `0:07`, `12:03`, `1:02:03`, `3d 4:05:06`. */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const days = Math.floor(total / 86400);
  const hours = Math.floor((total % 86400) / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = String(total % 60).padStart(2, '0');
  const clock =
    hours || days ? `${hours}:${String(minutes).padStart(2, '0')}:${seconds}` : `${minutes}:${seconds}`;
  return days ? `${days}d ${clock}` : clock;
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}

/** The URL path of a stream's player page; segments are already URL-safe, encoding is belt and braces. */
export function playPageHref(path: string): string {
  return `/play/${path.split('/').map(encodeURIComponent).join('/')}`;
}
