import { CAPTURE_SOURCES, type CaptureSource, captureMedia } from '../publisher/capture.ts';
import { type PublisherState, type PublishVideoCodec, WhipPublisher } from '../publisher/WhipPublisher.ts';
import { ELEMENT_STYLE, ElementBase, parseStreamSource } from './base.ts';

/** DOM events the element dispatches. */
export interface SubsecondPublisherElementEventMap {
  state: CustomEvent<{ state: PublisherState; reason?: string }>;
  error: CustomEvent<{ message: string }>;
}

const CODECS: readonly PublishVideoCodec[] = ['h264', 'vp8', 'vp9', 'av1'];

/**
 * `<subsecond-publisher src="https://host/live/cam2" source="camera">`: publishes the camera, the screen or a
 * test pattern over WHIP, with a preview and a start/stop button.
 *
 * Attributes: `src` (required); `source` (`camera`, `screen` or `test-pattern`; default camera); `audio`
 * (also send the microphone, or the tone with the test pattern); `token` (the server's `auth.publishKey`,
 * needed from anywhere but loopback); `codec` (h264, vp8, vp9, av1; default h264); `bitrate` (kbit/s,
 * default 2500); `autostart` (start at once: camera and screen need a user gesture or a granted permission).
 */
export class SubsecondPublisherElement extends ElementBase {
  /** The WHIP publisher while publishing. */
  publisher: WhipPublisher | null = null;
  readonly preview: HTMLVideoElement;
  readonly #button: HTMLButtonElement;
  readonly #badge: HTMLElement;
  readonly #error: HTMLElement;
  #media: MediaStream | null = null;

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    const style = document.createElement('style');
    style.textContent = ELEMENT_STYLE;
    this.preview = document.createElement('video');
    this.preview.setAttribute('part', 'preview');
    this.preview.muted = true;
    this.preview.playsInline = true;
    this.preview.autoplay = true;
    const overlay = document.createElement('div');
    overlay.className = 'overlay';
    this.#badge = document.createElement('span');
    this.#badge.className = 'badge';
    this.#badge.setAttribute('part', 'state');
    this.#badge.textContent = 'idle';
    overlay.append(this.#badge);
    const controls = document.createElement('div');
    controls.className = 'controls';
    this.#button = document.createElement('button');
    this.#button.type = 'button';
    this.#button.setAttribute('part', 'button');
    this.#button.textContent = 'Go live';
    this.#button.addEventListener('click', () => {
      void (this.publisher ? this.stop() : this.start());
    });
    controls.append(this.#button);
    this.#error = document.createElement('p');
    this.#error.className = 'error';
    this.#error.setAttribute('role', 'alert');
    this.#error.setAttribute('part', 'error');
    root.append(style, this.preview, overlay, controls, this.#error);
  }

  connectedCallback(): void {
    if (this.hasAttribute('autostart')) void this.start();
  }

  disconnectedCallback(): void {
    void this.stop();
  }

  /** Captures the source and publishes it; the returned promise rejects (and `error` fires) on failure. */
  async start(): Promise<void> {
    if (this.publisher) return;
    this.#error.textContent = '';
    this.#button.disabled = true;
    try {
      const { server, path } = parseStreamSource(this.getAttribute('src') ?? '');
      const source = (this.getAttribute('source') ?? 'camera') as CaptureSource;
      if (!CAPTURE_SOURCES.includes(source)) {
        throw new Error(`unknown source "${source}": use camera, screen or test-pattern`);
      }
      const codec = (this.getAttribute('codec') ?? 'h264') as PublishVideoCodec;
      if (!CODECS.includes(codec)) throw new Error(`unknown codec "${codec}": use ${CODECS.join(', ')}`);
      const kbps = Number(this.getAttribute('bitrate') ?? 2500);
      if (!Number.isFinite(kbps) || kbps <= 0) {
        throw new Error(`invalid bitrate "${this.getAttribute('bitrate')}": kbit/s, e.g. 2500`);
      }
      const publisher = new WhipPublisher({
        server,
        path,
        token: this.getAttribute('token') || undefined,
        videoCodec: codec,
        videoBitrate: kbps * 1000,
      });
      this.publisher = publisher;
      publisher.on('state', (change) => {
        this.#badge.dataset.state = change.state;
        this.#badge.textContent = change.state === 'live' ? 'LIVE' : change.state;
        if (change.reason) this.#error.textContent = change.reason;
        this.dispatchEvent(new CustomEvent('state', { detail: change }));
      });
      this.#media = await captureMedia(source, this.hasAttribute('audio'));
      this.preview.srcObject = this.#media;
      await publisher.start(this.#media);
      this.#button.textContent = 'Stop';
    } catch (error) {
      const message = (error as Error).message;
      this.#error.textContent = message;
      this.dispatchEvent(new CustomEvent('error', { detail: { message } }));
      await this.stop();
      throw error;
    } finally {
      this.#button.disabled = false;
    }
  }

  async stop(): Promise<void> {
    const publisher = this.publisher;
    this.publisher = null;
    await publisher?.stop();
    for (const track of this.#media?.getTracks() ?? []) track.stop();
    this.#media = null;
    this.preview.srcObject = null;
    this.#button.textContent = 'Go live';
  }
}
