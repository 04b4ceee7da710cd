/**
 * The Subsecond browser SDK, `subsecond/client` in npm and `/static/subsecond.js` on every server (docs/sdk.md):
 * the player, the WHIP publisher, messaging channels and the `<subsecond-player>` / `<subsecond-publisher>`
 * custom elements, which this module registers when it loads in a browser.
 */
import { defineSubsecondElements } from './elements/index.ts';

export * from './elements/index.ts';
export * from './player/index.ts';
export { type CaptureSource, captureMedia, testPattern } from './publisher/capture.ts';
export {
  type PublisherEvents,
  type PublisherOptions,
  type PublisherState,
  type PublisherStats,
  type PublishVideoCodec,
  WhipPublisher,
} from './publisher/WhipPublisher.ts';

defineSubsecondElements();
