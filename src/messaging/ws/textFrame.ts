import { FramedOnce, frameMessage, Opcode } from '../../transport/websocketFrame.ts';
import type { PresenceFrame, StoredMessage } from '../Message.ts';

/** Each message and presence event framed once, as a WebSocket text message, for all subscribers. */
export class FramedEvents extends FramedOnce<StoredMessage | PresenceFrame> {
  constructor() {
    super((event) => frameMessage(Opcode.text, Buffer.from(event.frame)));
  }
}
