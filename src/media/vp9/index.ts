export type { Vp9TrackInfo, VpCodecConfig } from './vpcC.ts';
export { parseVpCodecConfig, vp9CodecString, vp9FrameSize, vp9TrackInfo } from './vpcC.ts';
