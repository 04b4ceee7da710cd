import { readFileSync } from 'node:fs';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' };

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ESCAPES[c]);
}

/**
 * A guide from docs/ as a page: the markdown itself, escaped and preformatted, with headings made into anchors
 * and links made clickable. Markdown reads well as text; a converter would be a dependency for little.
 */
export function renderDocsPage(title: string, markdown: string): string {
  const body = escapeHtml(markdown)
    .replace(/^(#{1,4}) (.+)$/gm, (_m, hashes: string, text: string) => {
      const id = text
        .toLowerCase()
        .replace(/&[a-z]+;/g, '')
        .replace(/[^a-z0-9]+/g, '-')
        .replace(/^-|-$/g, '');
      return `<strong id="${id}" class="h${hashes.length}">${hashes} ${text}</strong>`;
    })
    .replace(/\[([^\]\n]+)\]\((https?:\/\/[^)\s]+|#[^)\s]+)\)/g, '[$1](<a href="$2">$2</a>)');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · Subsecond</title>
<style>
body { margin: 0 auto; max-width: 960px; padding: 16px; font: 14px/1.5 ui-monospace, monospace; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; }
.h1 { font-size: 1.6em; } .h2 { font-size: 1.3em; } .h3 { font-size: 1.1em; }
</style>
</head>
<body><pre>${body}</pre></body>
</html>
`;
}

/** The guides served under /docs/{name}: read on each request, so an edited file shows without a restart. */
export const SERVED_DOCS: Record<string, { file: string; title: string }> = {
  sdk: { file: 'sdk.md', title: 'Browser SDK' },
  publish: { file: 'publish.md', title: 'Publishing' },
  deploy: { file: 'deploy.md', title: 'Deploying' },
  metrics: { file: 'metrics.md', title: 'Metrics' },
};

export function readDocsPage(docsRoot: string, name: string): string | undefined {
  const doc = Object.hasOwn(SERVED_DOCS, name) ? SERVED_DOCS[name] : undefined;
  if (!doc) return undefined;
  return renderDocsPage(doc.title, readFileSync(`${docsRoot}/${doc.file}`, 'utf8'));
}
