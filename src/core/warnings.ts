/*
 * Facts about a source that more than one protocol notices, each said in one sentence, so Stream.warnings
 * (a set) holds a fact once whichever part saw it first.
 */

/** RTMP ingest sees a composition time in the FLV tag, WebRTC packetizing a frame with pts ≠ dts. */
export const B_FRAMES_WARNING =
  'the H.264 source has B-frames, which make WebRTC playback stutter: encode without them (x264 -bf 0 or ' +
  '-tune zerolatency; OBS: profile baseline or "bframes=0" in x264 options)';
