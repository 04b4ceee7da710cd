/**
 * The browser side of the latency benchmark's own sources, on one page (served by BenchPages at /source):
 *   ?mode=floor-webrtc   the stamped canvas through a local RTCPeerConnection pair (H.264) into a video element:
 *                        what the browser's WebRTC encode, jitter buffer, decode and render cost, no server
 *   ?mode=floor-mse      the stamped canvas encoded by WebCodecs (H.264, realtime), muxed by Subsecond's own
 *                        fMP4 writer one fragment per frame and appended to MSE: the browser's MSE floor
 *   ?mode=whip&url=…     the stamped canvas (+ an oscillator) published over WHIP (RFC 9725) to `url`
 * The floors show their video here and measure it with the same LatencyMeter as every viewer.
 */
import { bandHeight, CELLS, cellLeft, encodeCells } from '../../client/latency/barcode.ts';
import { LatencyMeter } from '../../client/latency/LatencyMeter.ts';
import {
  DEFAULT_LIVE_EDGE,
  LiveEdgeController,
  timeRanges,
} from '../../client/player/mse/LiveEdgeController.ts';
import type { Track } from '../../src/media/Frame.ts';
import { FragmentWriter } from '../../src/media/fmp4/fragment.ts';
import { writeInitSegment } from '../../src/media/fmp4/init.ts';

declare global {
  interface Window {
    /** What the page is doing, for the benchmark: `running`, or `failed: …`. */
    sourceState?: string;
  }
}

const params = new URLSearchParams(location.search);
const mode = params.get('mode') ?? '';
const width = Number(params.get('width') ?? 1280);
const height = Number(params.get('height') ?? 720);
const fps = Number(params.get('fps') ?? 30);
const bitrate = Number(params.get('bitrate') ?? 2_500_000);
const video = document.querySelector('video') as HTMLVideoElement;
const canvas = document.createElement('canvas');
canvas.width = width;
canvas.height = height;
const ctx = canvas.getContext('2d')!;
let frameNumber = 0;

/** Moving stripes and a box (so the encoder does real work), then the time stamp, last, just before capture. */
function draw(): void {
  const n = frameNumber++;
  const top = bandHeight(height);
  ctx.fillStyle = '#404040';
  ctx.fillRect(0, top, width, height - top);
  ctx.fillStyle = '#909090';
  for (let x = -height + ((n * 8) % 64); x < width; x += 64) {
    ctx.beginPath();
    ctx.moveTo(x, height);
    ctx.lineTo(x + 32, height);
    ctx.lineTo(x + 32 + height - top, top);
    ctx.lineTo(x + height - top, top);
    ctx.fill();
  }
  const box = Math.round(height / 5);
  ctx.fillStyle = '#ebebeb';
  ctx.fillRect(Math.abs(((n * 12) % (2 * (width - box))) - (width - box)), top + box, box, box);
  // The wall clock, as the viewer reads it (LatencyMeter): pages' timeOrigins can disagree.
  const cells = encodeCells(Date.now());
  for (let cell = 0; cell < CELLS; cell++) {
    ctx.fillStyle = cells[cell] ? '#ebebeb' : '#101010';
    ctx.fillRect(cellLeft(width, cell), 0, cellLeft(width, cell + 1) - cellLeft(width, cell), top);
  }
}

function startDrawing(): void {
  draw();
  setInterval(draw, 1000 / fps);
}

function measure(label: string): void {
  window.latencyTransport = label;
  window.subsecondLatency = new LatencyMeter(video).start();
  video.muted = true;
  void video.play().catch(() => {});
}

function preferH264(transceiver: RTCRtpTransceiver): void {
  const codecs = RTCRtpSender.getCapabilities('video')?.codecs ?? [];
  const h264 = codecs.filter(
    (c) => c.mimeType === 'video/H264' && /packetization-mode=1/.test(c.sdpFmtpLine ?? ''),
  );
  if (h264.length) transceiver.setCodecPreferences([...h264, ...codecs.filter((c) => !h264.includes(c))]);
}

async function floorWebRtc(): Promise<void> {
  startDrawing();
  const stream = canvas.captureStream(fps);
  const a = new RTCPeerConnection();
  const b = new RTCPeerConnection();
  a.onicecandidate = (e) => e.candidate && void b.addIceCandidate(e.candidate);
  b.onicecandidate = (e) => e.candidate && void a.addIceCandidate(e.candidate);
  b.ontrack = (e) => {
    video.srcObject = e.streams[0] ?? new MediaStream([e.track]);
    measure('floor-webrtc');
  };
  const transceiver = a.addTransceiver(stream.getVideoTracks()[0], {
    direction: 'sendonly',
    streams: [stream],
  });
  preferH264(transceiver);
  const params = transceiver.sender.getParameters();
  params.encodings = [{ maxBitrate: bitrate }];
  await a.setLocalDescription();
  await b.setRemoteDescription(a.localDescription!);
  await b.setLocalDescription();
  await a.setRemoteDescription(b.localDescription!);
  await transceiver.sender.setParameters(params).catch(() => {});
}

