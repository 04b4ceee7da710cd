/**
 * A WHEP viewer that may only use a TURN relay (iceTransportPolicy 'relay') still plays: a real coturn
 * (`turnserver`, Debian package `coturn`, installed by scripts/setup) runs on loopback with a static user, the
 * server hands it to clients in its `Link: rel="ice-server"` headers, and headless Chromium reads them,
 * allocates a relay and plays an RTMP stream through it. getStats proves the selected pair is relayed.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type RunningServer, startServer } from '../../src/server.ts';
import { type ChromiumSession, closeServerThenBrowser, launchChromium } from '../helpers/browser.ts';
import { publishTestSource, stop, waitFor } from '../helpers/processes.ts';
import { playWhep, whepStats } from '../helpers/whepPage.ts';

const TURN_USER = 'subsecond';
const TURN_PASSWORD = randomBytes(12).toString('hex');

let turn: ChildProcess;
let turnLog = '';
let turnDir = '';
let turnPort = 0;
let server: RunningServer;
let browser: ChromiumSession;

/** A UDP port free right now (the kernel's pick for port 0); coturn binds it a moment later. */
function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

/** Whether a STUN Binding request (RFC 8489 §6: type 0x0001, magic cookie) to the port gets a success answer. */
function stunAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    const request = Buffer.alloc(20);
    request.writeUInt16BE(0x0001, 0);
    request.writeUInt32BE(0x2112a442, 4);
    randomBytes(12).copy(request, 8);
    const done = (answered: boolean) => {
      clearTimeout(timer);
      socket.close();
      resolve(answered);
    };
    const timer = setTimeout(() => done(false), 300);
    socket.on('message', (message) =>
      done(message.readUInt16BE(0) === 0x0101 && message.subarray(8, 20).equals(request.subarray(8, 20))),
    );
    socket.on('error', () => done(false));
    socket.send(request, port, '127.0.0.1');
  });
}

before(async () => {
  turnDir = await mkdtemp(join(tmpdir(), 'subsecond-coturn-'));
  turnPort = await freeUdpPort();
  // -n: no /etc/turnserver.conf; everything is on the command line. The relay and the listener are on
  // loopback, and loopback peers (the Subsecond server's 127.0.0.1 candidate) must be allowed explicitly.
  turn = spawn(
    'turnserver',
    [
      '-n',
      `--listening-ip=127.0.0.1`,
      `--relay-ip=127.0.0.1`,
      `--listening-port=${turnPort}`,
      '--lt-cred-mech',
      `--user=${TURN_USER}:${TURN_PASSWORD}`,
      '--realm=subsecond.test',
      '--fingerprint',
      '--allow-loopback-peers',
      '--no-cli',
      '--no-tls',
      '--no-dtls',
      '--no-tcp-relay',
      '--log-file=stdout',
      '--simple-log',
      `--pidfile=${join(turnDir, 'turnserver.pid')}`,
      `--userdb=${join(turnDir, 'turndb')}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const keep = (d: Buffer) => {
    turnLog = (turnLog + d.toString()).slice(-8000);
  };
  turn.stdout?.on('data', keep);
  turn.stderr?.on('data', keep);
  await waitFor(
    `coturn to answer STUN on 127.0.0.1:${turnPort}`,
    () => {
      if (turn.exitCode !== null) throw new Error(`turnserver exited ${turn.exitCode}: ${turnLog}`);
      return stunAnswers(turnPort);
    },
    20_000,
  ).catch((err: Error) => {
    // Once (under load) coturn ran without answering for 10 s; what it logged says why.
    throw new Error(`${err.message}; turnserver's log ends: ${turnLog.slice(-2000)}`);
  });
  server = await startServer({
    http: { host: '127.0.0.1', port: 0 },
    rtmp: { host: '127.0.0.1', port: 0 },
    webrtc: {
      udpPort: 0,
      inactivityTimeoutMs: 3000,
      iceServers: [
        { urls: `turn:127.0.0.1:${turnPort}?transport=udp`, username: TURN_USER, credential: TURN_PASSWORD },
      ],
    },
    hls: { enabled: false },
    log: { level: 'warn' },
  });
  browser = await launchChromium();
});

after(async () => {
  await closeServerThenBrowser(server, browser);
  await stop(turn);
  if (turnDir) await rm(turnDir, { recursive: true, force: true });
});

test('a relay-only WHEP viewer plays through coturn, with the ICE servers from the Link headers', async () => {
  const path = 'live/relayed';
  const ffmpeg = publishTestSource(`${server.rtmpUrl}/${path}`, { size: '640x360', rate: 30, gop: 30 });
  try {
    await waitFor(`${path} to be ready`, () => server.registry.get(path)?.ready);
    const page = await browser.newPage();
    await page.goto(`${server.httpUrl}/healthz`);
    // Non-trickle: the offer carries the relay candidate.
    const played = await playWhep(page, `${server.httpUrl}/whep/${path}`, {
      iceServersFromLinks: true,
      iceTransportPolicy: 'relay',
      gatherBeforeOffer: true,
      frames: 30,
      timeoutMs: 15_000,
    });
    const stats = await whepStats(page);
    const result = {
      iceServers: played.iceServers,
      offeredTypes: [...played.offer.matchAll(/ typ (\w+)/g)].map((m) => m[1]),
      framesDecoded: stats.framesDecoded,
      localCandidate: stats.localCandidate,
      width: stats.width,
    };
    console.log(`relay-only WHEP viewer: ${JSON.stringify(result)}`);
    assert.deepEqual(result.iceServers, [
      { urls: `turn:127.0.0.1:${turnPort}?transport=udp`, username: TURN_USER, credential: TURN_PASSWORD },
    ]);
    assert.ok(result.offeredTypes.length > 0, 'the offer has candidates');
    assert.ok(
      result.offeredTypes.every((t) => t === 'relay'),
      `relay-only: ${result.offeredTypes}`,
    );
    assert.equal(result.localCandidate?.type, 'relay', 'the selected candidate pair goes through the relay');
    assert.equal(result.localCandidate?.relayProtocol, 'udp');
    assert.ok(result.framesDecoded >= 30, `${result.framesDecoded} frames decoded`);
    assert.equal(result.width, 640);
    const viewer = server.webrtc?.viewers.find((s) => s.path === path);
    assert.ok(viewer?.connectedAt, 'the WHEP session is connected');
    await page.close();
    await waitFor('the viewer session to end', () => server.webrtc?.viewers.length === 0, 10_000);
  } finally {
    await stop(ffmpeg);
  }
});
