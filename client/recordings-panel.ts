/** The dashboard's recordings: every recorded path, its time ranges with play and download links. */
import { byId, element } from './dom.ts';
import { formatBytes, formatDuration } from './format.ts';

interface RecordedRange {
  start: string;
  end: string;
  durationSeconds: number;
  playUrl: string;
  downloadUrl: string;
}

interface RecordedPath {
  path: string;
  recording: boolean;
  files: number;
  bytes: number;
  codecs: string[];
  ranges: RecordedRange[];
}

const REFRESH_MS = 10_000;

function rangeItem(range: RecordedRange): HTMLElement {
  const when = `${new Date(range.start).toLocaleString()} · ${formatDuration(range.durationSeconds * 1000)}`;
  return element(
    'div',
    { class: 'range' },
    element('a', { href: range.playUrl, 'data-recording': '' }, when),
    ' · ',
    element('a', { href: range.downloadUrl, class: 'muted small' }, 'MP4'),
  );
}

function row(recorded: RecordedPath): HTMLTableRowElement {
  return element(
    'tr',
    { 'data-path': recorded.path },
    element(
      'td',
      { class: 'path' },
      recorded.path,
      recorded.recording ? element('div', { class: 'muted small' }, 'recording now') : null,
    ),
    element('td', {}, ...recorded.ranges.slice(-10).reverse().map(rangeItem)),
    element('td', { class: 'num' }, formatBytes(recorded.bytes)),
    element('td', {}, recorded.codecs.join(', ')),
  );
}

export function mountRecordings(): void {
  const section = byId('recordings', HTMLElement);
  const body = byId('recording-rows', HTMLTableSectionElement);
  const refresh = async () => {
    try {
      const response = await fetch('/api/v1/recordings', { headers: { accept: 'application/json' } });
      if (!response.ok) return;
      const { recordings } = (await response.json()) as { recordings: RecordedPath[] };
      body.replaceChildren(...recordings.map(row));
      section.hidden = recordings.length === 0;
    } catch {
      // The stream list's event stream shows whether the server is reachable.
    }
  };
  void refresh();
  setInterval(refresh, REFRESH_MS);
}
