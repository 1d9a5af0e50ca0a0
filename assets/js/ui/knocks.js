// The host's list of people waiting to be let in ("Ask to join"): one group per knock with the
// name and Admit / Deny, and a short chime for a page that is not focused. Owns the element ids
// `knocks` and `knock-list`. Sends nothing: Admit and Deny call what app.js bound.

import { byId, el } from './dom.js';

/** @typedef {import('../i18n.js').Translate} Translate */
/** @typedef {import('../protocol.js').KnockInfo} KnockInfo */

export class KnockList {
  /** @param {Translate} t */
  constructor(t) {
    this.t = t;
    this.el = {
      region: byId('knocks'),
      list: byId('knock-list', HTMLUListElement),
    };
    /** @type {Map<string, HTMLLIElement>} */
    this.items = new Map();
    /** @type {{ admit: (id: string) => void, deny: (id: string) => void }} */
    this.actions = { admit: () => {}, deny: () => {} };
    /** @type {AudioContext | null} */
    this.audio = null;
  }

  /** @param {{ admit: (id: string) => void, deny: (id: string) => void }} actions */
  bind(actions) {
    this.actions = actions;
  }

  /** Shows a knock (again, it is replaced). @param {KnockInfo} knock */
  add({ id, name }) {
    const t = this.t;
    const item = /** @type {HTMLLIElement} */ (el('li', 'knock'));
    item.setAttribute('role', 'group');
    item.setAttribute('aria-label', t('knockFrom', { name }));
    item.dataset.knock = id;
    const text = el('p', 'knock-text', t('knockFrom', { name }));
    const admit = /** @type {HTMLButtonElement} */ (el('button', 'primary small', t('admit')));
    const deny = /** @type {HTMLButtonElement} */ (el('button', 'ghost small', t('deny')));
    admit.type = 'button';
    deny.type = 'button';
    admit.addEventListener('click', () => this.actions.admit(id));
    deny.addEventListener('click', () => this.actions.deny(id));
    const buttons = el('div', 'row');
    buttons.append(admit, deny);
    item.append(text, buttons);
    const old = this.items.get(id);
    if (old) old.replaceWith(item);
    else this.el.list.append(item);
    this.items.set(id, item);
    this.#render();
  }

  /** @param {string} id */
  remove(id) {
    this.items.get(id)?.remove();
    this.items.delete(id);
    this.#render();
  }

  clear() {
    this.el.list.replaceChildren();
    this.items.clear();
    this.#render();
  }

  /** A short two-note chime, for a host whose page is not focused. */
  ring() {
    try {
      this.audio ??= new AudioContext();
      const ctx = this.audio;
      void ctx.resume?.();
      for (const [at, freq] of [[0, 660], [0.18, 880]]) {
        const osc = ctx.createOscillator();
        const gain = ctx.createGain();
        osc.frequency.value = freq;
        gain.gain.setValueAtTime(0.0001, ctx.currentTime + at);
        gain.gain.exponentialRampToValueAtTime(0.2, ctx.currentTime + at + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + at + 0.16);
        osc.connect(gain).connect(ctx.destination);
        osc.start(ctx.currentTime + at);
        osc.stop(ctx.currentTime + at + 0.18);
      }
    } catch {
      // No audio here: the toast and the list still say it.
    }
  }

  #render() {
    this.el.region.hidden = this.items.size === 0;
  }
}
