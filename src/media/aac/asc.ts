import { BitReader, BitWriter } from '../bits.ts';
import { MediaParseError } from '../errors.ts';

/** AudioSpecificConfig, ISO/IEC 14496-3 §1.6.2.1, reduced to what a track needs. */
export interface AudioSpecificConfig {
  /** The signalled audioObjectType (Table 1.1): 2 AAC-LC, 5 SBR (HE-AAC), 29 PS (HE-AACv2) … */
  objectType: number;
  /** Output sampling rate: for explicitly signalled SBR, the extension (doubled) rate. */
  sampleRate: number;
  /** Output channels (Table 1.19, or counted from the program_config_element; PS turns mono into stereo). */
  channels: number;
  /** RFC 6381 §3.3: `mp4a.40.<objectType>`. */
  codecString: string;
  /** PCM samples per access unit at `sampleRate`: 1024 or 960, doubled by SBR. */
  samplesPerFrame: number;
}

/** samplingFrequencyIndex to Hz, Table 1.18; 13 and 14 are reserved, 15 escapes to an explicit 24-bit rate. */
export const AAC_SAMPLE_RATES: readonly number[] = [
  96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/** channelConfiguration to channel count, Table 1.19 (as amended); 0 defers to the program_config_element. */
const CHANNELS_BY_CONFIG: Readonly<Record<number, number>> = {
  1: 1,
  2: 2,
  3: 3,
  4: 4,
  5: 5,
  6: 6,
  7: 8,
  11: 7,
  12: 8,
  13: 24,
  14: 8,
};

/** Object types whose specific config is GASpecificConfig (§1.6.2.1 switch, §4.4.1). */
const GA_OBJECT_TYPES = new Set([1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23]);

const AOT_SBR = 5;
const AOT_PS = 29;
const AOT_ESCAPE = 31;

export function parseAudioSpecificConfig(asc: Uint8Array): AudioSpecificConfig {
  const r = new BitReader(asc, 'AudioSpecificConfig');
  const objectType = readObjectType(r);
  if (objectType === 0)
    throw new MediaParseError('AudioSpecificConfig: audioObjectType 0 is the null object', 0);
  let sampleRate = readSampleRate(r);
  const channelConfiguration = r.readBits(4);
  let coreType = objectType;
  let sbr = false;
  if (objectType === AOT_SBR || objectType === AOT_PS) {
    sbr = true;
    sampleRate = readSampleRate(r);
    coreType = readObjectType(r);
    if (coreType === 22) r.skipBits(4); // extensionChannelConfiguration
  }
  let channels = CHANNELS_BY_CONFIG[channelConfiguration];
  if (channels === undefined && channelConfiguration !== 0) {
    throw new MediaParseError(
      `AudioSpecificConfig: channelConfiguration ${channelConfiguration} is reserved`,
    );
  }
  let frameLength = 1024;
  if (GA_OBJECT_TYPES.has(coreType)) {
    // GASpecificConfig, §4.4.1 Table 4.1.
    if (r.readFlag()) frameLength = 960;
    if (r.readFlag()) r.skipBits(14); // dependsOnCoreCoder → coreCoderDelay
    r.skipBits(1); // extensionFlag
    if (channelConfiguration === 0) channels = countPceChannels(r);
  } else if (channelConfiguration === 0) {
    throw new MediaParseError(
      `AudioSpecificConfig: channelConfiguration 0 with object type ${coreType}, channel count unknown`,
    );
  }
  if (objectType === AOT_PS && channels === 1) channels = 2;
  // Bits after the specific config (the backward-compatible SBR/PS extension, syncExtensionType 0x2b7,
  // §1.6.5) are not interpreted: a decoder that ignores them plays the core at the rate reported here.
  return {
    objectType,
    sampleRate,
    channels,
    codecString: `mp4a.40.${objectType}`,
    samplesPerFrame: sbr ? frameLength * 2 : frameLength,
  };
}

/** GetAudioObjectType(), §1.6.2.1: 5 bits, 31 escaping to 32 + 6 more bits. */
function readObjectType(r: BitReader): number {
  const t = r.readBits(5);
  return t === AOT_ESCAPE ? 32 + r.readBits(6) : t;
}

function readSampleRate(r: BitReader): number {
  const at = r.position;
  const index = r.readBits(4);
  if (index === 15) {
    const rate = r.readBits(24);
    if (rate === 0)
      throw new MediaParseError('AudioSpecificConfig: explicit samplingFrequency is 0', at >>> 3);
    return rate;
  }
  const rate = AAC_SAMPLE_RATES[index];
  if (rate === undefined) {
    throw new MediaParseError(`AudioSpecificConfig: samplingFrequencyIndex ${index} is reserved`, at >>> 3);
  }
  return rate;
}

/** program_config_element(), §4.4.1.1 Table 4.2, up to the element lists: a CPE is two channels. */
function countPceChannels(r: BitReader): number {
  r.skipBits(4 + 2 + 4); // element_instance_tag, object_type, sampling_frequency_index
  const front = r.readBits(4);
  const side = r.readBits(4);
  const back = r.readBits(4);
  const lfe = r.readBits(2);
  r.skipBits(3 + 4); // num_assoc_data_elements, num_valid_cc_elements
  if (r.readFlag()) r.skipBits(4); // mono_mixdown_element_number
  if (r.readFlag()) r.skipBits(4); // stereo_mixdown_element_number
  if (r.readFlag()) r.skipBits(3); // matrix_mixdown_idx, pseudo_surround_enable
  let channels = lfe;
  for (let i = 0; i < front + side + back; i++) {
    channels += r.readFlag() ? 2 : 1;
    r.skipBits(4); // element tag
  }
  if (channels === 0)
    throw new MediaParseError('AudioSpecificConfig: program_config_element declares no channels');
  return channels;
}

/**
 * Builds an AudioSpecificConfig for AAC Main/LC/SSR/LTP (object types 1–4) or, with explicit hierarchical
 * signalling (§1.6.5), HE-AAC (5) and HE-AACv2 (29) over an AAC-LC core at half of `sampleRate`.
 * Rates outside Table 1.18 use the explicit 24-bit form; `channels` must be 1–6 or 8.
 */
export function buildAudioSpecificConfig(
  objectType: number,
  sampleRate: number,
  channels: number,
): Uint8Array {
  const sbr = objectType === AOT_SBR || objectType === AOT_PS;
  if (!sbr && (objectType < 1 || objectType > 4)) {
    throw new RangeError(
      `cannot build an AudioSpecificConfig for object type ${objectType}: supported are 1-5, 29`,
    );
  }
  if (!Number.isInteger(sampleRate) || sampleRate <= 0 || sampleRate >= 2 ** 24) {
    throw new RangeError(`cannot build an AudioSpecificConfig for sample rate ${sampleRate}`);
  }
  // Parametric stereo (§1.6.6, subpart 8) decodes a mono core into stereo, so HE-AACv2 is only ever stereo.
  if (objectType === AOT_PS && channels !== 2)
    throw new RangeError(`HE-AACv2 is stereo, got ${channels} channels`);
  const channelConfiguration = objectType === AOT_PS ? 1 : channels === 8 ? 7 : channels;
  if (channels === 7 || channelConfiguration < 1 || channelConfiguration > 7) {
    throw new RangeError(
      `cannot build an AudioSpecificConfig for ${channels} channels: supported are 1-6 and 8`,
    );
  }
  const w = new BitWriter(16);
  w.writeBits(5, objectType);
  if (sbr) {
    const coreRate = sampleRate / 2;
    if (!Number.isInteger(coreRate)) throw new RangeError(`HE-AAC sample rate ${sampleRate} is odd`);
    writeSampleRate(w, coreRate);
    w.writeBits(4, channelConfiguration);
    writeSampleRate(w, sampleRate);
    w.writeBits(5, 2); // AAC-LC core
  } else {
    writeSampleRate(w, sampleRate);
    w.writeBits(4, channelConfiguration);
  }
  w.writeBits(3, 0); // GASpecificConfig: frameLengthFlag, dependsOnCoreCoder, extensionFlag
  return w.finish().slice();
}

function writeSampleRate(w: BitWriter, rate: number): void {
  const index = AAC_SAMPLE_RATES.indexOf(rate);
  if (index >= 0) {
    w.writeBits(4, index);
  } else {
    w.writeBits(4, 15);
    w.writeBits(24, rate);
  }
}
