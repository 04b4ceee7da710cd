export type { Av1CodecConfig, Av1TrackInfo } from './av1C.ts';
export { av1CodecString, av1FrameSize, av1TrackInfo, parseAv1CodecConfig } from './av1C.ts';
