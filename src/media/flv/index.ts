export type { FlvAudioPacket } from './audio.ts';
export { AudioPacketType, audioFrameTagHeader, audioSequenceStartTag, parseAudioTag } from './audio.ts';
export type { FlvTag } from './tag.ts';
export { FlvTagType, parseFlvTags } from './tag.ts';
export type { FlvVideoPacket } from './video.ts';
export {
  parseVideoTag,
  stripVpcCHeader,
  VideoPacketType,
  videoFrameTagHeader,
  videoSequenceStartTag,
} from './video.ts';
