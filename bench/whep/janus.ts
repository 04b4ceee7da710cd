/**
 * Janus (Debian `janus` 1.1.x) as the peer in the WHEP benchmark: a config written to a temp folder (HTTP API
 * on 127.0.0.1 only, the streaming plugin with one RTP mountpoint on a 127.0.0.1 UDP port, every other plugin
 * and transport disabled), and the viewer side of its HTTP API for the receivers.
 *
 * ICE: Janus 1.1 leaves loopback interfaces out when it gathers candidates (/work/shared/PEERS.md), so it is
 * told to gather on this host's own non-loopback address only (`ice_enforce_list`), the address the receivers
 * bind to as well; packets between two local addresses never leave the machine.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const MOUNTPOINT_ID = 1;

export interface JanusConfig {
  readonly dir: string;
  readonly log: string;
  readonly args: string[];
}

/** Writes Janus's configs to a temp folder; returns the command-line arguments that use them. */
export function writeJanusConfig(opts: {
  httpPort: number;
  rtpPort: number;
  iceAddress: string;
  videoPt: number;
  fmtp: string;
}): JanusConfig {
  const dir = mkdtempSync(join(tmpdir(), 'whep-bench-janus-'));
  const pluginsDisabled = [
    'audiobridge',
    'duktape',
    'echotest',
    'lua',
    'nosip',
    'recordplay',
    'sip',
    'textroom',
    'videocall',
    'videoroom',
    'voicemail',
  ]
    .map((p) => `libjanus_${p}.so`)
    .join(',');
  const transportsDisabled = ['websockets', 'mqtt', 'nanomsg', 'pfunix', 'rabbitmq']
    .map((t) => `libjanus_${t}.so`)
    .join(',');
  writeFileSync(
    join(dir, 'janus.jcfg'),
    `general: {
  configs_folder = "${dir}"
  plugins_folder = "/usr/lib/x86_64-linux-gnu/janus/plugins"
  transports_folder = "/usr/lib/x86_64-linux-gnu/janus/transports"
  events_folder = "/usr/lib/x86_64-linux-gnu/janus/events"
  loggers_folder = "/usr/lib/x86_64-linux-gnu/janus/loggers"
  debug_level = 3
  session_timeout = 120
}
media: {
  rtp_port_range = "40000-60000"
}
nat: {
  ice_enforce_list = "${opts.iceAddress}"
  ignore_mdns = true
}
plugins: {
  disable = "${pluginsDisabled}"
}
transports: {
  disable = "${transportsDisabled}"
}
events: {
  broadcast = false
}
loggers: {
  disable = "libjanus_jsonlog.so"
}
`,
  );
  writeFileSync(
    join(dir, 'janus.transport.http.jcfg'),
    `general: {
  json = "compact"
  base_path = "/janus"
  http = true
  port = ${opts.httpPort}
  ip = "127.0.0.1"
  https = false
}
admin: {
  admin_http = false
}
`,
  );
  writeFileSync(
    join(dir, 'janus.plugin.streaming.jcfg'),
    `general: {
}
bench: {
  type = "rtp"
  id = ${MOUNTPOINT_ID}
  description = "WHEP benchmark source"
  audio = false
  video = true
  videoport = ${opts.rtpPort}
  videoiface = "127.0.0.1"
  videopt = ${opts.videoPt}
  videocodec = "h264"
  videofmtp = "${opts.fmtp}"
  # Janus at its best for joining viewers: it keeps the latest keyframe and sends it to each new one.
  videobufferkf = true
}
`,
  );
  const log = join(dir, 'janus.log');
  return { dir, log, args: ['-C', join(dir, 'janus.jcfg'), '-F', dir, '--disable-colors', '-N', '-L', log] };
}

interface JanusReply {
  janus: string;
  transaction?: string;
  sender?: number;
  data?: { id: number };
  error?: { code: number; reason: string };
  plugindata?: { data: Record<string, unknown> };
  jsep?: { type: string; sdp: string };
}

/**
 * One Janus session (per receiver process) with a handle per viewer; events come from one long-poll loop and
 * go to the handle that is waiting for them.
 */
export class JanusViewers {
  readonly #base: string;
  #session = 0;
  #polling = false;
  #keepalive: NodeJS.Timeout | undefined;
  readonly #waiting = new Map<number, (event: JanusReply) => void>();
  #tx = 0;

  constructor(base: string) {
    this.#base = base;
  }

  async #post(path: string, body: Record<string, unknown>): Promise<JanusReply> {
    const response = await fetch(`${this.#base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, transaction: `t${++this.#tx}` }),
    });
    const reply = (await response.json()) as JanusReply;
    if (reply.janus === 'error')
      throw new Error(
        `Janus ${String(body.janus)} ${JSON.stringify(body.body ?? {})}: ${reply.error?.reason}`,
      );
    return reply;
  }

  #created: Promise<void> | undefined;

  /** Once, however many viewers join at the same time. */
  #ensureSession(): Promise<void> {
    this.#created ??= this.#create();
    return this.#created;
  }

  async #create(): Promise<void> {
    this.#session = (await this.#post('/janus', { janus: 'create' })).data?.id ?? 0;
    if (!this.#session) throw new Error('Janus create: no session id');
    this.#polling = true;
    void this.#poll();
    // Janus frees a session after session_timeout seconds without a request on it.
    this.#keepalive = setInterval(() => {
      void this.#post(`/janus/${this.#session}`, { janus: 'keepalive' }).catch(() => undefined);
    }, 20_000);
  }

  async #poll(): Promise<void> {
    while (this.#polling) {
      try {
        const response = await fetch(`${this.#base}/janus/${this.#session}?maxev=50`);
        const body = (await response.json()) as JanusReply | JanusReply[];
        for (const event of Array.isArray(body) ? body : [body]) {
          if (event.sender !== undefined && event.jsep) this.#waiting.get(event.sender)?.(event);
        }
      } catch {
        if (this.#polling) await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** Attaches a handle and asks to watch the mountpoint; resolves with Janus's offer. */
  async watch(): Promise<{ handle: number; offer: string }> {
    await this.#ensureSession();
    const handle =
      (await this.#post(`/janus/${this.#session}`, { janus: 'attach', plugin: 'janus.plugin.streaming' }))
        .data?.id ?? 0;
    if (!handle) throw new Error('Janus attach: no handle id');
    const offer = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('Janus watch: no offer within 10 s')), 10_000);
      this.#waiting.set(handle, (event) => {
        clearTimeout(timer);
        this.#waiting.delete(handle);
        resolve(event.jsep?.sdp ?? '');
      });
    });
    await this.#post(`/janus/${this.#session}/${handle}`, {
      janus: 'message',
      body: { request: 'watch', id: MOUNTPOINT_ID },
    });
    return { handle, offer: await offer };
  }

  async start(handle: number, answer: string): Promise<void> {
    await this.#post(`/janus/${this.#session}/${handle}`, {
      janus: 'message',
      body: { request: 'start' },
      jsep: { type: 'answer', sdp: answer },
    });
  }

  close(): void {
    this.#polling = false;
    clearInterval(this.#keepalive);
  }
}
