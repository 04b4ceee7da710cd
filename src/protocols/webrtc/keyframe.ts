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
      // draft-ietf-payload-vp9 §4.2: P (inter-picture predicted) clear and B (start of frame) set.
      return (payload[0] & 0x40) === 0 && (payload[0] & 0x08) !== 0;
    case 'AV1':
      // AV1 RTP spec §4.4: N is set on the first packet of a coded video sequence.
      return (payload[0] & 0x08) !== 0;
    case 'opus':
      return true;
  }
}

/** RFC 6184 §5: an SPS or IDR as a single NAL unit, inside a STAP-A (§5.7.1), or starting a FU-A (§5.8). */
function h264StartsKeyframe(p: Uint8Array): boolean {
  const type = p[0] & 0x1f;
  if (type === 5 || type === 7) return true;
  if (type === 24) {
    let i = 1;
    while (i + 2 < p.length) {
      const size = (p[i] << 8) | p[i + 1];
      const inner = p[i + 2] & 0x1f;
      if (inner === 5 || inner === 7) return true;
      i += 2 + size;
    }
    return false;
  }
  if (type === 28 && p.length > 1) return (p[1] & 0x80) !== 0 && ((p[1] & 0x1f) === 5 || (p[1] & 0x1f) === 7);
  return false;
}

/** RFC 7741 §4.2-4.3: the payload descriptor, then the VP8 frame header's P bit (0: keyframe) on S=1, PID 0. */
function vp8StartsKeyframe(p: Uint8Array): boolean {
  const b0 = p[0];
  if ((b0 & 0x10) === 0 || (b0 & 0x07) !== 0) return false;
  let i = 1;
  if (b0 & 0x80) {
    if (p.length < 2) return false;
    const x = p[1];
    i = 2;
    if (x & 0x80) i += p.length > i && p[i] & 0x80 ? 2 : 1;
    if (x & 0x40) i++;
    if (x & 0x30) i++;
  }
  return i < p.length && (p[i] & 0x01) === 0;
}
