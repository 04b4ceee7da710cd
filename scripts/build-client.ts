/**
 * Bundles the browser code into web/dist: the page scripts and the SDK as a library.
 * `node scripts/build-client.ts` builds once; `--watch` rebuilds on change.
 */
import { statSync } from 'node:fs';
import { join, relative } from 'node:path';
import * as esbuild from 'esbuild';

const root = join(import.meta.dirname, '..');
const outdir = join(root, 'web/dist');

const options: esbuild.BuildOptions = {
  absWorkingDir: root,
  entryPoints: {
    player: 'client/play-page.ts',
    dashboard: 'client/dashboard.ts',
    chat: 'client/chat-page.ts',
    publish: 'client/publish-page.ts',
    auction: 'client/auction-page.ts',
    subsecond: 'client/sdk.ts',
    // Player libraries on their own, fixed names beside the SDK, loaded only by the transport that needs them.
    hlsjs: 'client/player/hls/hlsjs.ts',
    dashjs: 'client/player/dash/dashjs.ts',
  },
  outdir,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'silent',
  metafile: true,
};

function summary(result: esbuild.BuildResult, ms: number): string {
  const outputs = Object.keys(result.metafile?.outputs ?? {})
    .filter((file) => file.endsWith('.js'))
    .map(
      (file) =>
        `${relative(outdir, join(root, file))} ${(statSync(join(root, file)).size / 1024).toFixed(1)} kB`,
    );
  return `built ${relative(root, outdir)}/ in ${ms} ms: ${outputs.join(', ')}`;
}

function report(error: unknown): void {
  const failure = error as Partial<esbuild.BuildFailure>;
  if (failure.errors?.length) {
    const lines = esbuild.formatMessagesSync(failure.errors, { kind: 'error', color: process.stderr.isTTY });
    process.stderr.write(lines.join(''));
  } else {
    console.error(`client build failed: ${(error as Error).message ?? String(error)}`);
  }
}

if (process.argv.includes('--watch')) {
  let startedAt = Date.now();
  const context = await esbuild.context({
    ...options,
    plugins: [
      {
        name: 'report',
        setup(build) {
          build.onStart(() => {
            startedAt = Date.now();
          });
          build.onEnd((result) => {
            if (result.errors.length) report({ errors: result.errors });
            else console.log(summary(result, Date.now() - startedAt));
          });
        },
      },
    ],
  });
  await context.watch();
} else {
  const startedAt = Date.now();
  try {
    const result = await esbuild.build(options);
    console.log(summary(result, Date.now() - startedAt));
  } catch (error) {
    report(error);
    process.exit(1);
  }
}
