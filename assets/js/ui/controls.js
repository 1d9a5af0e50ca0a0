// The meeting's controls: the toolbar (microphone, camera, audio only, flip, screen, hand, leave), the top
// bar's room name and invite button, and the keyboard shortcuts. Owns those element ids; the
// chat and room-settings buttons belong to their panels (ui/chat.js, ui/host-panel.js).

import { REACTIONS } from '../protocol.js';
import { byId, el as make, setLabel } from './dom.js';
import { renderToggle } from './lobby.js';

/** @typedef {import('../i18n.js').Translate} Translate */

/**
 * @typedef {{ mic: () => void, cam: () => void, flip: () => void, screen: () => void,
 *             hand: () => void, chat: () => void, leave: () => void, invite: () => void,
 *             audioOnly: () => void, react: (emoji: string) => void, pip: () => void }} ControlActions
 */

export class Controls {
  /** @param {Translate} t @param {string} room */
  constructor(t, room) {
    this.t = t;
    this.el = {
      toolbar: byId('controls'),
      roomLabel: byId('room-label'),
      invite: byId('invite', HTMLButtonElement),
      mic: byId('mic', HTMLButtonElement),
      cam: byId('cam', HTMLButtonElement),
      audioOnly: byId('audio-only', HTMLButtonElement),
      flip: byId('flip', HTMLButtonElement),
      screen: byId('screen', HTMLButtonElement),
      hand: byId('hand', HTMLButtonElement),
      reactions: byId('reactions', HTMLButtonElement),
      reactionsMenu: byId('reactions-menu'),
      pip: byId('pip', HTMLButtonElement),
      leave: byId('leave', HTMLButtonElement),
    };
    this.el.roomLabel.textContent = room;
    // Icon-only buttons: the translated label is the accessible name and the tooltip.
    for (const button of this.el.toolbar.querySelectorAll('.ctl')) {
      setLabel(/** @type {HTMLElement} */ (button), button.querySelector('.label')?.textContent ?? '');
    }
    this.el.leave.title = t('leave');
  }

  /**
   * @param {ControlActions} actions
   * @param {() => boolean} inMeeting shortcuts work only while the meeting is on screen
   */
  bind(actions, inMeeting) {
    const { el } = this;
    el.mic.addEventListener('click', actions.mic);
    el.cam.addEventListener('click', actions.cam);
    el.audioOnly.addEventListener('click', actions.audioOnly);
    el.flip.addEventListener('click', actions.flip);
    el.screen.addEventListener('click', actions.screen);
    el.hand.addEventListener('click', actions.hand);
    el.leave.addEventListener('click', actions.leave);
    el.invite.addEventListener('click', actions.invite);
    el.pip.addEventListener('click', actions.pip);
    // Reactions: a small menu of emoji buttons, each named in words for screen readers.
    REACTIONS.forEach((emoji, index) => {
      const button = /** @type {HTMLButtonElement} */ (make('button', 'reaction-pick', emoji));
      button.type = 'button';
      button.setAttribute('aria-label', this.t(`react_${index}`));
      button.title = this.t(`react_${index}`);
      button.addEventListener('click', () => {
        actions.react(emoji);
        this.showReactions(false);
      });
      el.reactionsMenu.append(button);
    });
    el.reactions.addEventListener('click', () => this.showReactions(el.reactionsMenu.hidden === true));
    el.reactionsMenu.addEventListener('keydown', (event) => {
      if (event.key !== 'Escape') return;
      this.showReactions(false);
      el.reactions.focus();
    });
    document.addEventListener('click', (event) => {
      const target = /** @type {Node | null} */ (event.target);
      if (!el.reactionsMenu.hidden && target && !el.reactions.contains(target) && !el.reactionsMenu.contains(target)) this.showReactions(false);
    });
    document.addEventListener('keydown', (event) => {
      if (!inMeeting() || event.target instanceof HTMLInputElement) return;
      if (!(event.ctrlKey || event.metaKey) || event.altKey) return;
      const key = event.key.toLowerCase();
      /** @type {Record<string, () => void>} */
      const keys = event.shiftKey
        ? { s: actions.screen, h: actions.hand, c: actions.chat }
        : { d: actions.mic, e: actions.cam };
      const action = keys[key];
      if (action) {
        event.preventDefault();
        action();
      }
    });
  }

  /** @param {{ audio: boolean, video: boolean }} on */
  renderToggles(on) {
    renderToggle(this.el.mic, on.audio, this.t('micOff'), this.t('micOn'));
    renderToggle(this.el.cam, on.video, this.t('cameraOff'), this.t('cameraOn'));
  }

  /**
   * Audio only is a toggle with a fixed name ("Audio only"): pressed means no video goes out or
   * comes in. `suggested` draws the eye to it when this page's own link is poor.
   * @param {boolean} on
   * @param {boolean} [suggested]
   */
  renderAudioOnly(on, suggested = false) {
    this.el.audioOnly.setAttribute('aria-pressed', String(on));
    this.el.audioOnly.dataset.on = String(on);
    this.el.audioOnly.classList.toggle('suggested', suggested && !on);
  }

  /** Opens or closes the reactions menu; focus goes to its first emoji. @param {boolean} open */
  showReactions(open) {
    this.el.reactionsMenu.hidden = !open;
    this.el.reactions.setAttribute('aria-expanded', String(open));
    if (open) /** @type {HTMLElement | null} */ (this.el.reactionsMenu.firstElementChild)?.focus();
  }

  /**
   * Picture in picture: shown only where the browser has it; pressed while it is open.
   * @param {boolean} available @param {boolean} open
   */
  renderPip(available, open) {
    this.el.pip.hidden = !available;
    this.el.pip.setAttribute('aria-pressed', String(open));
    this.el.pip.dataset.on = String(open);
  }

  /** The flip button only where there is a second camera to flip to. @param {number} cameras */
  showFlip(cameras) {
    this.el.flip.hidden = cameras < 2;
  }

  /** @param {boolean} sharing */
  renderScreen(sharing) {
    setLabel(this.el.screen, this.t(sharing ? 'stopShare' : 'shareScreen'));
    this.el.screen.dataset.on = String(sharing);
  }

  /** @param {boolean} raised */
  renderHand(raised) {
    setLabel(this.el.hand, this.t(raised ? 'lowerHand' : 'raiseHand'));
    this.el.hand.dataset.on = String(raised);
  }
}
