import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { request } from 'node:http';
import { promisify } from 'node:util';
import { waitFor } from './processes.ts';

const execFileAsync = promisify(execFile);

export interface ProbedTrack {
  codec: string;
  startSeconds: number;
  durationSeconds: number;
  packets: number;
}

export interface ProbedFile {
  formatDurationSeconds: number;
  video?: ProbedTrack;
  audio?: ProbedTrack;
  /** What ffprobe printed at level error while reading every packet: empty for a clean file. */
  errors: string;
}

/** ffprobe reads every packet of `file` (a path or URL): codecs, start, duration and packet count per kind. */
export async function probeRecording(file: string): Promise<ProbedFile> {
  const { stdout, stderr } = await execFileAsync('ffprobe', [
    '-v',
    'error',
    '-count_packets',
    '-show_entries',
    'format=duration:stream=codec_type,codec_name,start_time,duration,nb_read_packets',
    '-of',
    'json',
    file,
  ]);
  const parsed = JSON.parse(stdout) as {
    format: { duration: string };
    streams: {
      codec_type: string;
      codec_name: string;
      start_time: string;
      duration: string;
      nb_read_packets: string;
    }[];
  };
  const out: ProbedFile = { formatDurationSeconds: Number(parsed.format.duration), errors: stderr.trim() };
  for (const s of parsed.streams) {
    const track = {
      codec: s.codec_name,
      startSeconds: Number(s.start_time),
      durationSeconds: Number(s.duration),
      packets: Number(s.nb_read_packets),
    };
    if (s.codec_type === 'video') out.video = track;
    if (s.codec_type === 'audio') out.audio = track;
  }
  return out;
}

/** An HTTP request with the path sent byte for byte (fetch would normalize `..` and percent-escapes). */
export function rawRequest(
  base: string,
  method: string,
  rawPath: string,
): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, method, path: rawPath }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

export interface ListedFile {
  name: string;
  start: string;
  durationSeconds: number;
  bytes: number;
  recording: boolean;
  codecs: string[];
  url: string;
}

export interface ListedRecording {
  path: string;
  recording: boolean;
  files: ListedFile[];
  ranges: { start: string; end: string; durationSeconds: number }[];
}

export async function recordingsOf(server: string, path: string): Promise<ListedRecording> {
  const res = await fetch(`${server}/api/v1/recordings/${path}`);
  if (!res.ok) throw new Error(`GET /api/v1/recordings/${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as ListedRecording;
}

const servers = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of servers) child.kill('SIGKILL');
});

export interface RecordingServer {
  child: ChildProcess;
  http: string;
  rtmp: string;
  /** Everything the server logged so far. */
  output(): string;
}

/** `subsecond serve` as a child process recording every stream into `dir` (files of 2 s unless `args` say). */
export async function serveRecording(dir: string, args: string[] = []): Promise<RecordingServer> {
  const child = spawn(
    process.execPath,
    [
      'src/cli/main.ts',
      'serve',
      '--http.host=127.0.0.1',
      '--http.port=0',
      '--rtmp.host=127.0.0.1',
      '--rtmp.port=0',
      '--webrtc.enabled=false',
      '--hls.enabled=false',
      '--record.enabled=true',
      `--record.dir=${dir}`,
      '--record.segmentSeconds=2',
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  servers.add(child);
  child.once('exit', () => servers.delete(child));
  let out = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  child.stderr?.on('data', (d) => {
    out += d;
  });
  const http = await waitFor(
    'the server to listen',
    () => /dashboard\s+(http:\/\/\S+?)\/\s/.exec(out)?.[1] ?? '',
  );
  const rtmp = /flv (rtmp:\/\/\S+?)\/live\/cam1/.exec(out)?.[1] ?? '';
  return { child, http, rtmp, output: () => out };
}
