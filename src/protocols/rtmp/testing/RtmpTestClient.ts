/**
 * Test-only: a minimal RTMP client built on our own chunk and AMF0 code, for what ffmpeg cannot do on demand:
 * reading the exact onStatus codes a refusal produces, and sending malformed input. Not used by production code.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { type Amf0Object, type Amf0Value, decodeAmf0Sequence } from '../amf0.ts';
import { ChunkReader, ChunkWriter } from '../chunk.ts';
import { HANDSHAKE_SIZE } from '../handshake.ts';
import { commandMessage, MessageType, type RtmpMessage } from '../messages.ts';

export interface ReceivedCommand {
  readonly name: string;
  readonly transaction: number;
  readonly values: Amf0Value[];
  readonly streamId: number;
}

export class RtmpTestClient {
  readonly socket: Socket;
  readonly messages: RtmpMessage[] = [];
  readonly commands: ReceivedCommand[] = [];
  readonly writer = new ChunkWriter();
  /** Resolves when the server closes (or the socket fails). */
  readonly closed: Promise<void>;
  #reader = new ChunkReader({ onMessage: (m) => this.#onMessage(m) });
  #handshakeBytes = 0;
  #waiters: (() => void)[] = [];
  #transaction = 1;

  private constructor(socket: Socket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => {
      socket.on('close', () => resolve());
      socket.on('error', () => {});
    });
    socket.on('data', (data) => this.#onData(data));
  }

  /** Opens a TCP connection; with `handshake` it also completes the RTMP handshake. */
  static async open(port: number, handshake = true): Promise<RtmpTestClient> {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    const client = new RtmpTestClient(socket);
    if (handshake) await client.handshake();
    return client;
  }

  async handshake(): Promise<void> {
    this.socket.write(Buffer.concat([Buffer.from([3]), randomBytes(HANDSHAKE_SIZE)]));
    await this.#until(() => this.#handshakeBytes >= 1 + 2 * HANDSHAKE_SIZE);
    this.socket.write(randomBytes(HANDSHAKE_SIZE));
  }

  send(message: RtmpMessage): void {
    this.socket.write(this.writer.encode(message));
  }

  raw(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  command(streamId: number, name: string, ...args: Amf0Value[]): number {
    const transaction = this.#transaction++;
    this.send(commandMessage(streamId, name, transaction, null, ...args));
    return transaction;
  }

  async connect(app: string): Promise<ReceivedCommand> {
    const transaction = this.#transaction++;
    this.send(
      commandMessage(0, 'connect', transaction, { app, tcUrl: `rtmp://127.0.0.1/${app}`, flashVer: 'test' }),
    );
    return this.waitForCommand((c) => c.transaction === transaction);
  }

  /** connect, createStream, publish: returns the onStatus info object the publish got. */
  async publish(app: string, name: string): Promise<Amf0Object> {
    await this.connect(app);
    const createTx = this.command(0, 'createStream');
    const created = await this.waitForCommand((c) => c.transaction === createTx);
    const streamId = created.values[3] as number;
    this.command(streamId, 'publish', name, 'live');
    const status = await this.waitForCommand((c) => c.name === 'onStatus' && c.streamId === streamId);
    return status.values[3] as Amf0Object;
  }

  async play(app: string, name: string): Promise<Amf0Object> {
    await this.connect(app);
    const createTx = this.command(0, 'createStream');
    const created = await this.waitForCommand((c) => c.transaction === createTx);
    const streamId = created.values[3] as number;
    this.command(streamId, 'play', name);
    const status = await this.waitForCommand((c) => c.name === 'onStatus' && c.streamId === streamId);
    return status.values[3] as Amf0Object;
  }

  async waitForCommand(match: (c: ReceivedCommand) => boolean, timeoutMs = 5000): Promise<ReceivedCommand> {
    let found: ReceivedCommand | undefined;
    await this.#until(() => {
      found = this.commands.find(match);
      return found !== undefined;
    }, timeoutMs);
    return found!;
  }

  close(): void {
    this.socket.destroy();
  }

  #onData(data: Buffer): void {
    let rest: Uint8Array = data;
    const handshakeTotal = 1 + 2 * HANDSHAKE_SIZE;
    if (this.#handshakeBytes < handshakeTotal) {
      const take = Math.min(handshakeTotal - this.#handshakeBytes, data.length);
      this.#handshakeBytes += take;
      rest = data.subarray(take);
    }
    if (rest.length > 0) this.#reader.push(rest);
    for (const w of this.#waiters) w();
  }

  #onMessage(m: RtmpMessage): void {
    this.messages.push(m);
    if (m.typeId === MessageType.CommandAmf0) {
      const values = decodeAmf0Sequence(m.payload);
      this.commands.push({
        name: String(values[0]),
        transaction: values[1] as number,
        values,
        streamId: m.streamId,
      });
    }
  }

  #until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!condition()) return;
        clearTimeout(timer);
        this.#waiters = this.#waiters.filter((w) => w !== check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== check);
        reject(new Error(`RtmpTestClient: condition not met within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.push(check);
    });
  }
}
