import assert from 'node:assert/strict';
import { type ChildProcess, execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { promisify } from 'node:util';
import type { ConfigInput } from '../../src/config/schema.ts';
import { type RunningServer, startServer } from '../../src/server.ts';
import { ffprobe, killAll, type ProbedStream, publishTestSource, stop, waitFor } from './processes.ts';

const execFileAsync = promisify(execFile);

/** The stream every HTTP-delivery integration test plays: 640x360 30 fps H.264 + AAC, a keyframe a second. */
export const CAMERA_PATH = 'live/cam1';
const CAMERA = { size: '640x360', rate: 30, gop: 30 };

/**
 * A server (HTTP and RTMP on 127.0.0.1, port 0) with ffmpeg publishing CAMERA_PATH over RTMP, ready once two
 * segments are packaged; `before`/`after` hooks of the calling test file start and stop it all.
 */
export class LiveCamera {
  #server: RunningServer | undefined;
  #publisher: ChildProcess | undefined;
  /** A scratch directory for files the tests write, removed afterwards. */
  readonly dir: string;

  /** `settings`: sections the test sets beyond the loopback listeners. */
  constructor(name: string, settings: ConfigInput = {}) {
    this.dir = mkdtempSync(join(tmpdir(), `subsecond-${name}-`));
    before(async () => {
      this.#server = await startServer({
        ...settings,
        http: { host: '127.0.0.1', port: 0 },
        rtmp: { host: '127.0.0.1', port: 0 },
        log: { level: 'warn' },
      });
      this.publish();
      await waitFor(
        `two complete segments of ${CAMERA_PATH}`,
        () => (this.server.hls?.packagers.get(CAMERA_PATH)?.segments.length ?? 0) >= 2,
      );
    });
    after(async () => {
      await stop(this.#publisher);
      killAll();
      await this.#server?.close();
      rmSync(this.dir, { recursive: true, force: true });
    });
  }

  get server(): RunningServer {
    assert.ok(this.#server, 'the server starts in the before hook');
    return this.#server;
  }

  /** (Re)starts the ffmpeg publisher. */
  publish(): void {
    this.#publisher = publishTestSource(`${this.server.rtmpUrl}/${CAMERA_PATH}`, CAMERA);
  }

  /** Stops the publisher (the stream is unpublished). */
  unpublish(): Promise<void> {
    return stop(this.#publisher);
  }

  /**
   * ffmpeg reads 5 s from `url` (a playlist or manifest) into `file`, in real time; the streams ffprobe then
   * finds there, checked to be the camera's H.264 at 640x360 and AAC with about 150 video frames.
   */
  async readFiveSeconds(url: string, file: string): Promise<ProbedStream[]> {
    const out = join(this.dir, file);
    await execFileAsync(
      'ffmpeg',
      ['-hide_banner', '-loglevel', 'error', '-i', url, '-t', '5', '-c', 'copy', '-y', out],
      { timeout: 60_000 },
    );
    const streams = await ffprobe(out);
    const v = streams.find((s) => s.codec_type === 'video');
    const a = streams.find((s) => s.codec_type === 'audio');
    assert.equal(v?.codec_name, 'h264');
    assert.equal(v?.width, 640);
    assert.equal(v?.height, 360);
    assert.equal(a?.codec_name, 'aac');
    const frames = Number(v?.nb_read_frames);
    assert.ok(frames >= 140 && frames <= 160, `${frames} video frames decoded from 5 s`);
    return streams;
  }
}
