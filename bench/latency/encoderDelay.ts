/**
 * ffmpeg's own delay in the RTMP source: the stamped source encoding into FLV on a pipe instead of a server, and
 * for each video frame the time from its stamp to its encoded tag leaving ffmpeg. With no B-frames and no drops
 * the Nth coded picture is the Nth frame written, so no decoding is needed to pair them. This is the share of
 * the RTMP figures that no server can remove (the "ffmpeg's own encode delay").
 */
import { summarizeSamples } from './measure.ts';
import { StampedSource, type StampedSourceOptions } from './StampedSource.ts';

export interface EncoderDelay {
  samples: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
}

export async function measureEncoderDelay(
  options: Omit<StampedSourceOptions, 'url' | 'recordStamps'>,
): Promise<EncoderDelay> {
  const source = new StampedSource({ ...options, url: 'pipe:1', recordStamps: true });
  const delays: number[] = [];
  let pending: Buffer = Buffer.alloc(0);
  let headerSkipped = false;
  let pictures = 0;
  source.ffmpeg.stdout?.on('data', (chunk: Buffer) => {
    const now = performance.now();
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    if (!headerSkipped) {
      if (pending.length < 13) return;
      pending = pending.subarray(13); // FLV header (9) and PreviousTagSize0 (4)
      headerSkipped = true;
    }
    // Each tag: type, 24-bit size, timestamps and stream id (11 bytes), the body, then a 4-byte PreviousTagSize.
    while (pending.length >= 11) {
      const size = pending.readUIntBE(1, 3);
      if (pending.length < 11 + size + 4) break;
      const type = pending[0];
      // Video (9), AVC NALU packet (AVCPacketType 1): one coded picture; 0 is the sequence header.
      if (type === 9 && size >= 2 && pending[12] === 1) {
        const stamped = source.stamps[pictures++];
        if (stamped !== undefined) delays.push(now - stamped);
      }
      pending = pending.subarray(11 + size + 4);
    }
  });
  const exited = new Promise<void>((resolve) => source.ffmpeg.once('exit', () => resolve()));
  source.start();
  await exited;
  // The first second holds the encoder's start-up; the steady state is what a viewer sees.
  const steady = delays.slice(Math.round(source.fps));
  return { samples: steady.length, ...summarizeSamples(steady) };
}
