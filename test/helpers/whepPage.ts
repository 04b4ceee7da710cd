import type { Page } from 'playwright-core';

/**
 * A WHEP viewer inside a Chromium page (RTCPeerConnection, offer, POST, answer, a <video> it plays into), and
 * what the page can tell about it: rendered frames, getStats counters, the negotiated codecs, the selected
 * candidate pair. One viewer per page; the page keeps it as `window.whepViewer` between the calls here.
 */
export interface WhepViewerOptions {
  /** Offer only this video codec (the part after `video/`: 'VP8', 'H264'…); all Chromium has by default. */
  videoCodec?: string;
  /** Receive audio as well as video (default true). */
  audio?: boolean;
  /** RFC 9725 §4.6: ask the endpoint for its ICE servers (Link headers of an OPTIONS answer) before offering. */
  iceServersFromLinks?: boolean;
  iceTransportPolicy?: RTCIceTransportPolicy;
  /** Non-trickle: wait (up to 5 s) for ICE gathering to complete, so the POSTed offer carries every candidate. */
  gatherBeforeOffer?: boolean;
}

export interface WhepAnswer {
  status: number;
  location: string;
  /** The answer SDP on 201, else the error the endpoint gave. */
  body: string;
  /** The offer as POSTed. */
  offer: string;
  /** The ICE servers the peer connection was made with. */
  iceServers: RTCIceServer[];
}

export interface WhepStats {
  /** Frames the <video> presented (requestVideoFrameCallback) since the answer. */
  framesRendered: number;
  framesDecoded: number;
  audioPackets: number;
  /** mimeType of the inbound video and audio codecs ('video/VP9', 'audio/opus'), '' before any packet. */
  videoCodec: string;
  audioCodec: string;
  /** Audio tracks on the <video>'s stream. */
  audioTracks: number;
  width: number;
  height: number;
  connection: RTCPeerConnectionState;
  /** The local side of the selected candidate pair, once there is one. */
  localCandidate: { type?: string; address?: string; relayProtocol?: string } | null;
}

/** Starts the viewer and resolves once the POST is answered (and the answer applied on 201); never throws on status. */
export function startWhepViewer(
  page: Page,
  url: string,
  options: WhepViewerOptions = {},
): Promise<WhepAnswer> {
  return page.evaluate(
    async ([whepUrl, o]) => {
      const iceServers: RTCIceServer[] = [];
      if (o.iceServersFromLinks) {
        const answer = await fetch(whepUrl, { method: 'OPTIONS' });
        for (const link of (answer.headers.get('link') ?? '').split(/,\s*(?=<)/)) {
          const target = /^<([^>]+)>/.exec(link)?.[1];
          if (!target || !/rel="ice-server"/.test(link)) continue;
          const username = /username="([^"]*)"/.exec(link)?.[1];
          const credential = /credential="([^"]*)"/.exec(link)?.[1];
          iceServers.push({ urls: target, username, credential });
        }
      }
      const pc = new RTCPeerConnection(
        o.iceServersFromLinks || o.iceTransportPolicy
          ? { iceServers, iceTransportPolicy: o.iceTransportPolicy ?? 'all' }
          : undefined,
      );
      const video = document.createElement('video');
      video.muted = true;
      video.autoplay = true;
      video.playsInline = true;
      document.body.append(video);
      const viewer = { pc, video, frames: 0, firstFrameMs: 0, onFrame: null as (() => void) | null };
      (window as unknown as { whepViewer: typeof viewer }).whepViewer = viewer;
      const transceiver = pc.addTransceiver('video', { direction: 'recvonly' });
      if (o.videoCodec) {
        const codecs = RTCRtpReceiver.getCapabilities('video')!.codecs;
        transceiver.setCodecPreferences(codecs.filter((c) => c.mimeType === `video/${o.videoCodec}`));
      }
      if (o.audio ?? true) pc.addTransceiver('audio', { direction: 'recvonly' });
      const stream = new MediaStream();
      pc.ontrack = (event) => {
        stream.addTrack(event.track);
        video.srcObject = stream;
      };
      await pc.setLocalDescription(await pc.createOffer());
      if (o.gatherBeforeOffer) {
        await new Promise<void>((resolve) => {
          if (pc.iceGatheringState === 'complete') return resolve();
          const timer = setTimeout(resolve, 5000);
          pc.addEventListener('icegatheringstatechange', () => {
            if (pc.iceGatheringState === 'complete') {
              clearTimeout(timer);
              resolve();
            }
          });
        });
      }
      const offer = pc.localDescription!.sdp;
      const started = performance.now();
      const response = await fetch(whepUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp' },
        body: offer,
      });
      const body = await response.text();
      if (response.status === 201) {
        await pc.setRemoteDescription({ type: 'answer', sdp: body });
        const onFrame = () => {
          viewer.frames++;
          if (viewer.frames === 1) viewer.firstFrameMs = performance.now() - started;
          viewer.onFrame?.();
          video.requestVideoFrameCallback(onFrame);
        };
        video.requestVideoFrameCallback(onFrame);
      }
      return {
        status: response.status,
        location: response.headers.get('location') ?? '',
        body,
        offer,
        iceServers,
      };
    },
    [url, options] as const,
  );
}

