/** The Subsecond messaging client: `import { channel } from '/static/subsecond.js'`. */

export { MESSAGING_DATA_CHANNEL_LABEL, MessagingPeer } from '../webrtc/MessagingPeer.ts';
export {
  type ChannelErrorInfo,
  ChannelEvent,
  type ChannelEvents,
  type ChannelGap,
  type ChannelMessage,
  type ChannelOptions,
  type ChannelPresence,
  type ChannelState,
  type ChannelStateChange,
  type ChannelTransportKind,
  PublishError,
} from './ChannelTypes.ts';
export { CHANNEL_TRANSPORTS, channel, SubsecondChannel } from './SubsecondChannel.ts';
export type {
  ChannelTransport,
  ChannelTransportContext,
  ChannelTransportFactory,
  ChannelTransportObserver,
} from './transport/ChannelTransport.ts';
