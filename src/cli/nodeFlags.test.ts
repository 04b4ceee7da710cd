import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { SERVER_NODE_FLAGS } from './nodeFlags.ts';

const root = join(import.meta.dirname, '../..');

test('npm start and the subsecond shebang run the server with the V8 flags it is measured with', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  assert.equal(pkg.scripts.start, `node ${SERVER_NODE_FLAGS.join(' ')} src/cli/main.ts serve`);
  const shebang = readFileSync(join(root, 'src/cli/main.ts'), 'utf8').split('\n')[0];
  assert.equal(shebang, `#!/usr/bin/env -S node ${SERVER_NODE_FLAGS.join(' ')}`);
});

test('the flags are accepted by this Node', () => {
  const out = execFileSync(process.execPath, [...SERVER_NODE_FLAGS, '-e', 'console.log("ok")'], {
    encoding: 'utf8',
  });
  assert.equal(out.trim(), 'ok');
});

test('the npm package launcher (bin/subsecond.js) starts the server with the same flags', () => {
  const launcher = readFileSync(join(root, 'bin/subsecond.js'), 'utf8');
  const listed = /^const SERVER_NODE_FLAGS = (\[.*\]);$/m.exec(launcher)?.[1];
  assert.ok(listed, 'bin/subsecond.js lists SERVER_NODE_FLAGS');
  assert.deepEqual(JSON.parse(listed.replace(/'/g, '"')), SERVER_NODE_FLAGS);
});
