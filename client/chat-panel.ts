/**
 * A chat panel — messages, a composer, reactions and presence — over the messaging client, mounted into any
 * page (`/chat/{channel}`, the player page). Messages are data: every value from the server is set as text,
 * never parsed as HTML.
 */
import { element } from './dom.ts';
import {
  ChannelEvent,
  type ChannelMessage,
  type ChannelOptions,
  type ChannelStateChange,
  channel,
  type SubsecondChannel,
} from './messaging/index.ts';

const STATE_TEXT: Record<ChannelStateChange['state'], string> = {
  connecting: 'connecting…',
  open: 'connected',
  reconnecting: 'reconnecting…',
  closed: 'closed',
};

const REACTIONS = ['👍', '❤️', '😂', '🎉'];

function textOf(message: ChannelMessage): string {
  const data = message.data as { text?: unknown } | string | null;
  if (typeof data === 'string') return data;
  if (data && typeof data === 'object' && typeof data.text === 'string') return data.text;
  return JSON.stringify(data);
}

/** Builds the panel inside `root` and opens the channel; throws (with the reason) on a bad name or option. */
export function mountChat(root: HTMLElement, name: string, options: ChannelOptions = {}): SubsecondChannel {
  const state = element('span', { class: 'state chat-state', 'data-state': 'connecting' }, 'connecting…');
  const presence = element('span', { class: 'muted chat-presence' });
  const transport = element('span', { class: 'muted small chat-transport' });
  const list = element('ol', { class: 'messages', 'aria-live': 'polite' });
  const counts = new Map<string, HTMLElement>();
  const reactions = element(
    'fieldset',
    { class: 'reactions' },
    element('legend', { class: 'muted small' }, 'React'),
  );
  for (const reaction of REACTIONS) {
    const count = element('span', {}, '0');
    counts.set(reaction, count);
    reactions.append(
      element('button', { type: 'button', class: 'ghost', 'data-reaction': reaction }, `${reaction} `, count),
    );
  }
  const input = element('input', {
    name: 'text',
    autocomplete: 'off',
    maxlength: '2000',
    placeholder: 'Say something…',
    required: '',
    'aria-label': 'Message',
  });
  const form = element('form', { class: 'compose' }, input, element('button', { type: 'submit' }, 'Send'));
  const error = element('p', { class: 'error', role: 'alert' });
  error.hidden = true;
  root.append(
    element('div', { class: 'chat-status' }, state, presence, transport),
    list,
    reactions,
    form,
    error,
  );

  const showError = (message: string) => {
    error.textContent = message;
    error.hidden = false;
  };
  const chat = channel(name, options);
  chat.on(ChannelEvent.Message, (message) => {
    if (message.type === 'reaction') {
      const count = counts.get(String(message.data));
      if (count) count.textContent = String(Number(count.textContent) + 1);
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
    list.scrollTop = list.scrollHeight;
  });
  chat.on(ChannelEvent.Gap, (gap) => {
    list.append(
      element(
        'li',
        { class: 'notice' },
        `${gap.missed} earlier message${gap.missed === 1 ? '' : 's'} not shown`,
      ),
    );
  });
  chat.on(ChannelEvent.Presence, (p) => {
    presence.textContent = `${p.connections} here${p.viewers === undefined ? '' : ` · ${p.viewers} watching`}`;
  });
  chat.on(ChannelEvent.State, (change) => {
    state.dataset.state = change.state === 'open' ? 'playing' : change.state;
    state.textContent = STATE_TEXT[change.state];
    transport.textContent = change.transport ?? '';
    if (change.state === 'open') error.hidden = true;
  });
  chat.on(ChannelEvent.Error, (e) => showError(e.message));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = '';
    chat.publish('chat', { text }).catch((e: Error) => {
      showError(e.message);
      input.value = text;
    });
  });
  reactions.addEventListener('click', (event) => {
    const button = (event.target as Element).closest('[data-reaction]');
    if (!button) return;
    chat.publish('reaction', button.getAttribute('data-reaction')).catch((e: Error) => showError(e.message));
  });
  return chat;
}
