import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const NODE = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));

/**
 * A network namespace joined to this machine by a veth pair: a client in it reaches the server at
 * `hostAddress` from `clientAddress`, a non-loopback source, as a remote client would. Each test file takes its
 * own `/30` (the third octet of 10.201.x.0, `octet`) so files running side by side never share one.
 */
export interface Netns {
  readonly name: string;
  /** The server side of the link (listen here or on 0.0.0.0). */
  readonly hostAddress: string;
  /** The address the namespace's clients come from. */
  readonly clientAddress: string;
  /** Runs a command inside the namespace; never throws on a non-zero exit. */
  run(
    command: string,
    args: readonly string[],
    timeoutMs?: number,
  ): Promise<{ code: number; stdout: string; stderr: string }>;
  /** fetch() from inside the namespace (a Node child there). */
  fetch(url: string, init?: RemoteRequest): Promise<RemoteResponse>;
  close(): Promise<void>;
}

export interface RemoteRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface RemoteResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

async function ip(...args: string[]): Promise<void> {
  await execFileAsync('ip', args);
}

const FETCH_SCRIPT = `
const [url, init] = JSON.parse(process.argv[1]);
const response = await fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(10000) });
const headers = Object.fromEntries(response.headers);
process.stdout.write(JSON.stringify({ status: response.status, headers, body: await response.text() }));
`;

export async function createNetns(tag: string, octet: number): Promise<Netns> {
  if (!Number.isInteger(octet) || octet < 1 || octet > 254) throw new Error(`octet ${octet} is not 1-254`);
  const name = `harden-${tag}`;
  const hostVeth = `hd${octet}h`;
  const clientVeth = `hd${octet}c`;
  const hostAddress = `10.201.${octet}.1`;
  const clientAddress = `10.201.${octet}.2`;
  // A namespace left by a killed run of this file would make `ip netns add` fail.
  await ip('netns', 'del', name).catch(() => {});
  await ip('link', 'del', hostVeth).catch(() => {});
  await ip('netns', 'add', name);
  try {
    await ip('link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', clientVeth);
    await ip('link', 'set', clientVeth, 'netns', name);
    await ip('addr', 'add', `${hostAddress}/30`, 'dev', hostVeth);
    await ip('link', 'set', hostVeth, 'up');
    await ip('-n', name, 'addr', 'add', `${clientAddress}/30`, 'dev', clientVeth);
    await ip('-n', name, 'link', 'set', clientVeth, 'up');
    await ip('-n', name, 'link', 'set', 'lo', 'up');
  } catch (err) {
    await ip('netns', 'del', name).catch(() => {});
    await ip('link', 'del', hostVeth).catch(() => {});
    throw err;
  }
  const run: Netns['run'] = (command, args, timeoutMs = 30_000) =>
    new Promise((resolve) => {
      const child = spawn('ip', ['netns', 'exec', name, command, ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
      });
      child.stderr.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-8000);
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, stdout, stderr });
      });
    });
  return {
    name,
    hostAddress,
    clientAddress,
    run,
    async fetch(url, init = {}) {
      const result = await run(NODE, [
        '--input-type=module',
        '-e',
        FETCH_SCRIPT,
        JSON.stringify([url, init]),
      ]);
      if (result.code !== 0) throw new Error(`fetch ${url} from ${name} failed: ${result.stderr.trim()}`);
      return JSON.parse(result.stdout) as RemoteResponse;
    },
    async close() {
      await ip('netns', 'del', name).catch(() => {});
      await ip('link', 'del', hostVeth).catch(() => {});
    },
  };
}
