// The Verify panel: one peer's safety code to read aloud, what a match means, the room's code,
// and Mark as verified. Owns the ids `verify-*`. It shows what app.js gives it and hands the
// clicks back; the codes come from safety-code.js.

import { byId } from './dom.js';

/**
 * @typedef {import('../i18n.js').Translate} Translate
 * @typedef {import('../safety-code.js').Trust} Trust
 * @typedef {{ name: string, code: string | null, trust: Trust, roomCode: string | null,
 *             connected: boolean }} VerifyShown
 *   `code` null: the link has not exchanged its keys yet; `roomCode` null: not every link has.
 */

export class VerifyView {
  /** @param {Translate} t */
  constructor(t) {
    this.t = t;
    this.el = {
      panel: byId('verify-panel'),
      title: byId('verify-title'),
      close: byId('verify-close', HTMLButtonElement),
      warning: byId('verify-warning'),
      explain: byId('verify-explain'),
      code: byId('verify-code'),
      status: byId('verify-status'),
      mark: byId('verify-mark', HTMLButtonElement),
      roomCode: byId('verify-room-code'),
    };
    /** The peer shown, or null when closed. @type {string | null} */
    this.peer = null;
    /** @type {Trust} */
    this.trust = 'unverified';
  }

  get isOpen() {
    return !this.el.panel.hidden;
  }

  /** @param {{ close: () => void, mark: (verified: boolean) => void }} actions */
  bind(actions) {
    this.el.close.addEventListener('click', actions.close);
    this.el.mark.addEventListener('click', () => actions.mark(this.trust !== 'verified'));
  }

  /** @param {string | null} peer null closes it */
  open(peer) {
    this.peer = peer;
    this.el.panel.hidden = peer === null;
    if (peer !== null) this.el.close.focus();
  }

  /** @param {VerifyShown} shown */
  render({ name, code, trust, roomCode, connected }) {
    const { t, el } = this;
    this.trust = trust;
    el.title.textContent = t('verifyTitle', { name });
    el.explain.textContent = t('verifyExplain', { name });
    el.code.textContent = code ?? t('codePending');
    el.code.setAttribute('aria-label', code ? t('codeSpoken', { code: code.split('').join(' ') }) : t('codePending'));
    el.warning.hidden = trust !== 'changed';
    el.warning.textContent = trust === 'changed' ? t('codeChanged', { name }) : '';
    el.status.textContent = trust === 'verified' ? t('verifiedStatus', { name }) : connected ? '' : t('codeNotConnected');
    el.mark.hidden = code === null;
    el.mark.textContent = t(trust === 'verified' ? 'forgetVerified' : 'markVerified');
    el.roomCode.textContent = roomCode ?? t('codePending');
  }
}
