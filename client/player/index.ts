/** The Subsecond browser SDK: `import { SubsecondPlayer, PlayerEvent } from '/static/subsecond.js'`. */

// Messaging rides in the same library: `subsecond.channel('live/cam1:chat')`.
export * from '../messaging/index.ts';
export { Emitter, type Listener } from './Emitter.ts';
export type { TrackInfo } from './mse/messages.ts';
export {
  type PlayerError,
  PlayerEvent,
  type PlayerEvents,
  type PlayerOptions,
  type PlayerState,
  type PlayerStats,
  type StateChange,
  type TransportKind,
} from './PlayerTypes.ts';
export { SubsecondPlayer, TRANSPORTS } from './SubsecondPlayer.ts';
export type { Transport, TransportFactory } from './transport/Transport.ts';