async function floorMse(): Promise<void> {
  const config: VideoEncoderConfig = {
    codec: 'avc1.42e01f',
    width,
    height,
    bitrate,
    framerate: fps,
    latencyMode: 'realtime',
    avc: { format: 'avc' },
  };
  const support = await VideoEncoder.isConfigSupported(config);
  if (!support.supported)
    throw new Error(`this browser's WebCodecs cannot encode ${config.codec} at ${width}x${height}`);
  const source = new MediaSource();
  video.src = URL.createObjectURL(source);
  await new Promise((resolve) => source.addEventListener('sourceopen', resolve, { once: true }));
  const writer = new FragmentWriter();
  const queue: Uint8Array[] = [];
  let buffer: SourceBuffer | null = null;
  let track: Track | null = null;
  const pump = () => {
    if (!buffer || buffer.updating || queue.length === 0) return;
    buffer.appendBuffer(queue.shift() as Uint8Array<ArrayBuffer>);
  };
  const encoder = new VideoEncoder({
    output(chunk, meta) {
      const description = meta?.decoderConfig?.description;
      if (!track && description) {
        const codec = meta?.decoderConfig?.codec ?? config.codec;
        const avcC = ArrayBuffer.isView(description)
          ? new Uint8Array(description.buffer, description.byteOffset, description.byteLength)
          : new Uint8Array(description);
        track = {
          id: 1,
          kind: 'video',
          codec: 'h264',
          timescale: 90_000,
          config: avcC.slice(),
          codecString: codec,
          width,
          height,
        };
        buffer = source.addSourceBuffer(`video/mp4; codecs="${codec}"`);
        buffer.mode = 'segments';
        buffer.addEventListener('updateend', pump);
        // The player's own live-edge policy (start, catch-up, gaps when the encoder stalls), so this floor is
        // the browser's cost under the same control as the Subsecond player's MSE transport.
        const edge = new LiveEdgeController(video, DEFAULT_LIVE_EDGE);
        setInterval(() => edge.tick(timeRanges(buffer!.buffered)), 100);
        queue.push(writeInitSegment([track]));
        measure('floor-mse');
      }
      if (!track) return;
      const data = new Uint8Array(chunk.byteLength);
      chunk.copyTo(data);
      const dts = Math.round((chunk.timestamp * 90) / 1000);
      queue.push(
        writer.fragment(
          track,
          {
            trackId: 1,
            dts,
            pts: dts,
            duration: 0,
            keyframe: chunk.type === 'key',
            data,
            arrival: performance.now(),
          },
          Math.round(90_000 / fps),
        ),
      );
      pump();
    },
    error(e) {
      window.sourceState = `failed: ${e.message}`;
    },
  });
  encoder.configure(config);
  const start = performance.now();
  draw();
  setInterval(() => {
    draw();
    const frame = new VideoFrame(canvas, { timestamp: Math.round((performance.now() - start) * 1000) });
    encoder.encode(frame, { keyFrame: frameNumber % (fps * 2) === 1 });
    frame.close();
  }, 1000 / fps);
}

async function whip(url: string): Promise<void> {
  startDrawing();
  const stream = canvas.captureStream(fps);
  const audio = new AudioContext();
  const tone = audio.createOscillator();
  const destination = audio.createMediaStreamDestination();
  tone.frequency.value = 440;
  tone.connect(destination);
  tone.start();
  const pc = new RTCPeerConnection();
  const transceiver = pc.addTransceiver(stream.getVideoTracks()[0], { direction: 'sendonly' });
  preferH264(transceiver);
  pc.addTransceiver(destination.stream.getAudioTracks()[0], { direction: 'sendonly' });
  await pc.setLocalDescription();
  // Non-trickle WHIP: the offer carries every candidate.
  await new Promise<void>((resolve) => {
    if (pc.iceGatheringState === 'complete') resolve();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
    setTimeout(resolve, 2000);
  });
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp' },
    body: pc.localDescription!.sdp,
  });
  if (response.status !== 201) throw new Error(`WHIP answered ${response.status}: ${await response.text()}`);
  await pc.setRemoteDescription({ type: 'answer', sdp: await response.text() });
  const params = transceiver.sender.getParameters();
  params.encodings = [{ maxBitrate: bitrate }];
  await transceiver.sender.setParameters(params).catch(() => {});
}

const run =
  mode === 'floor-webrtc'
    ? floorWebRtc()
    : mode === 'floor-mse'
      ? floorMse()
      : mode === 'whip'
        ? whip(params.get('url') ?? '')
        : Promise.reject(new Error(`unknown mode "${mode}": floor-webrtc, floor-mse or whip`));
run.then(
  () => {
    window.sourceState ??= 'running';
  },
  (error: Error) => {
    window.sourceState = `failed: ${error.message}`;
  },
);
