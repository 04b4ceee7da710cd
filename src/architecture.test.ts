import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * The dependency rules of docs/architecture.md, checked over every relative import (type-only ones too: a
 * type import is a dependency a later change turns into a value import) of src/ and client/.
 */

const ROOT = normalize(join(dirname(fileURLToPath(import.meta.url)), '..'));

export interface ImportEdge {
  /** Repository-relative path of the importing file. */
  readonly from: string;
  /** Repository-relative path of the imported file. */
  readonly to: string;
}

interface Rule {
  readonly name: string;
  /** The edge breaks this rule. */
  readonly forbids: (edge: ImportEdge) => boolean;
}

const under = (path: string, folder: string) => path === folder || path.startsWith(`${folder}/`);
const protocolOf = (path: string) => /^src\/protocols\/([^/]+)\//.exec(path)?.[1] ?? null;

export const RULES: readonly Rule[] = [
  {
    name: 'media/ is pure bytes in, bytes out: it imports nothing of src/ outside media/',
    forbids: ({ from, to }) => under(from, 'src/media') && under(to, 'src') && !under(to, 'src/media'),
  },
  {
    name: 'core/ knows no protocol, transport or route: it imports only core/, media/ and shared/',
    forbids: ({ from, to }) =>
      under(from, 'src/core') && !['src/core', 'src/media', 'src/shared'].some((f) => under(to, f)),
  },
  {
    name: 'client/ is browser code: it imports nothing of src/ but the neutral src/shared/',
    forbids: ({ from, to }) => under(from, 'client') && !under(to, 'client') && !under(to, 'src/shared'),
  },
  {
    name: 'shared/ is neutral (client and server both import it): it imports nothing outside itself',
    forbids: ({ from, to }) => under(from, 'src/shared') && !under(to, 'src/shared'),
  },
  {
    name: 'transport/ is protocol-neutral: it imports only transport/ and shared/',
    forbids: ({ from, to }) =>
      under(from, 'src/transport') && !under(to, 'src/transport') && !under(to, 'src/shared'),
  },
  {
    name: 'protocols know nothing of each other: protocols/<a> imports nothing of protocols/<b>',
    forbids: ({ from, to }) => {
      const a = protocolOf(from);
      const b = protocolOf(to);
      return a !== null && b !== null && a !== b;
    },
  },
  {
    name: 'http/ only routes: nothing but server.ts and cli/ imports it',
    forbids: ({ from, to }) =>
      under(to, 'src/http') &&
      !under(from, 'src/http') &&
      from !== 'src/server.ts' &&
      !under(from, 'src/cli'),
  },
];

/**
 * Known wrong-way imports not yet fixed, each with the issue that removes it. An edge here passes; any edge not
 * here that breaks a rule fails the test, and an entry that no longer matches an import fails it too (so the
 * list only shrinks).
 */
export const ALLOWED: readonly (ImportEdge & { why: string })[] = [
  // issue 14: HLS and DASH are two views on one CMAF segmenter, which still lives in hls/ (HlsPackager). DASH
  // renders its MPD from it and shares HLS's request parsing and body sending until the segmenter moves to a
  // neutral home.
  ...['src/protocols/dash/DashServer.ts', 'src/protocols/dash/mpd.ts'].map((from) => ({
    from,
    to: 'src/protocols/hls/HlsPackager.ts',
    why: 'issue 14: the CMAF segmenter still lives in hls/HlsPackager.ts',
  })),
  {
    from: 'src/protocols/dash/DashServer.ts',
    to: 'src/protocols/hls/resourceRequest.ts',
    why: 'issue 14: request parsing shared with HLS until the segmenter has a neutral home',
  },
  {
    from: 'src/protocols/dash/DashServer.ts',
    to: 'src/protocols/hls/sendMediaBody.ts',
    why: 'issue 14: body sending shared with HLS until the segmenter has a neutral home',
  },
  {
    from: 'src/protocols/dash/DashServer.test.ts',
    to: 'src/protocols/hls/testing/clip.ts',
    why: 'issue 14: the test clip feeds the segmenter, which still lives in hls/',
  },
];

const IMPORT =
  /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

/** Relative imports of one TypeScript source, resolved to repository-relative paths. */
export function importsOf(file: string, source: string): ImportEdge[] {
  const edges: ImportEdge[] = [];
  for (const match of source.matchAll(IMPORT)) {
    const specifier = match[1] ?? match[2];
    edges.push({ from: file, to: normalize(join(dirname(file), specifier)) });
  }
  return edges;
}

export function violations(edges: readonly ImportEdge[]): { edge: ImportEdge; rule: string }[] {
  const found: { edge: ImportEdge; rule: string }[] = [];
  for (const edge of edges) {
    if (ALLOWED.some((a) => a.from === edge.from && a.to === edge.to)) continue;
    for (const rule of RULES) if (rule.forbids(edge)) found.push({ edge, rule: rule.name });
  }
  return found;
}

