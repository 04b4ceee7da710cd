/**
 * The page that plays a peer server's stream with that peer's usual web player and measures it exactly as the
 * Subsecond player page does (LatencyMeter on the same video element). Bundled by BenchPages at bench start.
 *   /?player=mpegts&url=http://…/live/latency.flv   node-media-server's HTTP-FLV with mpegts.js
 *   /?player=hls&url=http://…/hls/latency.m3u8       nginx-rtmp's HLS with hls.js
 */
import Hls from 'hls.js';
import mpegtsModule from 'mpegts.js';
import { LatencyMeter } from '../../client/latency/LatencyMeter.ts';

const params = new URLSearchParams(location.search);
const player = params.get('player') ?? '';
const url = params.get('url') ?? '';
const video = document.querySelector('video') as HTMLVideoElement;
video.muted = true;
video.autoplay = true;
const status = document.getElementById('status') as HTMLElement;

/** The part of mpegts.js used here (its typings declare the default export as a namespace). */
interface MpegtsApi {
  createPlayer(
    source: { type: string; isLive: boolean; url: string },
    config: Record<string, unknown>,
  ): { attachMediaElement(video: HTMLVideoElement): void; load(): void; play(): Promise<void> | void };
}
const mpegts = mpegtsModule as unknown as MpegtsApi;

if (player === 'mpegts') {
  // The tight live tuning PEERS.md found steadier than the default (which only chases past 1 s).
  const p = mpegts.createPlayer(
    { type: 'flv', isLive: true, url },
    {
      enableStashBuffer: false,
      liveBufferLatencyChasing: true,
      liveBufferLatencyMaxLatency: 0.6,
      liveBufferLatencyMinRemain: 0.2,
      liveSync: true,
      liveSyncMaxLatency: 0.6,
      liveSyncTargetLatency: 0.3,
      liveSyncPlaybackRate: 1.2,
    },
  );
  p.attachMediaElement(video);
  p.load();
  void Promise.resolve(p.play()).catch(() => {});
} else if (player === 'hls') {
  const hls = new Hls({
    lowLatencyMode: false,
    liveSyncDurationCount: 1,
    liveMaxLatencyDurationCount: 3,
    maxLiveSyncPlaybackRate: 1.5,
    backBufferLength: 4,
  });
  hls.loadSource(url);
  hls.attachMedia(video);
  hls.on(Hls.Events.MANIFEST_PARSED, () => void video.play().catch(() => {}));
} else {
  status.textContent = `unknown player "${player}": use player=mpegts or player=hls`;
}
window.latencyTransport = player;
window.subsecondLatency = new LatencyMeter(video).start();
