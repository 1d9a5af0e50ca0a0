// File transfers on the page: the Send a file button and its file picker, dropping files on the
// meeting (everyone) or on one tile (that person), and one card per transfer with what is
// offered, Accept / Decline, a progress bar with speed and time left, Cancel, and how it ended.
// Owns the ids `send-file`, `file-input` and `transfers`. Where the received bytes go is chosen
// here, on the Accept click: a file on disk through the File System Access API where the browser
// has it (the bytes are written as they come), otherwise memory up to MEMORY_CAP_BYTES.

import { MEMORY_CAP_BYTES, formatBytes, memorySink, streamSink } from '../files.js';
import { announce, byId, el, setLabel } from './dom.js';

/**
 * @typedef {import('../i18n.js').Translate} Translate
 * @typedef {import('../files.js').Transfer} Transfer
 * @typedef {import('../files.js').FileLink} FileLink
 */

/** Whether received files can go straight to disk here (Chromium's File System Access API). */
export function canStreamToDisk() {
  return typeof (/** @type {any} */ (window).showSaveFilePicker) === 'function';
}

export class FilesView {
  /**
   * @param {Translate} t
   * @param {string} lang
   * @param {(id: string) => string} nameOf a peer's name
   */
  constructor(t, lang, nameOf) {
    this.t = t;
    this.lang = lang;
    this.nameOf = nameOf;
    this.el = {
      send: byId('send-file', HTMLButtonElement),
      input: byId('file-input', HTMLInputElement),
      list: byId('transfers'),
    };
    setLabel(this.el.send, t('sendFile'));
    /** Who the next picked files go to: null for everyone. @type {string | null} */
    this.target = null;
    /** @type {Map<Transfer, HTMLElement>} */
    this.cards = new Map();
  }

  /**
   * @param {{ files: (files: File[], to: string | null) => void, active: () => boolean }} actions
   *   `files`: files chosen or dropped, for one peer or (null) everyone; `active`: the meeting is
   *   on screen (drops elsewhere are the browser's).
   */
  bind(actions) {
    const { el: els } = this;
    els.send.addEventListener('click', () => this.pick(null));
    els.input.addEventListener('change', () => {
      const files = [...(els.input.files ?? [])];
      els.input.value = '';
      if (files.length) actions.files(files, this.target);
    });
    /** @param {DragEvent} event */
    const tileOf = (event) => {
      const tile = /** @type {HTMLElement | null} */ (/** @type {Element} */ (event.target)?.closest?.('figure.tile'));
      const id = tile?.dataset.peer;
      return id && id !== 'self' ? tile : null;
    };
    /** @type {HTMLElement | null} */
    let marked = null;
    const mark = (/** @type {HTMLElement | null} */ tile) => {
      if (marked === tile) return;
      marked?.classList.remove('drop-target');
      marked = tile;
      marked?.classList.add('drop-target');
    };
    document.addEventListener('dragover', (event) => {
      if (!actions.active() || !event.dataTransfer?.types.includes('Files')) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = 'copy';
      document.body.classList.add('dropping');
      mark(tileOf(event));
    });
    document.addEventListener('dragleave', (event) => {
      if (event.relatedTarget) return;
      document.body.classList.remove('dropping');
      mark(null);
    });
    document.addEventListener('drop', (event) => {
      if (!actions.active() || !event.dataTransfer?.files.length) return;
      event.preventDefault();
      const to = tileOf(event)?.dataset.peer ?? null;
      document.body.classList.remove('dropping');
      mark(null);
      actions.files([...event.dataTransfer.files], to);
    });
  }

  /** Opens the file picker for one peer or (null) everyone. @param {string | null} to */
  pick(to) {
    this.target = to;
    this.el.input.click();
  }

