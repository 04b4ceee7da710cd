/**
 * WHEP workers live and die with their server: `subsecond serve --webrtc.workers 2` forks two, SIGTERM stops
 * them with the server, and a server killed outright (SIGKILL: no shutdown code runs) leaves no worker behind,
 * because each exits when its IPC channel to main closes.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { waitFor } from '../helpers/processes.ts';

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'latin1')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function serve(): Promise<{
  child: ChildProcess;
  url: string;
  workers: number[];
  output: () => string;
}> {
  const child = spawn(
    process.execPath,
    [
      ...['src/cli/main.ts', 'serve', '--http.host', '127.0.0.1', '--http.port', '0'],
      ...['--rtmp.enabled', 'false', '--webrtc.udpPort', '0', '--webrtc.workers', '2', '--log.level', 'info'],
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  child.stderr?.on('data', (d) => {
    out += d;
  });
  const url = await waitFor(
    'the dashboard URL',
    () => /dashboard\s+(http:\/\/127\.0\.0\.1:\d+)\//.exec(out)?.[1] ?? '',
  );
  const workers: number[] =
    (await waitFor('two worker processes', () => {
      const pids = childPids(child.pid ?? 0);
      return pids.length === 2 ? pids : undefined;
    })) ?? [];
  return { child, url, workers, output: () => out };
}

test('SIGTERM stops the server and its workers', async () => {
  const { child, url, workers, output } = await serve();
  assert.equal(workers.length, 2);
  try {
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /subsecond_webrtc_worker_up\{worker="0"\} 1/);
    assert.match(metrics, /subsecond_webrtc_worker_up\{worker="1"\} 1/);
    assert.equal((output().match(/WHEP worker started/g) ?? []).length, 2);
  } finally {
    child.kill('SIGTERM');
  }
  const code = await new Promise((r) => child.once('exit', r));
  assert.equal(code, 0, output().slice(-2000));
  await waitFor('the workers to be gone', () => workers.every((pid) => !alive(pid)), 5000);
});

test('a server killed with SIGKILL leaves no worker running', async () => {
  const { child, workers } = await serve();
  assert.equal(workers.length, 2);
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  await waitFor('the orphaned workers to exit', () => workers.every((pid) => !alive(pid)), 10_000);
});
