export type { AdtsFrame } from './adts.ts';
export { parseAdtsFrame, splitAdts } from './adts.ts';
export type { AudioSpecificConfig } from './asc.ts';
export { AAC_SAMPLE_RATES, buildAudioSpecificConfig, parseAudioSpecificConfig } from './asc.ts';
