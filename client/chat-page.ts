/**
 * The chat page (`/chat/{channel}`): one channel's messages, a composer, reactions and presence, over the
 * messaging client. Messages are data: every value from the server is set as text, never parsed as HTML.
 */
import { byId, element } from './dom.ts';
import {
  CHANNEL_TRANSPORTS,
  ChannelEvent,
  type ChannelMessage,
  type ChannelStateChange,
  type ChannelTransportKind,
  channel,
  type SubsecondChannel,
} from './messaging/index.ts';

declare global {
  interface Window {
    /** The page's channel, for tests and the console. */
    subsecondChat?: SubsecondChannel;
  }
}

const list = byId('messages', HTMLOListElement);
const form = byId('compose', HTMLFormElement);
const input = byId('text', HTMLInputElement);
const stateLine = byId('state', HTMLElement);
const presenceLine = byId('presence', HTMLElement);
const transportLine = byId('transport', HTMLElement);
const errorLine = byId('error', HTMLElement);
const reactions = byId('reactions', HTMLFieldSetElement);

const STATE_TEXT: Record<ChannelStateChange['state'], string> = {
  connecting: 'connecting…',
  open: 'connected',
  reconnecting: 'reconnecting…',
  closed: 'closed',
};

function channelFromLocation(): string {
  const prefix = '/chat/';
  return location.pathname.startsWith(prefix)
    ? decodeURIComponent(location.pathname.slice(prefix.length)).replace(/\/+$/, '')
    : '';
}

function showError(message: string): void {
  errorLine.textContent = message;
  errorLine.hidden = false;
}

function scrollToEnd(): void {
  list.scrollTop = list.scrollHeight;
}

function textOf(message: ChannelMessage): string {
  const data = message.data as { text?: unknown } | string | null;
  if (typeof data === 'string') return data;
  if (data && typeof data === 'object' && typeof data.text === 'string') return data.text;
  return JSON.stringify(data);
}

function showMessage(message: ChannelMessage): void {
  if (message.type === 'reaction') {
    const button = reactions.querySelector(`[data-reaction="${CSS.escape(String(message.data))}"] span`);
    if (button) button.textContent = String(Number(button.textContent) + 1);
    return;
  }
  const time = new Date(message.time);
  list.append(
    element(
      'li',
      { 'data-id': String(message.id), 'data-from': message.from },
      element('time', { datetime: time.toISOString() }, time.toLocaleTimeString()),
      element('span', { class: 'from' }, message.from),
      element('span', { class: 'text' }, textOf(message)),
    ),
  );
  scrollToEnd();
}

function main(): void {
  const name = channelFromLocation();
  byId('channel-name', HTMLElement).textContent = name || '(no channel)';
  document.title = `${name} · chat · Subsecond`;
  const requested = new URLSearchParams(location.search).get('transport') ?? 'auto';
  const kinds = CHANNEL_TRANSPORTS.map((f) => f.kind);
  const transport =
    requested === 'auto' ? 'auto' : kinds.find((kind): kind is ChannelTransportKind => kind === requested);
  if (!transport) {
    showError(`unknown transport "${requested}": use ?transport=auto or one of ${kinds.join(', ')}`);
    return;
  }
  let chat: SubsecondChannel;
  try {
    // Show the recent history on arrival: resume from the start of what the server keeps.
    chat = channel(name, { transport, since: 0 });
  } catch (error) {
    showError((error as Error).message);
    return;
  }
  window.subsecondChat = chat;
  chat.on(ChannelEvent.Message, showMessage);
  chat.on(ChannelEvent.Gap, (gap) => {
    list.append(
      element(
        'li',
        { class: 'notice' },
        `${gap.missed} earlier message${gap.missed === 1 ? '' : 's'} not shown`,
      ),
    );
  });
  chat.on(ChannelEvent.Presence, (presence) => {
    presenceLine.textContent = `${presence.connections} here${presence.viewers === undefined ? '' : ` · ${presence.viewers} watching`}`;
  });
  chat.on(ChannelEvent.State, (change) => {
    stateLine.dataset.state = change.state === 'open' ? 'playing' : change.state;
    stateLine.textContent = STATE_TEXT[change.state];
    transportLine.textContent = change.transport ?? '';
    if (change.state === 'open') errorLine.hidden = true;
  });
  chat.on(ChannelEvent.Error, (error) => showError(error.message));

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = '';
    chat.publish('chat', { text }).catch((error: Error) => {
      showError(error.message);
      input.value = text;
    });
  });
  reactions.addEventListener('click', (event) => {
    const button = (event.target as Element).closest('[data-reaction]');
    if (!button) return;
    chat
      .publish('reaction', button.getAttribute('data-reaction'))
      .catch((error: Error) => showError(error.message));
  });
}

main();
