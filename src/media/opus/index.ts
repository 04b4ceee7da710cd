export type { OpusHead, OpusTrackInfo } from './opusHead.ts';
export { buildOpusHead, opusHeadFromDops, opusHeadToDops, opusTrackInfo, parseOpusHead } from './opusHead.ts';
