/**
 * The npm package as a user gets it: `npm pack` (which builds through `prepack`), installed globally into an
 * empty prefix with the system's older Node first on PATH, then `subsecond --version`, `serve --help`, a
 * server on free ports answering /healthz and its pages, and a TypeScript consumer of `subsecond/client`
 * type-checked against the packed declarations.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { waitFor } from '../helpers/processes.ts';

const run = promisify(execFile);
const root = join(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'subsecond-package-'));
const prefix = join(dir, 'global');
const bin = join(prefix, 'bin', 'subsecond');
/** No node_modules/.bin: `node` here is whatever the system has (v20 on the development machine). */
const USER_PATH = '/usr/local/bin:/usr/bin:/bin';
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;

before(async () => {
  await run('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: root, timeout: 120_000 });
  const tarball = readdirSync(dir).find((name) => name.endsWith('.tgz'));
  assert.equal(tarball, `subsecond-${version}.tgz`);
  await run(
    'npm',
    ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', join(dir, tarball)],
    { cwd: dir, timeout: 120_000, env: { ...process.env, PATH: USER_PATH } },
  );
});

after(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(bin, args, { cwd: dir, timeout: 15_000, env: { ...process.env, PATH: USER_PATH } });
}

test('the installed command runs on the Node 24 the package brings, whatever node is on PATH', async () => {
  const { stdout } = await cli(['--version']);
  assert.match(
    stdout,
    new RegExp(`^subsecond ${version.replace(/\./g, '\\.')} \\(Node\\.js 24\\.\\d+\\.\\d+\\)$`, 'm'),
  );
  const help = await cli(['serve', '--help']);
  assert.match(help.stdout, /--http\.corsOrigin\s+\*\s+SUBSECOND_HTTP_CORS_ORIGIN/);
  assert.match(help.stdout, /--auth\.publishKey/);
});

test('`subsecond serve` from the package serves /healthz, its pages, the SDK bundle and the guides', async () => {
  const child = spawn(
    bin,
    [
      'serve',
      '--http.host',
      '127.0.0.1',
      '--http.port',
      '0',
      '--rtmp.host',
      '127.0.0.1',
      '--rtmp.port',
      '0',
      '--webrtc.udpPort',
      '0',
    ],
    { cwd: dir, env: { ...process.env, PATH: USER_PATH }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    out += d;
  });
  try {
    const url = await waitFor(
      'the dashboard URL',
      () => /dashboard\s+(http:\/\/127\.0\.0\.1:\d+)\//.exec(out)?.[1] ?? '',
    );
    const health = (await (await fetch(`${url}/healthz`)).json()) as { status: string };
    assert.equal(health.status, 'ok');
    const page = await fetch(`${url}/play/live/cam1`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<video/);
    const sdk = await fetch(`${url}/static/subsecond.js`);
    assert.equal(sdk.status, 200);
    assert.match(await sdk.text(), /subsecond-player/);
    for (const lib of ['player.js', 'hlsjs.js', 'dashjs.js']) {
      assert.equal((await fetch(`${url}/static/${lib}`)).status, 200, lib);
    }
    const guide = await fetch(`${url}/docs/sdk`);
    assert.equal(guide.status, 200);
    assert.match(await guide.text(), /&lt;subsecond-player src=/);
    assert.doesNotMatch(out, /web bundle not built/);
  } finally {
    child.kill('SIGTERM');
  }
  const code = await new Promise((resolve) => child.once('exit', resolve));
  assert.equal(code, 0, out.slice(-2000));
  assert.match(out, /shutting down/);
});

test('a TypeScript consumer of subsecond/client type-checks against the packed declarations', async () => {
  const consumer = join(dir, 'consumer');
  mkdirSync(join(consumer, 'node_modules'), { recursive: true });
  symlinkSync(join(prefix, 'lib', 'node_modules', 'subsecond'), join(consumer, 'node_modules', 'subsecond'));
  symlinkSync(join(root, 'node_modules', 'typescript'), join(consumer, 'node_modules', 'typescript'));
  writeFileSync(
    join(consumer, 'app.ts'),
    `import {
  channel,
  PlayerEvent,
  type PlayerStats,
  PublishError,
  SubsecondPlayer,
  type SubsecondPlayerElement,
  WhipPublisher,
} from 'subsecond/client';

const video = document.createElement('video');
const player = new SubsecondPlayer(video, { server: 'https://live.example.com', path: 'live/cam1', transports: ['webrtc', 'mse'] });
player.on(PlayerEvent.Stats, (stats: PlayerStats) => console.log(stats.latency.toFixed(2), stats.transport));
player.on(PlayerEvent.Error, ({ message, fatal }) => console.log(message, fatal));
player.start();
const publisher = new WhipPublisher({ server: 'https://live.example.com', path: 'live/cam2', token: 'KEY' });
publisher.on('state', ({ state }) => console.log(state));
const chat = channel('live/cam1:chat', { server: 'https://live.example.com' });
chat.publish('chat', { text: 'hi' }).catch((e: unknown) => e instanceof PublishError && console.log(e.code));
const element: SubsecondPlayerElement = document.createElement('subsecond-player');
element.addEventListener('stats', (e) => console.log(e));
// @ts-expect-error: a transport the SDK does not have is a type error
new SubsecondPlayer(video, { path: 'live/cam1', transport: 'rtsp' });
`,
  );
  const strict = {
    strict: true,
    noEmit: true,
    target: 'es2022',
    lib: ['es2022', 'dom', 'dom.iterable'],
    skipLibCheck: false,
    types: [],
  };
  for (const resolution of [
    { module: 'esnext', moduleResolution: 'bundler' },
    { module: 'nodenext', moduleResolution: 'nodenext' },
  ]) {
    writeFileSync(
      join(consumer, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { ...strict, ...resolution }, files: ['app.ts'] }),
    );
    writeFileSync(join(consumer, 'package.json'), JSON.stringify({ type: 'module', private: true }));
    await run(process.execPath, [join(consumer, 'node_modules/typescript/bin/tsc'), '-p', consumer], {
      timeout: 60_000,
    }).catch((error: Error & { stdout?: string }) => {
      throw new Error(`tsc (${resolution.moduleResolution}) failed:\n${error.stdout ?? error.message}`);
    });
  }
});
