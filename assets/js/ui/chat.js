// The chat panel: messages rendered strictly as text, newest at the bottom; the form says how
// much of the server's byte limit a message takes as it is typed, and why one was not sent.

import { MAX_CHAT_BYTES, checkChat } from '../chat-rules.js';
import { byId, el } from './dom.js';

export { MAX_CHAT_BYTES };

/** @typedef {import('../i18n.js').Translate} Translate */

/** The counter shows once a message takes this share of the limit (short messages need none). */
const COUNT_FROM = 0.5;

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
    // textContent only: a message is never markup, whatever it contains. Its own paragraph,
    // its direction from its own first strong letter, so a right-to-left message (or a stray
    // direction mark) reorders nothing around it.
    const text = el('p', 'chat-text', line.text);
    text.dir = 'auto';
    item.append(head, text);
    this.log.append(item);
    this.log.scrollTop = this.log.scrollHeight;
  }

  clear() {
    this.log.replaceChildren();
  }
}

/** Trims a message; null if the server would not take it (see chat-rules.js for why). */
export function prepareChat(text) {
  const check = checkChat(text);
  return check.ok ? check.text : null;
}

/**
 * What the form says about a message as typed: the counter's text (null: hidden) and, for one
 * that cannot be sent, why (null: it can).
 * @param {Translate} t
 * @param {string} text
 * @returns {{ count: string | null, over: boolean, why: string | null }}
 */
export function chatStatus(t, text) {
  const check = checkChat(text);
  const over = !check.ok && check.reason === 'tooLong';
  const count = check.bytes >= MAX_CHAT_BYTES * COUNT_FROM
    ? t(over ? 'chatOver' : 'chatCount', { used: check.bytes, max: MAX_CHAT_BYTES, over: over ? check.over : 0 })
    : null;
  /** @type {string | null} */
  let why = null;
  if (!check.ok && check.reason === 'tooLong') why = t('chatTooLong', { over: check.over, max: MAX_CHAT_BYTES });
  if (!check.ok && check.reason === 'unsafe') why = t('chatUnsafe', { char: check.char });
  return { count, over, why };
}

/**
 * The chat panel on the page: the log, the form, and the toolbar button that opens it with its
 * unread count. Owns those element ids.
 */
export class ChatView {
  /** @param {Translate} t */
  constructor(t) {
    this.t = t;
    this.el = {
      panel: byId('chat'),
      log: byId('chat-log', HTMLOListElement),
      form: byId('chat-form', HTMLFormElement),
      input: byId('chat-input', HTMLInputElement),
      count: byId('chat-count'),
      error: byId('chat-error'),
      close: byId('chat-close', HTMLButtonElement),
      toggle: byId('chat-toggle', HTMLButtonElement),
      unread: byId('unread'),
    };
    this.panel = new ChatPanel(this.el.log);
    /** The last message sent and not yet seen back from the server, to give back if refused. */
    this.pending = '';
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
    const { el } = this;
    el.toggle.addEventListener('click', actions.toggle);
    el.close.addEventListener('click', actions.close);
    el.input.addEventListener('input', () => this.#render(false));
    el.form.addEventListener('submit', (event) => {
      event.preventDefault();
      const check = checkChat(el.input.value);
      if (!check.ok) {
        // Say why, keep the text: never a silent drop.
        if (check.reason !== 'empty') this.#render(true);
        el.input.focus();
        return;
      }
      if (!actions.send(check.text)) {
        this.showError(this.t('chatNotConnected'));
        return;
      }
      this.pending = check.text;
      el.input.value = '';
      this.#render(false);
    });
  }

  /** A line of mine came back from the server: it was taken. @param {string} text */
  confirmed(text) {
    if (text === this.pending) this.pending = '';
  }

  /**
   * The server refused what was last sent. If a message of mine is waiting, say so beside it
   * and give its text back; returns false when none is (the caller says it elsewhere).
   * @param {string} why
   */
  refused(why) {
    if (!this.pending) return false;
    if (!this.el.input.value) this.el.input.value = this.pending;
    this.pending = '';
    this.#render(false);
    this.showError(why);
    return true;
  }

  /** @param {string | null} text null hides it */
  showError(text) {
    this.el.error.hidden = !text;
    this.el.error.textContent = text ?? '';
  }

  /** The counter and, after a Send that could not go (`tried`), why. @param {boolean} tried */
  #render(tried) {
    const status = chatStatus(this.t, this.el.input.value);
    this.el.count.hidden = !status.count;
    this.el.count.textContent = status.count ?? '';
    this.el.count.classList.toggle('over', status.over);
    if (status.why) this.el.input.setAttribute('aria-invalid', 'true');
    else this.el.input.removeAttribute('aria-invalid');
    if (tried) this.showError(status.why);
    else if (!status.why) this.showError(null);
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
