#!/usr/bin/env -S node --max-semi-space-size=2
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError, envName, knownKeys, loadConfig } from '../config/load.ts';
import { log } from '../core/log.ts';
import { startServer } from '../server.ts';
import { runLocalCluster } from './cluster.ts';
import { packageVersion } from './version.ts';

const USAGE = `Subsecond: real-time live-streaming server

Usage:
  subsecond serve [--config FILE] [--SECTION.KEY VALUE ...]
  subsecond serve --help
  subsecond --version
  subsecond bench latency [--help | OPTIONS]   glass-to-glass latency of every transport, in Chromium
  subsecond cluster [--nodes 3]                 a local Redis and N nodes on loopback, to try a cluster

Settings come from the defaults, then a YAML file (--config or SUBSECOND_CONFIG), then environment
variables, then flags; later ones win. See config.sample.yaml for what each one does.`;

function serveHelp(): string {
  const rows = knownKeys().map(({ key, section, name, def }) => {
    const shown = def === '' ? '""' : String(def);
    return `  --${key.padEnd(24)} ${shown.padEnd(12)} ${envName(section, name)}`;
  });
  return `${USAGE}\n\nSettings (flag, default, environment variable):\n${rows.join('\n')}\n`;
}

/** The benchmarks live in bench/ (they need the dev dependencies); the CLI runs them as they are. */
function bench([name, ...args]: string[]): Promise<number> {
  if (name !== 'latency') {
    process.stderr.write(`unknown benchmark "${name ?? ''}": subsecond bench latency\n`);
    return Promise.resolve(2);
  }
  const script = fileURLToPath(new URL('../../bench/latency/run.ts', import.meta.url));
  if (!existsSync(script)) {
    process.stderr.write(
      'the benchmarks run from a clone of the repository (npm install there, then npm run bench:latency)\n',
    );
    return Promise.resolve(2);
  }
  const child = spawn(process.execPath, [script, ...args], { stdio: 'inherit' });
  return new Promise((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
}

async function main(argv: string[]): Promise<number> {
  const [command = 'serve', ...rest] = argv;
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (command === '--version' || command === '-v' || command === 'version') {
    process.stdout.write(`subsecond ${packageVersion()} (Node.js ${process.versions.node})\n`);
    return 0;
  }
  if (command === 'bench') return bench(rest);
  if (command === 'cluster') return runLocalCluster(rest);
  if (command !== 'serve') {
    process.stderr.write(`unknown command "${command}"\n\n${USAGE}\n`);
    return 2;
  }
  let loaded: ReturnType<typeof loadConfig>;
  try {
    loaded = loadConfig(rest);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`subsecond: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (loaded.flags.help) {
    process.stdout.write(serveHelp());
    return 0;
  }
  const server = await startServer(loaded.config);
  process.stdout.write(
    `\n  Subsecond is live\n  dashboard  ${server.httpUrl}/\n  publish    ffmpeg … -f flv ${server.rtmpUrl || '(RTMP disabled)'}/live/cam1\n  watch      ${server.httpUrl}/play/live/cam1\n\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'shutting down');
      server.close().then(resolve, resolve);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    process.stderr.write(`subsecond: ${err.message}\n`);
    process.exitCode = 1;
  },
);
