/**
 * Child process for test/integration/wrtc.test.ts: a libwebrtc (@roamhq/wrtc) publisher and viewer. It runs
 * apart from the test runner because @roamhq/wrtc 0.10 crashes in its N-API finalizers when Node 24 tears
 * an environment down (V8 "Check failed: node->IsInUse()", SIGSEGV); process.exit skips that teardown, so
 * this process ends with it once its peers are closed.
 *
 * IPC: { type: 'run', base, stream, codec } → publishes `codec` + Opus over WHIP, plays over WHEP, replies
 * { type: 'played', … }; { type: 'close' } → stops everything and exits 0. Errors reply { type: 'error' }.
 */
import wrtc from '@roamhq/wrtc';

const { RTCPeerConnection, nonstandard } = wrtc;
const WIDTH = 320;
const HEIGHT = 240;

const peers: RTCPeerConnection[] = [];
const timers: NodeJS.Timeout[] = [];
/** Sinks and tracks: libwebrtc keeps the process alive while any of them runs. */
const stoppable: { stop(): void }[] = [];

export interface Played {
  type: 'played';
  whip: { location: string; answer: string };
  whep: { location: string; answer: string };
  publisherState: string;
  /** Size of the last ten frames the RTCVideoSink got, and how many it got. */
  lastFrames: { width: number; height: number }[];
  frames: number;
  audioBlocks: number;
  audioRate: number;
  framesDecoded: number;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/** Non-trickle, as RFC 9725 allows: the offer goes out with every candidate gathered. */
async function negotiate(pc: RTCPeerConnection, url: string): Promise<{ location: string; answer: string }> {
  await pc.setLocalDescription(await pc.createOffer());
  await until('ICE gathering', () => pc.iceGatheringState === 'complete', 10_000);
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp' },
    body: pc.localDescription?.sdp ?? '',
  });
  const answer = await response.text();
  if (response.status !== 201) throw new Error(`${url} answered ${response.status}: ${answer}`);
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  return { location: new URL(response.headers.get('location') ?? '', url).href, answer };
}

/** A moving test picture: a luma gradient that shifts each frame, neutral chroma. */
function i420Frame(n: number): { width: number; height: number; data: Uint8Array } {
  const data = new Uint8Array(WIDTH * HEIGHT * 1.5);
  for (let y = 0; y < HEIGHT; y++)
    for (let x = 0; x < WIDTH; x++) data[y * WIDTH + x] = (x + y + n * 4) & 0xff;
  data.fill(128, WIDTH * HEIGHT);
  return { width: WIDTH, height: HEIGHT, data };
}

async function run(base: string, stream: string, codec: string): Promise<Played> {
  const video = new nonstandard.RTCVideoSource();
  const audio = new nonstandard.RTCAudioSource();
  const publisher = new RTCPeerConnection();
  peers.push(publisher);
  const videoTrack = video.createTrack();
  const audioTrack = audio.createTrack();
  stoppable.push(videoTrack, audioTrack);
  const sender = publisher.addTransceiver(videoTrack, { direction: 'sendonly' });
  publisher.addTransceiver(audioTrack, { direction: 'sendonly' });
  // Only this codec (and its retransmission format) in the offer: the server answers by its own preference.
  const capabilities = wrtc.RTCRtpSender.getCapabilities('video')?.codecs ?? [];
  sender.setCodecPreferences(
    capabilities.filter((c) => c.mimeType === `video/${codec}` || c.mimeType === 'video/rtx'),
  );
  let frame = 0;
  timers.push(setInterval(() => video.onFrame(i420Frame(frame++)), 33));
  // 10 ms of a 440 Hz tone per call, the unit libwebrtc's audio pipeline works in.
  const samples = new Int16Array(480);
  let t = 0;
  timers.push(
    setInterval(() => {
      for (let i = 0; i < samples.length; i++)
        samples[i] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * t++) / 48_000));
      audio.onData({ samples, sampleRate: 48_000, bitsPerSample: 16, channelCount: 1, numberOfFrames: 480 });
    }, 10),
  );
  const whip = await negotiate(publisher, `${base}/whip/${stream}`);
  await until('the WHIP publisher to connect', () => publisher.connectionState === 'connected', 15_000);
  await until(
    'video and audio from the WHIP publisher on the server',
    async () => {
      const { sessions } = (await (await fetch(`${base}/api/v1/webrtc/sessions`)).json()) as {
        sessions: { kind: string; path: string; tracks?: { packetsReceived?: number }[] }[];
      };
      const tracks = sessions.find((s) => s.kind === 'whip' && s.path === stream)?.tracks ?? [];
      return tracks.length === 2 && tracks.every((tr) => (tr.packetsReceived ?? 0) > 0);
    },
    15_000,
  );

  const viewer = new RTCPeerConnection();
  peers.push(viewer);
  viewer.addTransceiver('video', { direction: 'recvonly' });
  viewer.addTransceiver('audio', { direction: 'recvonly' });
  const frames: { width: number; height: number }[] = [];
  let audioBlocks = 0;
  let audioRate = 0;
  viewer.ontrack = ({ track }) => {
    stoppable.push(track);
    if (track.kind === 'video') {
      const sink = new nonstandard.RTCVideoSink(track);
      stoppable.push(sink);
      sink.onframe = ({ frame: f }: { frame: { width: number; height: number } }) =>
        frames.push({ width: f.width, height: f.height });
    } else {
      const sink = new nonstandard.RTCAudioSink(track);
      stoppable.push(sink);
      sink.ondata = ({ sampleRate }: { sampleRate: number }) => {
        audioBlocks++;
        audioRate = sampleRate;
      };
    }
  };
  const whep = await negotiate(viewer, `${base}/whep/${stream}`);
  await until('30 video frames in the WHEP viewer', () => frames.length >= 30, 20_000);
  // 100 blocks of 10 ms: a second of decoded Opus.
  await until('a second of audio in the WHEP viewer', () => audioBlocks >= 100, 20_000);
  const stats = (await viewer.getStats()) as Map<string, Record<string, unknown>>;
  const videoIn = [...stats.values()].find(
    (s) => s.type === 'inbound-rtp' && (s.kind === 'video' || s.mediaType === 'video'),
  );
  return {
    type: 'played',
    whip,
    whep,
    publisherState: publisher.connectionState,
    lastFrames: frames.slice(-10),
    frames: frames.length,
    audioBlocks,
    audioRate,
    framesDecoded: Number(videoIn?.framesDecoded ?? 0),
  };
}

type Command = { type: 'run'; base: string; stream: string; codec: string } | { type: 'close' };

process.on('message', (command: Command) => {
  if (command.type === 'run') {
    run(command.base, command.stream, command.codec).then(
      (played) => process.send?.(played),
      (error: Error) => process.send?.({ type: 'error', message: error.message }),
    );
  } else {
    for (const timer of timers) clearInterval(timer);
    for (const s of stoppable) s.stop();
    for (const pc of peers) pc.close();
    setTimeout(() => process.exit(0), 100);
  }
});
process.on('disconnect', () => process.exit(0));
