export type { Av1PacketizerOptions } from './av1.ts';
export { Av1Depacketizer, Av1Packetizer, av1StartsKeyframe, av1WithSequenceHeader } from './av1.ts';
export type { H264PacketizerOptions } from './h264.ts';
export { DEFAULT_MAX_PAYLOAD_SIZE, H264Depacketizer, H264Packetizer, h264StartsKeyframe } from './h264.ts';
export type { H265PacketizerOptions } from './h265.ts';
export { H265Depacketizer, H265Packetizer } from './h265.ts';
export type { NackTrackerOptions } from './nack.ts';
export { NackTracker } from './nack.ts';
export { OPUS_CLOCK_RATE, OpusDepacketizer, OpusPacketizer, opusPacketDuration } from './opus.ts';
export type { RtpHeaderExtension, RtpHeaderInit, RtpPacket } from './packet.ts';
export {
  copyRtpWithRewrite,
  isRtcpPacket,
  parseRtpPacket,
  RTP_EXTENSION_ONE_BYTE,
  RTP_EXTENSION_TWO_BYTE,
  RTP_HEADER_SIZE,
  rewriteRtpHeader,
  rtpPacketSize,
  SequenceUnwrapper,
  seqAdd,
  seqDelta,
  seqNewer,
  timestampDelta,
  writeRtpPacket,
} from './packet.ts';
export type {
  DepacketizedFrame,
  DepacketizeResult,
  Depacketizer,
  FrameDepacketizerOptions,
  RtpPayloads,
} from './payload.ts';
export { FrameDepacketizer } from './payload.ts';
export type { RtpReorderBufferOptions } from './reorder.ts';
export { RtpReorderBuffer } from './reorder.ts';
export type {
  RtcpBye,
  RtcpFir,
  RtcpNack,
  RtcpOther,
  RtcpPli,
  RtcpReceiverReport,
  RtcpRecord,
  RtcpRemb,
  RtcpReportBlock,
  RtcpSenderReport,
  RtcpSourceDescription,
  RtcpTransportFeedback,
} from './rtcp.ts';
export {
  NTP_UNIX_OFFSET_SECONDS,
  ntpFromUnixMs,
  ntpMiddle32,
  ntpToUnixMs,
  parseRtcp,
  RTCP_APP,
  RTCP_BYE,
  RTCP_PSFB,
  RTCP_RR,
  RTCP_RTPFB,
  RTCP_SDES,
  RTCP_SR,
  roundTripMs,
  writeFir,
  writeNack,
  writePli,
  writeReceiverReport,
  writeRemb,
  writeSdesCname,
  writeSenderReport,
} from './rtcp.ts';
export { unwrapRtx, writeRtx } from './rtx.ts';
export { RtpReceiveStatistics, RtpSendStatistics } from './stats.ts';
export type { Vp8Descriptor, Vp8PacketizerOptions } from './vp8.ts';
export {
  parseVp8Descriptor,
  Vp8Depacketizer,
  Vp8Packetizer,
  vp8FrameSize,
  vp8StartsKeyframe,
} from './vp8.ts';
export type { Vp9Descriptor, Vp9PacketizerOptions } from './vp9.ts';
export {
  parseVp9Descriptor,
  splitVp9Superframe,
  Vp9Depacketizer,
  Vp9Packetizer,
  vp9StartsKeyframe,
} from './vp9.ts';