function sourceFiles(folder: string): string[] {
  return readdirSync(join(ROOT, folder), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => relative(ROOT, join(entry.parentPath, entry.name)));
}

const edges = ['src', 'client']
  .flatMap(sourceFiles)
  .flatMap((f) => importsOf(f, readFileSync(join(ROOT, f), 'utf8')));

test('the import graph is read: it has the edges every part of the server is built from', () => {
  assert.ok(edges.length > 500, `only ${edges.length} imports found`);
  assert.ok(edges.some((e) => e.from === 'src/server.ts' && e.to === 'src/http/HttpServer.ts'));
  assert.ok(edges.some((e) => e.from === 'src/core/CmafFeed.ts' && e.to === 'src/media/fmp4/fragment.ts'));
});

test('no import runs the wrong way', () => {
  const found = violations(edges).map(({ edge, rule }) => `${edge.from} -> ${edge.to}: ${rule}`);
  assert.deepEqual(found, []);
});

test('every allow-list entry still matches an import (fixed ones are removed from the list)', () => {
  const stale = ALLOWED.filter((a) => !edges.some((e) => e.from === a.from && e.to === a.to));
  assert.deepEqual(stale, []);
});

const WRONG_WAY: [string, ImportEdge][] = [
  ['media -> core', { from: 'src/media/fmp4/init.ts', to: 'src/core/Stream.ts' }],
  ['media -> protocols', { from: 'src/media/flv/video.ts', to: 'src/protocols/rtmp/codecs.ts' }],
  ['core -> protocols', { from: 'src/core/Stream.ts', to: 'src/protocols/mse/MseServer.ts' }],
  ['core -> http', { from: 'src/core/describe.ts', to: 'src/http/openapi.ts' }],
  ['client -> core', { from: 'client/player/SubsecondPlayer.ts', to: 'src/core/Stream.ts' }],
  ['client -> media', { from: 'client/player/mse/MseTransport.ts', to: 'src/media/fmp4/reader.ts' }],
  ['shared -> core', { from: 'src/shared/streamPath.ts', to: 'src/core/log.ts' }],
  ['transport -> protocols', { from: 'src/transport/websocketFrame.ts', to: 'src/protocols/mse/wsFrame.ts' }],
  [
    'protocols/hls -> protocols/dash',
    { from: 'src/protocols/hls/HlsServer.ts', to: 'src/protocols/dash/mpd.ts' },
  ],
  [
    'protocols/dash -> protocols/hls (new)',
    { from: 'src/protocols/dash/mpd.ts', to: 'src/protocols/hls/playlist.ts' },
  ],
  [
    'protocols/mse -> protocols/webrtc',
    { from: 'src/protocols/mse/MseServer.ts', to: 'src/protocols/webrtc/sdp.ts' },
  ],
  ['protocols -> http', { from: 'src/protocols/mse/MseServer.ts', to: 'src/http/HttpServer.ts' }],
  ['messaging -> http', { from: 'src/messaging/ws/textFrame.ts', to: 'src/http/metrics.ts' }],
  ['dashboard -> http', { from: 'src/dashboard/StreamListEvents.ts', to: 'src/http/HttpServer.ts' }],
];

for (const [name, edge] of WRONG_WAY) {
  test(`a wrong-way import is refused: ${name}`, () => {
    assert.notDeepEqual(violations([edge]), [], `${edge.from} -> ${edge.to} passed`);
  });
}

const RIGHT_WAY: [string, ImportEdge][] = [
  ['core -> media', { from: 'src/core/CmafFeed.ts', to: 'src/media/fmp4/fragment.ts' }],
  ['client -> shared', { from: 'client/player/SubsecondPlayer.ts', to: 'src/shared/streamPath.ts' }],
  ['protocols -> core', { from: 'src/protocols/rtmp/RtmpIngest.ts', to: 'src/core/Stream.ts' }],
  ['server.ts -> http', { from: 'src/server.ts', to: 'src/http/HttpServer.ts' }],
  ['cli -> http', { from: 'src/cli/main.ts', to: 'src/http/openapi.ts' }],
];

for (const [name, edge] of RIGHT_WAY) {
  test(`a right-way import passes: ${name}`, () => {
    assert.deepEqual(violations([edge]), []);
  });
}

test('imports are read in every form: value, type-only, re-export, multi-line and dynamic', () => {
  const source = [
    "import { a } from './a.ts';",
    "import type { B } from '../b/B.ts';",
    "export { c } from './c.ts';",
    'import {\n  d,\n  e,\n} from "./de.ts";',
    "const f = await import('./f.ts');",
    "import { readFileSync } from 'node:fs';",
  ].join('\n');
  assert.deepEqual(
    importsOf('src/x/y.ts', source).map((e) => e.to),
    ['src/x/a.ts', 'src/b/B.ts', 'src/x/c.ts', 'src/x/de.ts', 'src/x/f.ts'],
  );
});
