export { BoxWriter } from './BoxWriter.ts';
export { FragmentWriter, SAMPLE_FLAGS_NON_SYNC, SAMPLE_FLAGS_SYNC } from './fragment.ts';
export { writeInitSegment } from './init.ts';
export type {
  Esds,
  Mdhd,
  Mp4Box,
  Mp4Sample,
  Mvhd,
  SampleEntry,
  Tfdt,
  Tfhd,
  Tkhd,
  Trex,
  Trun,
  TrunSample,
} from './reader.ts';
export {
  findAllBoxes,
  findBox,
  findBoxes,
  parseEsds,
  parseHdlr,
  parseMdhd,
  parseMfhd,
  parseMvhd,
  parseStsd,
  parseTfdt,
  parseTfhd,
  parseTkhd,
  parseTrex,
  parseTrun,
  readBoxes,
  readFragmentSamples,
} from './reader.ts';
