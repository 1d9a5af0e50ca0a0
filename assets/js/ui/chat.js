// The chat panel: messages rendered strictly as text, newest at the bottom.

import { el } from './dom.js';

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
