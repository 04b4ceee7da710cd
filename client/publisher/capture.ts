/** The media a browser publisher sends: camera, screen, or a drawn test pattern (no device needed). */

/** `canvas` is the test pattern; `test-pattern` is accepted as its other name. */
export type CaptureSource = 'camera' | 'screen' | 'canvas' | 'test-pattern';

export const CAPTURE_SOURCES: readonly CaptureSource[] = ['camera', 'screen', 'canvas', 'test-pattern'];

/** A moving test pattern and a 440 Hz tone: publishing without a camera (and in headless tests). */
export function testPattern(withAudio: boolean): MediaStream {
  const canvas = document.createElement('canvas');
  canvas.width = 1280;
  canvas.height = 720;
  const g = canvas.getContext('2d');
  if (!g) throw new Error('this browser cannot draw on a canvas');
  let frame = 0;
  const draw = () => {
    frame++;
    g.fillStyle = `hsl(${(frame * 2) % 360} 70% 45%)`;
    g.fillRect(0, 0, 1280, 720);
    g.fillStyle = '#fff';
    g.font = 'bold 96px system-ui, sans-serif';
    g.fillText(new Date().toISOString().slice(11, 23), 200 + ((frame * 4) % 300), 400);
  };
  draw();
  const timer = setInterval(draw, 1000 / 30);
  const video = canvas.captureStream(30).getVideoTracks();
  // The drawing stops with the track, so a stopped publisher leaves no timer behind.
  for (const track of video) track.addEventListener('ended', () => clearInterval(timer));
  const tracks: MediaStreamTrack[] = [...video];
  if (withAudio) {
    const audio = new AudioContext();
    const tone = audio.createOscillator();
    const destination = audio.createMediaStreamDestination();
    tone.frequency.value = 440;
    tone.connect(destination);
    tone.start();
    tracks.push(...destination.stream.getAudioTracks());
  }
  return new MediaStream(tracks);
}

export async function captureMedia(source: CaptureSource, withAudio: boolean): Promise<MediaStream> {
  if (source === 'canvas' || source === 'test-pattern') return testPattern(withAudio);
  if (source === 'screen')
    return navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 30 }, audio: withAudio });
  return navigator.mediaDevices.getUserMedia({
    video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } },
    audio: withAudio,
  });
}
