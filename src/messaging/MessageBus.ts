import type { Replay } from './ChannelHistory.ts';
import type { GapEvent, MessageDraft, StoredMessage } from './Message.ts';

/** Subscriber counts one node holds for one channel, per transport. */
export type TransportCounts = Readonly<Record<string, number>>;

export type Unsubscribe = () => void;

/** Thrown by a bus that cannot open another channel (messaging.maxChannels, all of them in use). */
export class ChannelLimitError extends Error {}

/**
 * Between channels and nodes. The bus owns what must be one truth across a cluster: id assignment, the
 * history, live delivery and presence totals. The in-memory bus serves one process; a Redis bus (the cluster
 * issue) implements the same interface, which is why everything here is asynchronous or callback-based and
 * no transport may reach around it.
 *
 * Delivery contract: a subscribe listener sees every message of the channel published after `subscribe`
 * returned, in id order, at most once. A consumer that needs "everything after id N" subscribes first, then
 * asks `replay(N)`, and drops live messages with ids it already has (ChannelSession does this). When the bus
 * cannot deliver some ids live (a bus that lost them: Redis flushed or failed over), `onGap` hears it before
 * the next message; a listener never sees an id jump without one.
 */
export interface MessageBus {
  /** Assigns the next id and the time, stores the message in the history, delivers it to subscribers. */
  publish(channel: string, from: string, draft: MessageDraft): Promise<StoredMessage>;
  subscribe(
    channel: string,
    listener: (message: StoredMessage) => void,
    onGap?: (gap: GapEvent) => void,
  ): Unsubscribe;
  /** The retained messages after `since` (undefined: none, only the newest id), or a gap. */
  replay(channel: string, since: number | undefined): Promise<Replay>;
  /** This node's subscriber counts for the channel; totals across nodes reach `subscribePresence` listeners. */
  reportPresence(channel: string, node: string, counts: TransportCounts): void;
  subscribePresence(channel: string, listener: (totals: TransportCounts) => void): Unsubscribe;
  close(): Promise<void>;
}
