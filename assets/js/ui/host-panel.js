// Room settings, for the host: lock, "Ask to join", password, Allow recording, and the button
// in the top bar that opens them.
// Owns those element ids. The panel sends nothing itself: it hands what was asked for to app.js,
// which sends it through protocol.js.

import { byId } from './dom.js';

/** @typedef {import('../i18n.js').Translate} Translate */

export class HostPanel {
  /** @param {Translate} t */
  constructor(t) {
    this.t = t;
    this.el = {
      open: byId('settings', HTMLButtonElement),
      panel: byId('host-panel'),
      close: byId('host-close', HTMLButtonElement),
      lock: byId('lock', HTMLButtonElement),
      ask: byId('ask-to-join', HTMLInputElement),
      allowRecording: byId('allow-recording', HTMLInputElement),
      passwordForm: byId('password-form', HTMLFormElement),
      newPassword: byId('new-password', HTMLInputElement),
      clearPassword: byId('clear-password', HTMLButtonElement),
      state: byId('room-state'),
    };
  }

  get isOpen() {
    return !this.el.panel.hidden;
  }

  /** Whether "Ask to join" shows as on. */
  get asks() {
    return this.el.ask.checked;
  }

  /**
   * @param {{ toggle: () => void, close: () => void, lock: () => void,
   *           setPassword: (password: string) => void, askToJoin: (on: boolean) => void,
   *           allowRecording: (allowed: boolean) => void }} actions
   *   `setPassword('')` clears it.
   */
  bind(actions) {
    const { el } = this;
    el.open.addEventListener('click', actions.toggle);
    el.close.addEventListener('click', actions.close);
    el.lock.addEventListener('click', actions.lock);
    el.ask.addEventListener('change', () => actions.askToJoin(el.ask.checked));
    el.allowRecording.addEventListener('change', () => actions.allowRecording(el.allowRecording.checked));
    el.passwordForm.addEventListener('submit', (event) => {
      event.preventDefault();
      const password = el.newPassword.value;
      if (password) actions.setPassword(password);
      el.newPassword.value = '';
    });
    el.clearPassword.addEventListener('click', () => actions.setPassword(''));
  }

  /** Only the host sees the button. @param {boolean} host */
  setHost(host) {
    this.el.open.hidden = !host;
  }

  /** @param {boolean} open */
  setOpen(open) {
    this.el.panel.hidden = !open;
    this.el.open.setAttribute('aria-expanded', String(open));
    if (open) this.el.lock.focus();
  }

  /** @param {{ locked: boolean, password: boolean, ask: boolean, recordingAllowed: boolean }} room */
  render({ locked, password, ask, recordingAllowed }) {
    const t = this.t;
    this.el.lock.textContent = t(locked ? 'unlockRoom' : 'lockRoom');
    this.el.ask.checked = ask;
    this.el.allowRecording.checked = recordingAllowed;
    this.el.state.textContent = t('roomState', {
      lock: t(locked ? 'roomLocked' : 'roomUnlocked'),
      password: t(password ? 'roomHasPassword' : 'roomNoPassword'),
    }) + (ask ? ` ${t('roomAsks')}` : '') + (recordingAllowed ? '' : ` ${t('roomRecordingOff')}`);
  }
}
