import type { Page } from 'playwright-core';

export interface CanvasPublishOptions {
  width?: number;
  height?: number;
  /** Publish a 440 Hz oscillator as well (default: video only). */
  audio?: boolean;
  /**
   * `camera`: Chromium's fake capture device (launch with --use-fake-device-for-media-stream), whose frames
   * come on a steady clock as a real camera's do, instead of the canvas.
   */
  camera?: boolean;
  /** Simulcast encodings for the video track (RFC 8853), as `sendEncodings`. */
  encodings?: RTCRtpEncodingParameters[];
}

export interface CanvasPublished {
  status: number;
  location: string;
  etag: string;
  /** The answer SDP on 201, else the error the endpoint gave. */
  body: string;
}

/**
 * Runs in the page: an animated canvas (a colour that cycles and a white square that moves, at 30 fps)
 * published over WHIP, with a tone when asked; resolves once the POST is answered (and the answer applied
 * on 201). The page keeps the peer connection as `window.whipPublisher`.
 */
export function publishCanvas(
  page: Page,
  url: string,
  options: CanvasPublishOptions = {},
): Promise<CanvasPublished> {
  return page.evaluate(
    async ([whipUrl, o]) => {
      const width = o.width ?? 640;
      const height = o.height ?? 360;
      const canvas = document.createElement('canvas');
      canvas.width = width;
      canvas.height = height;
      document.body.append(canvas);
      const g = canvas.getContext('2d')!;
      let n = 0;
      setInterval(() => {
        n += 7;
        g.fillStyle = `hsl(${n % 360} 80% 50%)`;
        g.fillRect(0, 0, width, height);
        g.fillStyle = '#fff';
        g.fillRect(n % width, height / 2 - 40, 80, 80);
      }, 33);
      const pc = new RTCPeerConnection();
      (window as unknown as { whipPublisher: RTCPeerConnection }).whipPublisher = pc;
      const [video] = o.camera
        ? (
            await navigator.mediaDevices.getUserMedia({ video: { width, height, frameRate: 30 } })
          ).getVideoTracks()
        : canvas.captureStream(30).getVideoTracks();
      pc.addTransceiver(video, { direction: 'sendonly', sendEncodings: o.encodings });
      if (o.audio) {
        const audio = new AudioContext();
        const tone = audio.createOscillator();
        const destination = audio.createMediaStreamDestination();
        tone.connect(destination);
        tone.start();
        for (const track of destination.stream.getAudioTracks())
          pc.addTransceiver(track, { direction: 'sendonly' });
      }
      await pc.setLocalDescription(await pc.createOffer());
      const response = await fetch(whipUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp' },
        body: pc.localDescription!.sdp,
      });
      const body = await response.text();
      if (response.status === 201) await pc.setRemoteDescription({ type: 'answer', sdp: body });
      return {
        status: response.status,
        location: response.headers.get('location') ?? '',
        etag: response.headers.get('etag') ?? '',
        body,
      };
    },
    [url, options] as const,
  );
}
