import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { waitFor } from '../helpers/processes.ts';

test('`subsecond serve` starts, prints where it listens, logs refusals by name and stops on SIGTERM', async () => {
  const child = spawn(
    process.execPath,
    [
      'src/cli/main.ts',
      'serve',
      '--http.host',
      '127.0.0.1',
      '--http.port',
      '0',
      '--rtmp.host',
      '127.0.0.1',
      '--rtmp.port',
      '0',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    out += d;
  });
  try {
    const url: string = await waitFor(
      'the dashboard URL',
      () => /dashboard\s+(http:\/\/127\.0\.0\.1:\d+)\//.exec(out)?.[1] ?? '',
    );
    assert.match(out, /publish\s+ffmpeg … -f flv rtmp:\/\/127\.0\.0\.1:\d+\/live\/cam1/);
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    const page = await fetch(`${url}/`);
    assert.match(await page.text(), /<html/i);

    const ws = new WebSocket(`${url.replace('http', 'ws')}/mse/live/nobody`);
    ws.on('error', () => {});
    await waitFor('the refusal to be logged', () =>
      out.includes('viewer refused: stream \\"live/nobody\\" is not live'),
    );
  } finally {
    child.kill('SIGTERM');
  }
  const code = await new Promise((r) => child.once('exit', r));
  assert.equal(code, 0, out.slice(-2000));
  assert.match(out, /shutting down/);
});

test('`subsecond serve` refuses a config file with a moved setting, naming its new key', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'subsecond-cli-'));
  try {
    const file = join(dir, 'old.yaml');
    writeFileSync(file, 'hls:\n  dash: false\n');
    const child = spawn(process.execPath, ['src/cli/main.ts', 'serve', '--config', file], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
    });
    const code = await new Promise((r) => child.once('exit', r));
    assert.equal(code, 2, err);
    assert.equal(err, `subsecond: hls.dash has moved: use dash.enabled instead (in config file ${file})\n`);
  } finally {
    rmSync(dir, { recursive: true });
  }
});
