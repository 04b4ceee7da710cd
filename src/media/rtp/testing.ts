/**
 * Test-only: ffmpeg as an independent RTP sender and receiver over real loopback UDP, the oracle for our
 * packetizers and depacketizers. Not imported by production code.
 */
import { spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const LOOPBACK = '127.0.0.1';

/** A temporary directory removed once `fn` settles. */
export async function withTempDirAsync<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'subsecond-rtp-'));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function bind(port = 0): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket({ type: 'udp4', recvBufferSize: 8 * 1024 * 1024 });
    socket.once('error', reject);
    socket.bind(port, LOOPBACK, () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

function run(args: readonly string[], timeoutMs: number): Promise<{ stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ffmpeg ${args.join(' ')} did not finish in ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout: Buffer.concat(out), stderr });
      else reject(new Error(`ffmpeg exited with ${code}: ${stderr}`));
    });
  });
}

/**
 * Runs ffmpeg with `inputArgs` and an RTP output to a local socket pair; returns the RTP packets it sent and
 * the RTCP packets (sender reports) it sent to the next port, in arrival order (loopback keeps order).
 * `pktSize` bounds ffmpeg's whole RTP packets.
 */
export async function rtpAndRtcpFromFfmpeg(
  inputArgs: readonly string[],
  pktSize = 1212,
): Promise<{ rtp: Uint8Array[]; rtcp: Uint8Array[] }> {
  const port = await freePortPair();
  const rtpSocket = await bind(port);
  const rtcpSocket = await bind(port + 1);
  const rtp: Uint8Array[] = [];
  const rtcp: Uint8Array[] = [];
  rtpSocket.on('message', (msg) => rtp.push(new Uint8Array(msg)));
  rtcpSocket.on('message', (msg) => rtcp.push(new Uint8Array(msg)));
  try {
    await run([...inputArgs, '-f', 'rtp', `rtp://${LOOPBACK}:${port}?pkt_size=${pktSize}`], 60_000);
    // Datagrams already queued on loopback are delivered on the next turns of the event loop.
    await new Promise((r) => setTimeout(r, 200));
    return { rtp, rtcp };
  } finally {
    rtpSocket.close();
    rtcpSocket.close();
  }
}

/** The RTP packets of `rtpAndRtcpFromFfmpeg`. */
export async function rtpFromFfmpeg(inputArgs: readonly string[], pktSize = 1212): Promise<Uint8Array[]> {
  return (await rtpAndRtcpFromFfmpeg(inputArgs, pktSize)).rtp;
}

/** Two free consecutive UDP ports starting at an even one (ffmpeg's RTP input binds RTP and RTCP). */
async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const probe = await bind();
    const port = probe.address().port & ~1;
    probe.close();
    try {
      const a = await bind(port);
      const b = await bind(port + 1);
      a.close();
      b.close();
      return port;
    } catch {
      // taken, try another
    }
  }
  throw new Error('no free UDP port pair on loopback after 20 attempts');
}

function udpPortBound(port: number): boolean {
  const suffix = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  // /proc/net/udp: "  sl  local_address rem_address ...", addresses as hex IP:port
  return readFileSync('/proc/net/udp', 'utf8')
    .split('\n')
    .some((line) => line.trim().split(/\s+/)[1]?.endsWith(suffix));
}

/**
 * Starts ffmpeg reading an SDP that describes one RTP stream on a local port (`mediaLines` are the m= line's
 * attributes, `m=` itself included with PORT as placeholder), waits until it listens, sends `frames` (lists of
 * packets) paced a few ms apart, and returns ffmpeg's stdout for `outputArgs`.
 */
export async function rtpToFfmpeg(
  dir: string,
  mediaLines: readonly string[],
  frames: readonly Uint8Array[][],
  outputArgs: readonly string[],
): Promise<Buffer> {
  const port = await freePortPair();
  const sdp = [
    'v=0',
    `o=- 0 0 IN IP4 ${LOOPBACK}`,
    's=subsecond test',
    `c=IN IP4 ${LOOPBACK}`,
    't=0 0',
    ...mediaLines.map((l) => l.replace('PORT', String(port))),
    '',
  ].join('\r\n');
  const sdpFile = join(dir, 'in.sdp');
  writeFileSync(sdpFile, sdp);
  // Probing stops at the first packet and the decoder runs single-threaded, so ffmpeg emits each picture as
  // soon as its packets arrive instead of waiting for more input (or its 10 s read timeout).
  const input = [
    '-threads',
    '1',
    '-analyzeduration',
    '0',
    '-probesize',
    '32',
    '-protocol_whitelist',
    'file,udp,rtp',
  ];
  const result = run([...input, '-i', sdpFile, ...outputArgs, '-'], 60_000);
  let failed: unknown;
  result.catch((err) => {
    failed = err;
  });
  const deadline = Date.now() + 20_000;
  while (!udpPortBound(port)) {
    if (failed) throw failed;
    if (Date.now() > deadline) throw new Error(`ffmpeg did not bind UDP port ${port} within 20 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const socket = await bind();
  try {
    for (const frame of frames) {
      for (const packet of frame) socket.send(packet, port, LOOPBACK);
      await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    setTimeout(() => socket.close(), 100);
  }
  return (await result).stdout;
}

/** Frames of an IVF file (32-byte file header, then 12-byte frame headers: size LE32, pts LE64). */
export function ivfFrames(ivf: Uint8Array): Uint8Array[] {
  const view = new DataView(ivf.buffer, ivf.byteOffset, ivf.byteLength);
  if (ivf.length < 32 || view.getUint32(0, false) !== 0x444b4946) throw new Error('not an IVF file');
  const headerSize = view.getUint16(6, true);
  const frames: Uint8Array[] = [];
  for (let p = headerSize; p + 12 <= ivf.length; ) {
    const size = view.getUint32(p, true);
    frames.push(ivf.subarray(p + 12, p + 12 + size));
    p += 12 + size;
  }
  return frames;
}
