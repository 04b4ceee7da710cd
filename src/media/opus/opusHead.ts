import { MediaParseError } from '../errors.ts';

/** Identification header, RFC 7845 §5.1. */
export interface OpusHead {
  version: number;
  channels: number;
  preSkip: number;
  inputSampleRate: number;
  /** Q7.8 dB. */
  outputGain: number;
  channelMappingFamily: number;
  /** Present when channelMappingFamily is not 0. */
  streamCount?: number;
  coupledCount?: number;
  channelMapping?: Uint8Array;
}

const MAGIC = 'OpusHead';

export function parseOpusHead(head: Uint8Array): OpusHead {
  if (head.length < 19) throw new MediaParseError(`OpusHead: ${head.length} bytes, at least 19 needed`);
  for (let i = 0; i < 8; i++) {
    if (head[i] !== MAGIC.charCodeAt(i)) throw new MediaParseError('OpusHead: missing "OpusHead" magic', i);
  }
  const version = head[8];
  // §5.1: a reader must accept versions 0-15 (same major version) and reject the rest.
  if (version > 15) throw new MediaParseError(`OpusHead: version ${version} is incompatible`, 8);
  const channels = head[9];
  if (channels === 0) throw new MediaParseError('OpusHead: channel count is 0', 9);
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const out: OpusHead = {
    version,
    channels,
    preSkip: dv.getUint16(10, true),
    inputSampleRate: dv.getUint32(12, true),
    outputGain: dv.getInt16(16, true),
    channelMappingFamily: head[18],
  };
  if (out.channelMappingFamily === 0) {
    if (channels > 2) throw new MediaParseError(`OpusHead: mapping family 0 with ${channels} channels`, 9);
    return out;
  }
  if (head.length < 21 + channels) {
    throw new MediaParseError(
      `OpusHead: channel mapping table for ${channels} channels truncated, ${head.length} bytes`,
      19,
    );
  }
  out.streamCount = head[19];
  out.coupledCount = head[20];
  if (out.streamCount === 0 || out.coupledCount > out.streamCount) {
    throw new MediaParseError(`OpusHead: ${out.streamCount} streams with ${out.coupledCount} coupled`, 19);
  }
  out.channelMapping = head.subarray(21, 21 + channels);
  return out;
}

/** Builds an OpusHead for mapping family 0 (mono or stereo), e.g. for WebRTC sources that send none. */
export function buildOpusHead(channels: number, preSkip = 312, inputSampleRate = 48000): Uint8Array {
  if (channels !== 1 && channels !== 2)
    throw new RangeError(`OpusHead mapping family 0 needs 1 or 2 channels`);
  const out = new Uint8Array(19);
  for (let i = 0; i < 8; i++) out[i] = MAGIC.charCodeAt(i);
  const dv = new DataView(out.buffer);
  out[8] = 1;
  out[9] = channels;
  dv.setUint16(10, preSkip, true);
  dv.setUint32(12, inputSampleRate, true);
  return out;
}

/**
 * OpusSpecificBox payload ('dOps', "Encapsulation of Opus in ISO Base Media File Format" §4.3.2): the OpusHead
 * fields re-encoded big-endian, with version 0 and without the magic.
 */
export function opusHeadToDops(opusHead: Uint8Array): Uint8Array {
  const h = parseOpusHead(opusHead);
  const mapped = h.channelMappingFamily !== 0;
  const out = new Uint8Array(11 + (mapped ? 2 + h.channels : 0));
  const dv = new DataView(out.buffer);
  out[0] = 0;
  out[1] = h.channels;
  dv.setUint16(2, h.preSkip);
  dv.setUint32(4, h.inputSampleRate);
  dv.setInt16(8, h.outputGain);
  out[10] = h.channelMappingFamily;
  if (mapped) {
    out[11] = h.streamCount!;
    out[12] = h.coupledCount!;
    out.set(h.channelMapping!, 13);
  }
  return out;
}

/** The inverse of opusHeadToDops: an OpusHead (version 1) from a dOps payload, e.g. to ingest Opus from MP4. */
export function opusHeadFromDops(dOps: Uint8Array): Uint8Array {
  if (dOps.length < 11) throw new MediaParseError(`dOps: ${dOps.length} bytes, at least 11 needed`);
  if (dOps[0] !== 0) throw new MediaParseError(`dOps: Version ${dOps[0]}, expected 0`, 0);
  const channels = dOps[1];
  const mapped = dOps[10] !== 0;
  const size = 11 + (mapped ? 2 + channels : 0);
  if (dOps.length < size)
    throw new MediaParseError(`dOps: channel mapping truncated, ${dOps.length} of ${size} bytes`);
  const src = new DataView(dOps.buffer, dOps.byteOffset, dOps.byteLength);
  const out = new Uint8Array(size + 8);
  const dst = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) out[i] = MAGIC.charCodeAt(i);
  out[8] = 1;
  out[9] = channels;
  dst.setUint16(10, src.getUint16(2), true);
  dst.setUint32(12, src.getUint32(4), true);
  dst.setInt16(16, src.getInt16(8), true);
  out[18] = dOps[10];
  if (mapped) out.set(dOps.subarray(11, size), 19);
  parseOpusHead(out);
  return out;
}

export interface OpusTrackInfo {
  codecString: 'opus';
  /** Opus always decodes at 48 kHz (RFC 7845 §5.1: input sample rate is informational). */
  sampleRate: 48000;
  channels: number;
}

export function opusTrackInfo(opusHead: Uint8Array): OpusTrackInfo {
  return { codecString: 'opus', sampleRate: 48000, channels: parseOpusHead(opusHead).channels };
}
