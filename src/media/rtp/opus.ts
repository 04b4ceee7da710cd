import { MediaParseError } from '../errors.ts';
import type { RtpPacket } from './packet.ts';
import type { DepacketizeResult, Depacketizer, RtpPayloads } from './payload.ts';

/*
 * Opus over RTP, RFC 7587: one Opus packet per RTP packet (§4.2), 48 kHz RTP clock whatever the coded
 * bandwidth (§4.1), no payload header. `OpusPacketizer.packetize(frame)` gives the one payload;
 * `OpusDepacketizer.push(packet)` gives each packet back as a frame with its duration read from the TOC
 * byte (`opusPacketDuration`, RFC 6716 §3.1-3.2), or an error result for a packet RFC 6716 §3.4 forbids.
 */

/** RTP clock rate of Opus, RFC 7587 §4.1. */
export const OPUS_CLOCK_RATE = 48000;

/** Frame sizes in 48 kHz samples by TOC config, RFC 6716 Table 2: SILK 10/20/40/60 ms, Hybrid 10/20, CELT 2.5/5/10/20. */
const FRAME_SAMPLES = [
  480, 960, 1920, 2880, 480, 960, 1920, 2880, 480, 960, 1920, 2880, 480, 960, 480, 960, 120, 240, 480, 960,
  120, 240, 480, 960, 120, 240, 480, 960, 120, 240, 480, 960,
];

/**
 * Duration of an Opus packet in 48 kHz samples from its TOC byte and, for code 3, its frame count byte.
 * Throws MediaParseError for an empty packet, a missing frame count or more than 120 ms (RFC 6716 §3.4 R1, R5, R6).
 */
export function opusPacketDuration(packet: Uint8Array, offset = 0): number {
  if (packet.length === 0)
    throw new MediaParseError('Opus packet: empty, a packet has at least a TOC byte', offset);
  const toc = packet[0];
  const frame = FRAME_SAMPLES[toc >> 3];
  let frames: number;
  switch (toc & 0x03) {
    case 0:
      frames = 1;
      break;
    case 3:
      if (packet.length < 2)
        throw new MediaParseError('Opus packet: code 3 packet without its frame count byte', offset + 1);
      frames = packet[1] & 0x3f;
      if (frames === 0)
        throw new MediaParseError('Opus packet: code 3 packet with a frame count of 0', offset + 1);
      break;
    default:
      frames = 2;
  }
  const samples = frames * frame;
  if (samples > 5760) {
    throw new MediaParseError(
      `Opus packet: ${frames} frames of ${frame / 48} ms last ${samples / 48} ms, more than the 120 ms allowed`,
      offset + 1,
    );
  }
  return samples;
}

export class OpusPacketizer {
  /**
   * The payload is the Opus packet itself (a view, no copy). No marker: RFC 7587 §4.2 sets it only on the first
   * packet of a talkspurt after DTX, which a forwarder cannot tell from a frame alone.
   */
  packetize(frame: Uint8Array): RtpPayloads {
    return { payloads: [frame], markerIndex: -1 };
  }
}

/**
 * Each RTP packet is one frame: the data is a view of the packet's payload, duration in 48 kHz samples, and
 * every Opus frame is a random access point. Loss needs no recovery here (the decoder conceals it).
 */
export class OpusDepacketizer implements Depacketizer {
  push(packet: RtpPacket): DepacketizeResult {
    let duration: number;
    try {
      duration = opusPacketDuration(packet.payload, packet.headerSize);
    } catch (err) {
      if (!(err instanceof MediaParseError)) throw err;
      return { error: err, keyframeNeeded: false };
    }
    return {
      frame: { data: packet.payload, timestamp: packet.timestamp, keyframe: true, duration },
      keyframeNeeded: false,
    };
  }

  reset(): void {
    // Stateless: every packet stands alone.
  }
}