/**
 * Resolves with the ms from the POST to the first rendered frame once the viewer's <video> has presented
 * `count` frames; rejects after `timeoutMs`. One wait at a time per page (a second replaces the first's hook).
 */
export function waitForFrames(page: Page, count: number, timeoutMs: number): Promise<number> {
  return page.evaluate(
    ([count, timeoutMs]) => {
      const viewer = (
        window as unknown as {
          whepViewer: { frames: number; firstFrameMs: number; onFrame: (() => void) | null };
        }
      ).whepViewer;
      return new Promise<number>((resolve, reject) => {
        if (viewer.frames >= count) return resolve(viewer.firstFrameMs);
        const timer = setTimeout(() => {
          viewer.onFrame = null;
          reject(new Error(`${viewer.frames} of ${count} video frames within ${timeoutMs / 1000} s`));
        }, timeoutMs);
        viewer.onFrame = () => {
          if (viewer.frames < count) return;
          clearTimeout(timer);
          viewer.onFrame = null;
          resolve(viewer.firstFrameMs);
        };
      });
    },
    [count, timeoutMs] as const,
  );
}

/**
 * The viewer as most tests want it: answered 201 (else an error with the endpoint's reason) and `frames`
 * frames rendered within `timeoutMs` (default: the first within 10 s).
 */
export async function playWhep(
  page: Page,
  url: string,
  options: WhepViewerOptions & { frames?: number; timeoutMs?: number } = {},
): Promise<WhepAnswer & { firstFrameMs: number }> {
  const { frames = 1, timeoutMs = 10_000, ...viewerOptions } = options;
  const answer = await startWhepViewer(page, url, viewerOptions);
  if (answer.status !== 201) throw new Error(`WHEP answered ${answer.status}: ${answer.body}`);
  return { ...answer, firstFrameMs: await waitForFrames(page, frames, timeoutMs) };
}

export function whepStats(page: Page): Promise<WhepStats> {
  return page.evaluate(async () => {
    const { pc, video, frames } = (
      window as unknown as { whepViewer: { pc: RTCPeerConnection; video: HTMLVideoElement; frames: number } }
    ).whepViewer;
    const stats = await pc.getStats();
    const out: WhepStats = {
      framesRendered: frames,
      framesDecoded: 0,
      audioPackets: 0,
      videoCodec: '',
      audioCodec: '',
      audioTracks: (video.srcObject as MediaStream | null)?.getAudioTracks().length ?? 0,
      width: video.videoWidth,
      height: video.videoHeight,
      connection: pc.connectionState,
      localCandidate: null,
    };
    for (const report of stats.values()) {
      if (report.type === 'inbound-rtp') {
        const codec = report.codecId ? (stats.get(report.codecId)?.mimeType ?? '') : '';
        if (report.kind === 'video') {
          out.videoCodec = codec;
          out.framesDecoded = report.framesDecoded ?? 0;
        } else if (report.kind === 'audio') {
          out.audioCodec = codec;
          out.audioPackets = report.packetsReceived ?? 0;
        }
      } else if (report.type === 'transport' && report.selectedCandidatePairId) {
        const pair: RTCIceCandidatePairStats | undefined = stats.get(report.selectedCandidatePairId);
        const local = pair ? stats.get(pair.localCandidateId) : undefined;
        if (local)
          out.localCandidate = {
            type: local.candidateType,
            address: local.address,
            relayProtocol: local.relayProtocol,
          };
      }
    }
    return out;
  });
}

/** The viewer's stats now and `ms` later. */
export async function whepStatsOver(
  page: Page,
  ms: number,
): Promise<{ first: WhepStats; second: WhepStats }> {
  const first = await whepStats(page);
  await new Promise((r) => setTimeout(r, ms));
  return { first, second: await whepStats(page) };
}

/** Closes the viewer's peer connection (the page stays). */
export function closeWhepViewer(page: Page): Promise<void> {
  return page.evaluate(() =>
    (window as unknown as { whepViewer: { pc: RTCPeerConnection } }).whepViewer.pc.close(),
  );
}
