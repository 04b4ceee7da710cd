/**
 * Child process for test/integration/messaging-datachannel-backlog.test.ts: a node-datachannel WHEP viewer with
 * a `subsecond.messaging` data channel. It runs apart from the test runner so the test can freeze it
 * (SIGSTOP): node-datachannel's own threads read SCTP and acknowledge whether or not JavaScript handles the
 * messages, so only a stopped process (or a slow network) makes a real reader the server cannot send to.
 * It also keeps libdatachannel's teardown out of the test runner: it closes its peer and ends with
 * process.exit, as test/helpers/wrtcPeers.ts does.
 *
 * IPC: { type: 'open', base, stream } → WHEP with a data channel, replies { type: 'opened' } once `hello`
 * arrived; { type: 'send', frame } sends a frame on the current channel; { type: 'reopen' } opens a new
 * channel on the same peer connection (no renegotiation), replies { type: 'opened' }; { type: 'read' } →
 * { type: 'frames', frames, closed } (every frame the current channel got, a message as { event, id, bytes },
 * and whether it closed);
 * { type: 'close' } closes the peer and exits 0. Errors reply { type: 'error', message }.
 */
import type { DataChannel } from 'node-datachannel';
import { connected, createTestPeer, type TestPeer } from './webrtcClient.ts';

const LABEL = 'subsecond.messaging';

export type PeerCommand =
  | { type: 'open'; base: string; stream: string }
  | { type: 'send'; frame: Record<string, unknown> }
  | { type: 'reopen' }
  | { type: 'read' }
  | { type: 'close' };

export interface PeerFrames {
  type: 'frames';
  frames: ({ event: string } & Record<string, unknown>)[];
  /** The channel's onClosed fired. */
  closed: boolean;
}

let peer: TestPeer | null = null;
let channel: { dc: DataChannel; frames: PeerFrames['frames']; closed: boolean } | null = null;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Wraps a channel as it is created: what arrives before `onMessage` is set is not kept. */
async function adopt(dc: DataChannel): Promise<void> {
  const current = { dc, frames: [] as PeerFrames['frames'], closed: false };
  channel = current;
  dc.onMessage((data) => {
    const text = String(data);
    const frame = JSON.parse(text) as PeerFrames['frames'][number];
    // Messages as their id and size only: a burst of them crosses IPC at every read.
    current.frames.push(
      frame.event === 'message'
        ? { event: 'message', id: (frame.message as { id: number }).id, bytes: Buffer.byteLength(text) }
        : frame,
    );
  });
  dc.onClosed(() => {
    current.closed = true;
  });
  const end = Date.now() + 10_000;
  while (!current.frames.some((f) => f.event === 'hello')) {
    if (Date.now() > end) throw new Error('no hello on the data channel within 10 s');
    await sleep(20);
  }
}

async function open(base: string, stream: string): Promise<void> {
  peer = await createTestPeer({ video: 'H264', direction: 'RecvOnly', dataChannel: LABEL });
  const dc = peer.dataChannel;
  if (!dc) throw new Error('the test peer has no data channel');
  const pending = adopt(dc);
  const response = await fetch(`${base}/whep/${stream}`, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp' },
    body: peer.offer,
  });
  const answer = await response.text();
  if (response.status !== 201) throw new Error(`WHEP answered ${response.status}: ${answer}`);
  peer.pc.setRemoteDescription(answer, 'answer');
  await connected(peer.pc);
  await pending;
}

async function handle(command: PeerCommand): Promise<unknown> {
  switch (command.type) {
    case 'open':
      await open(command.base, command.stream);
      return { type: 'opened' };
    case 'send':
      if (!channel) throw new Error('send before open');
      channel.dc.sendMessage(JSON.stringify(command.frame));
      return { type: 'sent' };
    case 'reopen':
      if (!peer) throw new Error('reopen before open');
      await adopt(peer.pc.createDataChannel(LABEL));
      return { type: 'opened' };
    case 'read':
      return { type: 'frames', frames: channel?.frames ?? [], closed: channel?.closed ?? false };
    case 'close':
      peer?.close();
      setTimeout(() => process.exit(0), 100);
      return { type: 'closing' };
  }
}

process.on('message', (command: PeerCommand) => {
  handle(command).then(
    (reply) => process.send?.(reply),
    (error: Error) => process.send?.({ type: 'error', message: error.message }),
  );
});
process.on('disconnect', () => process.exit(0));
