/** The dashboard (`/`): live streams from the control API, kept current by Server-Sent Events. */
import { byId, element } from './dom.ts';
import { describeTrack, formatBitrate, formatDuration, playPageHref, type TrackSummary } from './format.ts';
import { mountRecordings } from './recordings-panel.ts';

interface StreamSummary {
  path: string;
  live: boolean;
  publisher?: { protocol: string; remoteAddress: string } | null;
  publishedAt?: string;
  uptimeMs?: number;
  tracks?: TrackSummary[];
  bitrate?: number;
  viewers?: {
    total: number;
    byProtocol?: Record<string, number>;
    acrossNodes?: { total: number; byProtocol: Record<string, number>; nodes: number };
  };
  warnings?: string[];
}

interface StreamList {
  streams: StreamSummary[];
}

const list = byId('streams', HTMLTableSectionElement);
const table = byId('stream-table', HTMLTableElement);
const empty = byId('empty', HTMLElement);
const count = byId('stream-count', HTMLElement);
const connection = byId('connection', HTMLElement);
const publishCommand = byId('publish-command', HTMLElement);

/** Uptime cells with the uptime they showed when the list arrived, for the client-side clock. */
let uptimeCells: { cell: HTMLElement; uptimeMs: number }[] = [];
let listReceivedAt = performance.now();

function isStreamList(value: unknown): value is StreamList {
  return typeof value === 'object' && value !== null && Array.isArray((value as StreamList).streams);
}

function trackCell(tracks: TrackSummary[]): HTMLElement {
  const cell = element('td', { class: 'tracks' });
  if (tracks.length === 0) cell.append(element('span', { class: 'muted' }, 'waiting for tracks'));
  for (const track of tracks) {
    cell.append(element('div', { title: track.codecString ?? '' }, describeTrack(track)));
  }
  return cell;
}

function viewersCell(viewers: StreamSummary['viewers']): HTMLElement {
  const cell = element('td', { class: 'num viewers' }, String(viewers?.total ?? 0));
  const parts = Object.entries(viewers?.byProtocol ?? {})
    .filter(([, n]) => n > 0)
    .map(([protocol, n]) => `${protocol} ${n}`);
  if (parts.length) cell.append(element('div', { class: 'muted small' }, parts.join(' · ')));
  const cluster = viewers?.acrossNodes;
  if (cluster) {
    cell.append(
      element('div', { class: 'muted small' }, `${cluster.total} on ${cluster.nodes} node(s) of the cluster`),
    );
  }
  return cell;
}

function warningsCell(warnings: string[]): HTMLElement {
  const cell = element('td', { class: 'warnings' });
  for (const warning of warnings) cell.append(element('div', { class: 'warning' }, warning));
  return cell;
}

function row(stream: StreamSummary): HTMLTableRowElement {
  const uptime = element('td', { class: 'num uptime' });
  uptimeCells.push({ cell: uptime, uptimeMs: stream.uptimeMs ?? 0 });
  const publisher = stream.publisher
    ? element(
        'div',
        { class: 'muted small' },
        `${stream.publisher.protocol} from ${stream.publisher.remoteAddress}`,
      )
    : null;
  return element(
    'tr',
    { 'data-path': stream.path },
    element(
      'td',
      { class: 'path' },
      element('a', { href: playPageHref(stream.path) }, stream.path),
      publisher,
    ),
    trackCell(stream.tracks ?? []),
    element('td', { class: 'num' }, formatBitrate(stream.bitrate ?? 0)),
    viewersCell(stream.viewers),
    uptime,
    warningsCell(stream.warnings ?? []),
  );
}

function render(data: StreamList): void {
  const streams = data.streams.filter((s) => s.live).sort((a, b) => a.path.localeCompare(b.path));
  uptimeCells = [];
  listReceivedAt = performance.now();
  list.replaceChildren(...streams.map(row));
  tickUptime();
  table.hidden = streams.length === 0;
  empty.hidden = streams.length !== 0;
  count.textContent = streams.length === 1 ? '1 live stream' : `${streams.length} live streams`;
}

function tickUptime(): void {
  const elapsed = performance.now() - listReceivedAt;
  for (const { cell, uptimeMs } of uptimeCells) cell.textContent = formatDuration(uptimeMs + elapsed);
}

function setConnection(state: 'live' | 'connecting' | 'offline', text: string): void {
  connection.dataset.state = state;
  connection.textContent = text;
}

function accept(text: string): void {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return;
  }
  if (isStreamList(data)) render(data);
}

async function loadOnce(): Promise<void> {
  try {
    const response = await fetch('/api/v1/streams', { headers: { accept: 'application/json' } });
    if (response.ok) accept(await response.text());
  } catch {
    // The event stream below reports the connection state; nothing to add here.
  }
}

function subscribe(): void {
  // EventSource reconnects by itself (the server sends `retry:`); each connection starts with a full list.
  const events = new EventSource('/api/v1/events');
  setConnection('connecting', 'connecting…');
  events.addEventListener('open', () => setConnection('live', 'live updates'));
  events.addEventListener('error', () => {
    if (events.readyState !== EventSource.CLOSED) {
      setConnection('connecting', 'reconnecting…');
      return;
    }
    // EventSource gives up for good on an HTTP error or a wrong content type; try again later ourselves.
    setConnection('offline', 'offline — retrying');
    setTimeout(subscribe, 5000);
  });
  events.addEventListener('streams', (event) => accept((event as MessageEvent<string>).data));
}

/** The publish hint names the RTMP port this server really listens on. */
async function showPublishCommand(): Promise<void> {
  let port = 1935;
  try {
    const response = await fetch('/api/v1/server', { headers: { accept: 'application/json' } });
    if (response.ok) port = ((await response.json()) as { rtmp?: { port?: number } }).rtmp?.port ?? port;
  } catch {
    // Keep the default port in the hint.
  }
  publishCommand.textContent =
    port === 0
      ? 'RTMP is disabled on this server (rtmp.enabled: false)'
      : `ffmpeg -re -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine ` +
        `-c:v libx264 -tune zerolatency -g 60 -c:a aac -f flv rtmp://${location.hostname || 'localhost'}:${port}/live/cam1`;
}

void showPublishCommand();
void loadOnce();
subscribe();
setInterval(tickUptime, 1000);
mountRecordings();
