/**
 * A peer broke the RTMP protocol: a bad handshake, an impossible chunk header, a malformed command. The message
 * names what was wrong and the offending value; the connection that sent it is closed, nobody else is affected.
 */
export class RtmpProtocolError extends Error {
  override readonly name: string = 'RtmpProtocolError';
}

/** Malformed AMF0: truncated input or a marker we cannot decode, with the offset of the first bad byte. */
export class Amf0Error extends RtmpProtocolError {
  override readonly name = 'Amf0Error';
  readonly offset: number;

  constructor(message: string, offset: number) {
    super(`AMF0 ${message} at offset ${offset}`);
    this.offset = offset;
  }
}
