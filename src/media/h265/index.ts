export type { HevcDecoderConfig, HevcSps, HevcTrackInfo } from './hvcC.ts';
export {
  HEVC_NAL_PPS,
  HEVC_NAL_SPS,
  HEVC_NAL_VPS,
  hevcCodecString,
  hevcTrackInfo,
  parseHevcDecoderConfig,
  parseHevcSps,
} from './hvcC.ts';
