// The room page's three screens (lobby, meeting, ended) and the meeting's passing messages: the
// connection banner, toasts, and the "only one here" line. Owns those element ids.

import { byId } from './dom.js';

/** @typedef {import('../i18n.js').Translate} Translate */
/** @typedef {'lobby' | 'meeting' | 'ended'} Screen */

/** How long a toast stays, in ms. */
const TOAST_MS = 4000;

export class Screens {
  /** @param {Translate} t */
  constructor(t) {
    this.t = t;
    this.el = {
      lobby: byId('lobby'),
      meeting: byId('meeting'),
      ended: byId('ended'),
      endedTitle: byId('ended-title'),
      endedWhy: byId('ended-why'),
      rejoin: byId('rejoin', HTMLButtonElement),
      home: byId('home', HTMLAnchorElement),
      banner: byId('banner'),
      toast: byId('toast'),
      alone: byId('alone'),
    };
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.toastTimer = undefined;
  }

  /** @param {() => void} handler */
  onRejoin(handler) {
    this.el.rejoin.addEventListener('click', handler);
  }

  /** @param {Screen} screen */
  is(screen) {
    return !this.el[screen].hidden;
  }

  /** @param {Screen} screen */
  show(screen) {
    for (const name of /** @type {Screen[]} */ (['lobby', 'meeting', 'ended'])) this.el[name].hidden = name !== screen;
  }

  /** The meeting is over for this page. @param {string} title @param {string} why '' for none */
  showEnded(title, why) {
    this.show('ended');
    this.el.endedTitle.textContent = title;
    this.el.endedWhy.textContent = why;
    this.el.rejoin.focus();
  }

  /** @param {string | null} text null hides it */
  banner(text) {
    this.el.banner.hidden = !text;
    this.el.banner.textContent = text ?? '';
  }

  /** @param {string} text */
  toast(text) {
    const node = this.el.toast;
    node.textContent = text;
    node.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => { node.hidden = true; }, TOAST_MS);
  }

  /** @param {boolean} alone */
  renderAlone(alone) {
    this.el.alone.hidden = !alone;
    this.el.alone.textContent = this.t('alone');
  }
}
