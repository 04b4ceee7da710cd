import { FramedOnce, frameMessage, Opcode } from '../../transport/websocketFrame.ts';
import { type PresenceFrame, StoredMessage } from '../Message.ts';

const WS_TEXT_FRAME = Symbol('websocket text frame');

/**
 * Each message and presence event framed once, as a WebSocket text message, for all subscribers. A message's
 * frame lives on the message while it is fanned out (StoredMessage.encoding), not for as long as it is in a
 * history.
 */
export class FramedEvents {
  readonly #presence = new FramedOnce<PresenceFrame>((event) =>
    frameMessage(Opcode.text, Buffer.from(event.frame)),
  );

  get(event: StoredMessage | PresenceFrame): Buffer {
    if (event instanceof StoredMessage) {
      return event.encoding(WS_TEXT_FRAME, () => frameMessage(Opcode.text, event.frameBytes));
    }
    return this.#presence.get(event);
  }
}
