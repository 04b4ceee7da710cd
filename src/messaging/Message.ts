/**
 * What flows through a channel. `id` is assigned by the bus, strictly increasing per channel and dense (each
 * publish takes the next integer), so a client resumes from its last id and a gap is counted exactly.
 */
export interface ChannelMessage {
  readonly id: number;
  readonly channel: string;
  /** Server time the message was accepted, ms since the epoch. */
  readonly time: number;
  /** The publisher's identity id, set by the server; never what a client claims. */
  readonly from: string;
  /** Application-defined kind: `chat`, `reaction`, `bid`… (1-64 characters). */
  readonly type: string;
  readonly data: unknown;
}

/** What a publisher supplies; the rest is the server's. */
export interface MessageDraft {
  readonly type: string;
  readonly data: unknown;
}

/**
 * A message as a channel keeps it: its JSON text (the one copy a history holds, so a message costs about its
 * size) and the encodings subscribers get — the socket frame (WebSocket, data channel) and the SSE event —
 * each built at most once however many subscribers receive it while it is fanned out. Once the bus has fanned
 * it out it `settle`s: the shared encodings are let go, and a later replay builds what it sends (work in
 * proportion to what that one client receives).
 */
export class StoredMessage {
  /** `JSON.stringify(message)`. */
  readonly json: string;
  readonly id: number;
  readonly time: number;
  readonly channel: string;
  /** UTF-8 bytes of the JSON: what the history limits count. */
  readonly bytes: number;
  #settled = false;
  #frame: string | null = null;
  #frameBytes: Buffer | null = null;
  #sseEvent: Buffer | null = null;
  #encodings: Map<symbol, Buffer> | null = null;

  constructor(message: ChannelMessage, json = JSON.stringify(message)) {
    this.json = json;
    this.id = message.id;
    this.time = message.time;
    this.channel = message.channel;
    this.bytes = Buffer.byteLength(json);
  }

  /** The message itself, parsed again from its JSON (rarely needed: transports send the encodings). */
  get message(): ChannelMessage {
    return JSON.parse(this.json) as ChannelMessage;
  }

  /** Let go of the shared encodings (the bus calls this after fan-out, before the message sits in history). */
  settle(): void {
    this.#settled = true;
    this.#frame = null;
    this.#frameBytes = null;
    this.#sseEvent = null;
    this.#encodings = null;
  }

  /** An encoding a transport makes (a WebSocket frame), shared while the message is fanned out. */
  encoding(kind: symbol, build: () => Buffer): Buffer {
    if (this.#settled) return build();
    this.#encodings ??= new Map();
    let encoded = this.#encodings.get(kind);
    if (!encoded) {
      encoded = build();
      this.#encodings.set(kind, encoded);
    }
    return encoded;
  }

  /** The server frame of the socket protocol (WebSocket, data channel): `{"event":"message","message":…}`. */
  get frame(): string {
    const frame = this.#frame ?? `{"event":"message","message":${this.json}}`;
    if (!this.#settled) this.#frame = frame;
    return frame;
  }

  get frameBytes(): Buffer {
    const bytes = this.#frameBytes ?? Buffer.from(this.frame);
    if (!this.#settled) this.#frameBytes = bytes;
    return bytes;
  }

  /** The Server-Sent Events block (WHATWG HTML §9.2.6): id, event name and one data line. */
  get sseEvent(): Buffer {
    // JSON.stringify escapes CR and LF inside strings, so the data is one line as SSE requires.
    const event = this.#sseEvent ?? Buffer.from(`id: ${this.id}\nevent: message\ndata: ${this.json}\n\n`);
    if (!this.#settled) this.#sseEvent = event;
    return event;
  }
}

/** The client was further behind than the history reaches (or its id is from before a server restart). */
export interface GapEvent {
  readonly channel: string;
  /** The id the client resumed from. */
  readonly since: number;
  /** How many messages it will never receive; 0 with reason `reset` when that is unknown. */
  readonly missed: number;
  /** The first id it will receive next is `resumeFrom + 1`. */
  readonly resumeFrom: number;
  /** `evicted`: aged or pushed out of the history; `reset`: the channel's ids restarted (server restart). */
  readonly reason: 'evicted' | 'reset';
}

export interface PresenceEvent {
  readonly channel: string;
  /** Open connections subscribed to the channel, across transports (and nodes, through the bus). */
  readonly connections: number;
  /** Connections per transport: `{ ws: 3, sse: 1 }`. */
  readonly transports: Readonly<Record<string, number>>;
  /** Viewers of the channel's stream (`live/cam1` for `live/cam1:chat`) across media protocols, if live. */
  readonly viewers?: number;
}

/** A presence event encoded once for every subscriber of its channel. */
export class PresenceFrame {
  readonly event: PresenceEvent;
  readonly json: string;
  #frame: string | null = null;
  #sseEvent: Buffer | null = null;

  constructor(event: PresenceEvent) {
    this.event = event;
    this.json = JSON.stringify(event);
  }

  get frame(): string {
    this.#frame ??= `{"event":"presence","presence":${this.json}}`;
    return this.#frame;
  }

  /**
   * The SSE event without its `id:` line: each SSE connection prefixes the id it is at, so Last-Event-ID
   * stays where that client's messages left it.
   */
  get sseEventBody(): Buffer {
    this.#sseEvent ??= Buffer.from(`event: presence\ndata: ${this.json}\n\n`);
    return this.#sseEvent;
  }
}