  /** @param {string} text */
  #note(text) {
    const card = el('li', 'transfer note', text);
    this.#add(card);
    setTimeout(() => card.remove(), 8000);
  }

  /** Some peers could not be reached (their link is not up yet). @param {string[]} ids */
  unreachable(ids) {
    for (const id of ids) this.#note(this.t('fileNoLink', { name: this.nameOf(id) }));
  }

  /** There is nobody to send to. */
  nobody() {
    this.#note(this.t('fileNobody'));
  }

  /** @param {HTMLElement} card */
  #add(card) {
    this.el.list.append(card);
    this.el.list.hidden = false;
  }

  /**
   * A transfer to show, ours or offered to us.
   * @param {Transfer} transfer
   * @param {FileLink} link
   */
  show(transfer, link) {
    const card = el('li', `transfer ${transfer.direction}`);
    card.dataset.state = transfer.state;
    const title = el('p', 'transfer-title');
    const detail = el('p', 'transfer-detail');
    const bar = /** @type {HTMLProgressElement} */ (el('progress'));
    bar.max = Math.max(1, transfer.size);
    bar.value = 0;
    bar.setAttribute('aria-label', transfer.name);
    const figures = el('p', 'transfer-figures');
    const buttons = el('div', 'row');
    card.append(title, detail, bar, figures, buttons);
    this.#add(card);
    this.cards.set(transfer, card);
    // The name as it was: a peer who left is no longer in the room to look up.
    const name = this.nameOf(transfer.peer);
    const render = () => this.#render(transfer, link, { card, title, detail, bar, figures, buttons, name });
    transfer.addEventListener('change', () => {
      // Progress comes with every chunk: draw at most once a frame.
      if (card.dataset.pending) return;
      card.dataset.pending = '1';
      requestAnimationFrame(() => {
        delete card.dataset.pending;
        render();
      });
    });
    render();
    // Said, not focused: the person may be typing in the chat.
    if (transfer.direction === 'in') announce(this.t('fileOffered', { name, file: transfer.name }));
  }

  /**
   * @param {Transfer} transfer
   * @param {FileLink} link
   * @param {{ card: HTMLElement, title: HTMLElement, detail: HTMLElement, bar: HTMLProgressElement,
   *           figures: HTMLElement, buttons: HTMLElement, name: string }} parts
   */
  #render(transfer, link, { card, title, detail, bar, figures, buttons, name }) {
    const t = this.t;
    const vars = { name, file: transfer.name };
    const size = formatBytes(transfer.size, this.lang);
    const stateChanged = card.dataset.state !== transfer.state || !buttons.childElementCount;
    card.dataset.state = transfer.state;
    const out = transfer.direction === 'out';
    const moving = ['sending', 'receiving', 'checking'].includes(transfer.state);
    bar.hidden = !moving;
    bar.value = transfer.bytes;
    figures.hidden = !moving;
    if (moving) {
      const rate = transfer.pace.rate;
      const left = transfer.pace.secondsLeft(transfer.size);
      figures.textContent = t('fileFigures', {
        done: formatBytes(transfer.bytes, this.lang),
        size,
        speed: rate === null ? '…' : `${formatBytes(rate, this.lang)}/${t('perSecond')}`,
        left: left === null ? '…' : formatSeconds(left, t),
      });
    }
    if (!stateChanged) return;
    detail.textContent = t('fileDetail', { size, type: transfer.type || t('fileTypeUnknown') });
    buttons.replaceChildren();
    const button = (/** @type {string} */ key, /** @type {() => void} */ fn, cls = 'ghost small') => {
      const b = el('button', cls, t(key));
      b.type = 'button';
      b.addEventListener('click', fn);
      buttons.append(b);
      return b;
    };
    const dismiss = () => button('dismiss', () => {
      card.remove();
      this.cards.delete(transfer);
      if (!this.el.list.childElementCount) this.el.list.hidden = true;
    });
    switch (transfer.state) {
      case 'offered':
        if (out) {
          title.textContent = t('fileWaitingFor', vars);
          button('cancel', () => link.cancel(transfer));
        } else {
          title.textContent = t('fileOffered', vars);
          const tooBig = !canStreamToDisk() && transfer.size > MEMORY_CAP_BYTES;
          if (tooBig) {
            detail.textContent = `${detail.textContent} ${t('fileTooBig', { cap: formatBytes(MEMORY_CAP_BYTES, this.lang) })}`;
          } else {
            button('accept', () => this.#accept(transfer, link), 'primary small');
          }
          button('decline', () => link.decline(transfer));
        }
        break;
      case 'waiting':
        title.textContent = out ? t('fileWaitingFor', vars) : t('fileChoosing', vars);
        button('cancel', () => link.cancel(transfer));
        break;
      case 'sending':
      case 'receiving':
      case 'checking':
        title.textContent = t(out ? 'fileSending' : 'fileReceiving', vars);
        button('cancel', () => link.cancel(transfer));
        break;
      case 'done':
        title.textContent = t(out ? 'fileSent' : 'fileReceived', vars);
        if (transfer.blob) {
          const blob = transfer.blob;
          button('save', () => saveBlob(blob, transfer.name), 'primary small');
        }
        dismiss();
        break;
      default:
        title.textContent = t(endKey(transfer), vars);
        card.setAttribute('role', 'status');
        dismiss();
        break;
    }
  }

  /**
   * Accept: where the browser allows it, ask where to save (the click is the permission) and
   * write as the bytes come; otherwise keep the file in memory until Save.
   * @param {Transfer} transfer
   * @param {FileLink} link
   */
  async #accept(transfer, link) {
    if (!canStreamToDisk()) {
      link.accept(transfer, memorySink(transfer.type));
      return;
    }
    link.choosing(transfer);
    try {
      const handle = await /** @type {any} */ (window).showSaveFilePicker({ suggestedName: transfer.name });
      const writable = await handle.createWritable();
      link.accept(transfer, streamSink(writable));
    } catch (err) {
      // The picker was closed without a choice: that is a no.
      if (/** @type {any} */ (err)?.name !== 'AbortError') console.warn('save picker failed', err);
      link.decline(transfer);
    }
  }
}

/** @param {Transfer} transfer */
function endKey(transfer) {
  const out = transfer.direction === 'out';
  switch (transfer.state) {
    case 'declined':
      return out ? 'fileDeclinedThere' : 'fileDeclinedHere';
    case 'cancelled':
      return transfer.reason === 'cancelled-here' ? 'fileCancelledHere' : 'fileCancelledThere';
    case 'peer-left':
      return 'filePeerLeft';
    default:
      if (transfer.reason === 'corrupt') return 'fileCorrupt';
      if (transfer.reason === 'write') return 'fileWriteFailed';
      return 'fileFailed';
  }
}

/** @param {number} seconds @param {Translate} t */
function formatSeconds(seconds, t) {
  const s = Math.ceil(seconds);
  if (s < 60) return t('secondsLeft', { n: s });
  return t('minutesLeft', { n: Math.ceil(s / 60) });
}

/** Offers a file kept in memory as a download. @param {Blob} blob @param {string} name */
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = /** @type {HTMLAnchorElement} */ (el('a'));
  a.href = url;
  a.download = name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
