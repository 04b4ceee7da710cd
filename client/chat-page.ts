/** The chat page (`/chat/{channel}`): one channel's chat panel; `?transport=` forces a transport. */
import { mountChat } from './chat-panel.ts';
import { byId } from './dom.ts';
import { CHANNEL_TRANSPORTS, type ChannelTransportKind, type SubsecondChannel } from './messaging/index.ts';

declare global {
  interface Window {
    /** The page's channel, for tests and the console. */
    subsecondChat?: SubsecondChannel;
  }
}

function main(): void {
  const prefix = '/chat/';
  const name = location.pathname.startsWith(prefix)
    ? decodeURIComponent(location.pathname.slice(prefix.length)).replace(/\/+$/, '')
    : '';
  byId('channel-name', HTMLElement).textContent = name || '(no channel)';
  document.title = `${name} · chat · Subsecond`;
  const root = byId('chat', HTMLElement);
  const fail = (message: string) =>
    root.append(Object.assign(document.createElement('p'), { className: 'error', textContent: message }));
  const requested = new URLSearchParams(location.search).get('transport') ?? 'auto';
  const kinds = CHANNEL_TRANSPORTS.map((f) => f.kind);
  const transport =
    requested === 'auto' ? 'auto' : kinds.find((kind): kind is ChannelTransportKind => kind === requested);
  if (!transport) {
    fail(`unknown transport "${requested}": use ?transport=auto or one of ${kinds.join(', ')}`);
    return;
  }
  try {
    // Show the recent history on arrival: resume from the start of what the server keeps.
    window.subsecondChat = mountChat(root, name, { transport, since: 0 });
  } catch (error) {
    fail((error as Error).message);
  }
}

main();
