// The chat panel: messages rendered strictly as text, newest at the bottom.

import { byId, el } from './dom.js';

/** Longest message the server takes, in bytes (docs/PROTOCOL.md). */
export const MAX_CHAT_BYTES = 2048;

export class ChatPanel {
  /** @param {HTMLOListElement} log */
  constructor(log) {
    this.log = log;
  }

  /**
   * @param {{ from: string, name: string, text: string, ts: number }} line
   * @param {boolean} mine
   */
  add(line, mine) {
    const item = el('li', mine ? 'chat-line mine' : 'chat-line');
    const head = el('div', 'chat-meta');
    head.append(el('strong', '', line.name));
    const time = el('time', '', new Date(line.ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }));
    time.dateTime = new Date(line.ts).toISOString();
    head.append(' ', time);
    // textContent only: a message is never markup, whatever it contains.
    item.append(head, el('p', 'chat-text', line.text));
    this.log.append(item);
    this.log.scrollTop = this.log.scrollHeight;
  }

  clear() {
    this.log.replaceChildren();
  }
}

/** Trims a message and checks it fits the server's bound. */
export function prepareChat(text) {
  const trimmed = String(text ?? '').trim();
  if (!trimmed) return null;
  if (new TextEncoder().encode(trimmed).length > MAX_CHAT_BYTES) return null;
  return trimmed;
}

/**
 * The chat panel on the page: the log, the form, and the toolbar button that opens it with its
 * unread count. Owns those element ids.
 */
export class ChatView {
  constructor() {
    this.el = {
      panel: byId('chat'),
      log: byId('chat-log', HTMLOListElement),
      form: byId('chat-form', HTMLFormElement),
      input: byId('chat-input', HTMLInputElement),
      close: byId('chat-close', HTMLButtonElement),
      toggle: byId('chat-toggle', HTMLButtonElement),
      unread: byId('unread'),
    };
    this.panel = new ChatPanel(this.el.log);
  }

  get isOpen() {
    return !this.el.panel.hidden;
  }

  /**
   * @param {{ toggle: () => void, close: () => void, send: (text: string) => boolean }} actions
   *   `send` gets a message that fits (prepareChat) and says whether it went; the box is cleared
   *   only then.
   */
  bind(actions) {
    this.el.toggle.addEventListener('click', actions.toggle);
    this.el.close.addEventListener('click', actions.close);
    this.el.form.addEventListener('submit', (event) => {
      event.preventDefault();
      const text = prepareChat(this.el.input.value);
      if (text && actions.send(text)) this.el.input.value = '';
    });
  }

  /** Opens or closes the panel; focus goes into it, or back to its button if it was inside. @param {boolean} open */
  setOpen(open) {
    this.el.panel.hidden = !open;
    this.el.toggle.setAttribute('aria-expanded', String(open));
    if (open) this.el.input.focus();
    else if (document.activeElement?.closest?.('#chat')) this.el.toggle.focus();
  }

  /** @param {number} count */
  setUnread(count) {
    this.el.unread.hidden = count === 0;
    this.el.unread.textContent = String(count);
  }
}
