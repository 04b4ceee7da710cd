import { MediaParseError } from '../errors.ts';
import { AAC_SAMPLE_RATES } from './asc.ts';

/** One ADTS frame (ISO/IEC 14496-3 §1.A.2.2): its header fields and a view of the raw access unit. */
export interface AdtsFrame {
  /** audioObjectType: profile_ObjectType + 1 (1 Main, 2 LC, 3 SSR, 4 LTP). */
  objectType: number;
  samplingFrequencyIndex: number;
  sampleRate: number;
  channelConfiguration: number;
  /** 7, or 9 with the CRC. */
  headerSize: number;
  /** aac_frame_length: header and payload. */
  frameLength: number;
  /** The raw AAC access unit, a view into the input. */
  data: Uint8Array;
}

/** Parses the ADTS frame starting at `offset`; throws MediaParseError when it is not one or is cut short. */
export function parseAdtsFrame(buf: Uint8Array, offset = 0): AdtsFrame {
  if (offset + 7 > buf.length) {
    throw new MediaParseError(`ADTS: truncated header, ${buf.length - offset} bytes left`, offset);
  }
  const b1 = buf[offset + 1];
  if (buf[offset] !== 0xff || (b1 & 0xf0) !== 0xf0) {
    throw new MediaParseError(
      `ADTS: no syncword, found 0x${((buf[offset] << 8) | b1).toString(16).padStart(4, '0')}`,
      offset,
    );
  }
  if ((b1 & 0x06) !== 0) throw new MediaParseError(`ADTS: layer is ${(b1 >> 1) & 3}, expected 0`, offset + 1);
  const headerSize = b1 & 0x01 ? 7 : 9;
  const b2 = buf[offset + 2];
  const b3 = buf[offset + 3];
  const objectType = (b2 >> 6) + 1;
  const samplingFrequencyIndex = (b2 >> 2) & 0x0f;
  const sampleRate = AAC_SAMPLE_RATES[samplingFrequencyIndex];
  if (sampleRate === undefined) {
    throw new MediaParseError(
      `ADTS: sampling_frequency_index ${samplingFrequencyIndex} is reserved`,
      offset + 2,
    );
  }
  const channelConfiguration = ((b2 & 0x01) << 2) | (b3 >> 6);
  const frameLength = ((b3 & 0x03) << 11) | (buf[offset + 4] << 3) | (buf[offset + 5] >> 5);
  const rawBlocks = buf[offset + 6] & 0x03;
  if (rawBlocks !== 0) {
    throw new MediaParseError(
      `ADTS: ${rawBlocks + 1} raw data blocks in one frame are not supported`,
      offset + 6,
    );
  }
  if (frameLength < headerSize) {
    throw new MediaParseError(`ADTS: aac_frame_length ${frameLength} is shorter than the header`, offset + 3);
  }
  if (offset + frameLength > buf.length) {
    throw new MediaParseError(
      `ADTS: aac_frame_length ${frameLength} runs past the end, ${buf.length - offset} bytes left`,
      offset + 3,
    );
  }
  return {
    objectType,
    samplingFrequencyIndex,
    sampleRate,
    channelConfiguration,
    headerSize,
    frameLength,
    data: buf.subarray(offset + headerSize, offset + frameLength),
  };
}

/** Splits a stream of back-to-back ADTS frames; payloads are views into `buf`. */
export function splitAdts(buf: Uint8Array): AdtsFrame[] {
  const out: AdtsFrame[] = [];
  let p = 0;
  while (p < buf.length) {
    const frame = parseAdtsFrame(buf, p);
    out.push(frame);
    p += frame.frameLength;
  }
  return out;
}
