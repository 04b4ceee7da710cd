import { av1StartsKeyframe } from '../../media/rtp/av1.ts';
import { h264StartsKeyframe } from '../../media/rtp/h264.ts';
import { vp8StartsKeyframe } from '../../media/rtp/vp8.ts';
import { vp9StartsKeyframe } from '../../media/rtp/vp9.ts';
import type { RtpCodecName } from './sdp.ts';

/**
 * Whether an RTP payload starts a frame a decoder can begin at, read from the first bytes only: forwarded
 * packets are never depacketized, but a joining viewer must start on a keyframe.
 */
export function startsKeyframe(codec: RtpCodecName, payload: Uint8Array): boolean {
  if (payload.length === 0) return false;
  switch (codec) {
    case 'H264':
      return h264StartsKeyframe(payload);
    case 'VP8':
      return vp8StartsKeyframe(payload);
    case 'VP9':
      return vp9StartsKeyframe(payload);
    case 'AV1':
      return av1StartsKeyframe(payload);
    case 'opus':
      return true;
  }
}
