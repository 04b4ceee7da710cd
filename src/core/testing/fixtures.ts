import type { Frame, Track } from '../../media/Frame.ts';
import type { Publisher } from '../Stream.ts';

/* Tracks, frames and publishers for the core's unit tests: plain data, no media behind them. */

export const video: Track = {
  id: 1,
  kind: 'video',
  codec: 'h264',
  timescale: 90000,
  config: new Uint8Array(),
  codecString: 'avc1.42001e',
};
export const audio: Track = {
  id: 2,
  kind: 'audio',
  codec: 'aac',
  timescale: 48000,
  config: new Uint8Array(),
  codecString: 'mp4a.40.2',
};
export const frame = (trackId: number, dts: number, keyframe: boolean, size = 100): Frame => ({
  trackId,
  dts,
  pts: dts,
  duration: 0,
  keyframe,
  data: new Uint8Array(size),
  arrival: performance.now(),
});
export const publisher = (id = 'p'): Publisher & { closed: string[] } => {
  const closed: string[] = [];
  return { protocol: 'test', remoteAddress: '127.0.0.1', id, closed, close: (r) => closed.push(r) };
};
