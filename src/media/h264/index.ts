export {
  annexBToAvcc,
  avccRelength,
  forEachAvccNalu,
  nalusToAvcc,
  splitAnnexB,
  splitAvcc,
} from '../nalu.ts';
export type { AvcDecoderConfig, H264TrackInfo } from './avcC.ts';
export { buildAvcDecoderConfig, h264TrackInfo, parseAvcDecoderConfig } from './avcC.ts';
export {
  H264_NAL_AUD,
  H264_NAL_IDR,
  H264_NAL_PPS,
  H264_NAL_SEI,
  H264_NAL_SLICE,
  H264_NAL_SPS,
  h264NalType,
  isH264Keyframe,
} from './nal.ts';
export type { H264Sps } from './sps.ts';
export { h264CodecString, parseH264Sps } from './sps.ts';
