// The meeting's controls: the toolbar (microphone, camera, audio only, flip, screen, hand, leave), the top
// bar's room name and invite button, and the keyboard shortcuts. Owns those element ids; the
// chat and room-settings buttons belong to their panels (ui/chat.js, ui/host-panel.js).

import { byId, setLabel } from './dom.js';
import { renderToggle } from './lobby.js';

/** @typedef {import('../i18n.js').Translate} Translate */

/**
 * @typedef {{ mic: () => void, cam: () => void, flip: () => void, screen: () => void,
 *             hand: () => void, chat: () => void, leave: () => void, invite: () => void,
 *             audioOnly: () => void }} ControlActions
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
