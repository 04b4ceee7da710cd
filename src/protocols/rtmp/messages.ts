import { type Amf0Value, encodeAmf0 } from './amf0.ts';

/** One RTMP message as the chunk stream carries it (RTMP 1.0 §6.1). */
export interface RtmpMessage {
  /** Chunk stream id it travelled on (2..65599). */
  readonly csid: number;
  /** Milliseconds, 32 bits (wraps after ~49.7 days). */
  readonly timestamp: number;
  readonly typeId: number;
  /** Message stream id: 0 for the connection, the createStream result for a NetStream. */
  readonly streamId: number;
  readonly payload: Uint8Array;
}

/** Message type ids, RTMP 1.0 §5.4 and §7.1. */
export const MessageType = {
  SetChunkSize: 1,
  Abort: 2,
  Acknowledgement: 3,
  UserControl: 4,
  WindowAckSize: 5,
  SetPeerBandwidth: 6,
  Audio: 8,
  Video: 9,
  DataAmf3: 15,
  SharedObjectAmf3: 16,
  CommandAmf3: 17,
  DataAmf0: 18,
  SharedObjectAmf0: 19,
  CommandAmf0: 20,
  Aggregate: 22,
} as const;

/** User control event types, RTMP 1.0 §7.1.7. */
export const UserControlEvent = {
  StreamBegin: 0,
  StreamEof: 1,
  StreamDry: 2,
  SetBufferLength: 3,
  StreamIsRecorded: 4,
  PingRequest: 6,
  PingResponse: 7,
} as const;

/**
 * The chunk streams the server sends on. Media has its own chunk streams so that the shared, pre-chunked
 * media bytes (see RtmpPlayFeed) never interleave with per-connection messages on the same chunk stream.
 */
export const Csid = {
  Control: 2,
  Command: 3,
  Audio: 4,
  StreamCommand: 5,
  Video: 6,
} as const;

function control(typeId: number, payload: Uint8Array): RtmpMessage {
  return { csid: Csid.Control, timestamp: 0, typeId, streamId: 0, payload };
}

function u32(v: number): Uint8Array {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(v >>> 0, 0);
  return b;
}

export function setChunkSizeMessage(size: number): RtmpMessage {
  return control(MessageType.SetChunkSize, u32(size));
}

export function windowAckSizeMessage(size: number): RtmpMessage {
  return control(MessageType.WindowAckSize, u32(size));
}

export function acknowledgementMessage(sequence: number): RtmpMessage {
  return control(MessageType.Acknowledgement, u32(sequence));
}

/** limitType: 0 hard, 1 soft, 2 dynamic (§5.4.5). */
export function setPeerBandwidthMessage(size: number, limitType: number): RtmpMessage {
  const b = Buffer.allocUnsafe(5);
  b.writeUInt32BE(size >>> 0, 0);
  b[4] = limitType;
  return control(MessageType.SetPeerBandwidth, b);
}

export function userControlMessage(event: number, value: number): RtmpMessage {
  const b = Buffer.allocUnsafe(6);
  b.writeUInt16BE(event, 0);
  b.writeUInt32BE(value >>> 0, 2);
  return control(MessageType.UserControl, b);
}

/** An AMF0 command (type 20), e.g. `_result` on the connection or `onStatus` on a NetStream. */
export function commandMessage(streamId: number, ...values: Amf0Value[]): RtmpMessage {
  const csid = streamId === 0 ? Csid.Command : Csid.StreamCommand;
  return { csid, timestamp: 0, typeId: MessageType.CommandAmf0, streamId, payload: encodeAmf0(...values) };
}

/** An AMF0 data message (type 18), e.g. `onMetaData` or `|RtmpSampleAccess`. */
export function dataMessage(streamId: number, timestamp: number, ...values: Amf0Value[]): RtmpMessage {
  return {
    csid: Csid.StreamCommand,
    timestamp,
    typeId: MessageType.DataAmf0,
    streamId,
    payload: encodeAmf0(...values),
  };
}

/** NetStream status (`onStatus`, transaction 0, null command object) with the info object clients read. */
export function onStatusMessage(
  streamId: number,
  level: 'status' | 'warning' | 'error',
  code: string,
  description: string,
): RtmpMessage {
  return commandMessage(streamId, 'onStatus', 0, null, { level, code, description });
}
