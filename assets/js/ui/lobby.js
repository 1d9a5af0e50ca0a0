// The lobby: name and password, the camera preview and level meter, the microphone and camera
// toggles before joining, and the device pickers. Owns every element id of the lobby's form,
// preview and pickers; knows nothing of the socket or of peers.

import { fillPicker } from '../devices.js';
import { byId, setLabel } from './dom.js';

/** @typedef {import('../i18n.js').Translate} Translate */

export class Lobby {
  /** @param {Translate} t @param {string} room */
  constructor(t, room) {
    this.t = t;
    this.el = {
      title: byId('join-title'),
      form: byId('join-form', HTMLFormElement),
      name: byId('name', HTMLInputElement),
      passwordField: byId('password-field'),
      password: byId('password', HTMLInputElement),
      join: byId('join', HTMLButtonElement),
      joinError: byId('join-error'),
      knockWait: byId('knock-wait'),
      knockWaitText: byId('knock-wait-text'),
      knockCancel: byId('knock-cancel', HTMLButtonElement),
      mediaError: byId('media-error'),
      insecure: byId('insecure'),
      insecureText: byId('insecure-text'),
      secureLink: byId('secure-link', HTMLAnchorElement),
      preview: byId('preview', HTMLVideoElement),
      previewOff: byId('preview-off'),
      previewOffText: byId('preview-off-text'),
      previewStart: byId('preview-start', HTMLButtonElement),
      levelBar: byId('level-bar'),
      mic: byId('lobby-mic', HTMLButtonElement),
      cam: byId('lobby-cam', HTMLButtonElement),
      pickCamera: byId('pick-camera', HTMLSelectElement),
      pickMic: byId('pick-mic', HTMLSelectElement),
      pickSpeaker: byId('pick-speaker', HTMLSelectElement),
      pickSpeakerLabel: byId('pick-speaker-label'),
      noiseSuppression: byId('proc-noise', HTMLInputElement),
      echoCancellation: byId('proc-echo', HTMLInputElement),
      autoGainControl: byId('proc-gain', HTMLInputElement),
    };
    this.el.title.textContent = t('joinTitle', { room });
  }

  get name() {
    return this.el.name.value;
  }

  set name(value) {
    this.el.name.value = value;
  }

  /** The room password typed, if any. */
  get password() {
    return this.el.password.value || undefined;
  }

  /** @param {(name: string) => void} handler the name as typed, on change */
  onNameChange(handler) {
    this.el.name.addEventListener('change', () => handler(this.el.name.value));
  }

  /** @param {(name: string) => void} handler the trimmed name, on Join */
  onJoin(handler) {
    this.el.form.addEventListener('submit', (event) => {
      event.preventDefault();
      handler(this.el.name.value.trim());
    });
  }

  /** @param {(kind: 'audio' | 'video') => void} handler */
  onToggle(handler) {
    this.el.mic.addEventListener('click', () => handler('audio'));
    this.el.cam.addEventListener('click', () => handler('video'));
  }

  /** @param {(kind: 'audio' | 'video', deviceId: string) => void} handler */
  onPickDevice(handler) {
    this.el.pickCamera.addEventListener('change', () => handler('video', this.el.pickCamera.value));
    this.el.pickMic.addEventListener('change', () => handler('audio', this.el.pickMic.value));
  }

  /** @param {(deviceId: string) => void} handler */
  onPickSpeaker(handler) {
    this.el.pickSpeaker.addEventListener('change', () => handler(this.el.pickSpeaker.value));
  }

  /**
   * The microphone processing checkboxes.
   * @param {(processing: { noiseSuppression: boolean, echoCancellation: boolean, autoGainControl: boolean }) => void} handler
   */
  onProcessing(handler) {
    for (const box of [this.el.noiseSuppression, this.el.echoCancellation, this.el.autoGainControl]) {
      box.addEventListener('change', () => handler(this.processing));
    }
  }

  get processing() {
    return {
      noiseSuppression: this.el.noiseSuppression.checked,
      echoCancellation: this.el.echoCancellation.checked,
      autoGainControl: this.el.autoGainControl.checked,
    };
  }

  /** @param {{ noiseSuppression: boolean, echoCancellation: boolean, autoGainControl: boolean }} processing */
  renderProcessing(processing) {
    this.el.noiseSuppression.checked = processing.noiseSuppression;
    this.el.echoCancellation.checked = processing.echoCancellation;
    this.el.autoGainControl.checked = processing.autoGainControl;
  }

  /** @param {() => void} handler "Show my camera" */
  onPreviewStart(handler) {
    this.el.previewStart.addEventListener('click', handler);
  }

  /** @param {'join' | 'media'} which @param {string | null} text null hides it */
  showError(which, text) {
    const node = which === 'join' ? this.el.joinError : this.el.mediaError;
    node.hidden = !text;
    node.textContent = text ?? '';
  }

  /**
   * The page came over plain HTTP from a name that is not a loopback one (behind a proxy, or
   * with HTTPS off), so the browser will refuse the camera: say so, and link to the HTTPS page.
   * @param {string} secureUrl
   */
  showInsecure(secureUrl) {
    this.el.insecure.hidden = false;
    this.el.insecureText.textContent = this.t('insecure');
    this.el.secureLink.textContent = this.t('insecureLink');
    this.el.secureLink.href = secureUrl;
  }

  focusName() {
    this.el.name.focus();
  }

  /** The room wants a password: show the field and put the cursor in it. */
  askPassword() {
    this.el.passwordField.hidden = false;
    this.el.password.focus();
  }

  /** @param {() => void} handler "Stop waiting", while knocking */
  onStopWaiting(handler) {
    this.el.knockCancel.addEventListener('click', handler);
  }

  /**
   * The room asks to join: instead of Join, "Waiting for the host to let you in" (the preview
   * stays) and a way to stop waiting. @param {boolean} waiting
   */
  setWaiting(waiting) {
    this.el.knockWait.hidden = !waiting;
    this.el.join.hidden = waiting;
    // The host sees the name it knocked with: it stays as it is while waiting.
    this.el.name.readOnly = waiting;
    this.el.knockWaitText.textContent = waiting ? this.t('waitingForHost') : '';
    if (waiting) this.showError('join', null);
  }

  /** @param {boolean} joining Join pressed, waiting for a seat */
  setJoining(joining) {
    this.el.join.disabled = joining;
    this.el.join.textContent = this.t(joining ? 'joining' : 'join');
  }

  /**
   * The toggles' names say what a press does; data-on only styles them.
   * @param {{ audio: boolean, video: boolean }} on
   */
  renderToggles(on) {
    renderToggle(this.el.mic, on.audio, this.t('micOff'), this.t('micOn'));
    renderToggle(this.el.cam, on.video, this.t('cameraOff'), this.t('cameraOn'));
  }

  /**
   * @param {{ videoOn: boolean, pending: boolean }} preview `pending`: the camera is wanted
   *   but not started (a remembered choice starts on Join): say so, and offer a preview.
   */
  renderPreview({ videoOn, pending }) {
    this.el.previewOff.hidden = videoOn;
    this.el.previewOffText.textContent = this.t(pending ? 'previewLater' : 'previewOff');
    this.el.previewStart.hidden = !pending;
  }

  /** Attached only once there is a track: an empty stream would hold the page's load event forever. @param {MediaStream} stream */
  showPreview(stream) {
    if (this.el.preview.srcObject !== stream) this.el.preview.srcObject = stream;
  }

  /** @param {number} level 0 to 1 */
  showLevel(level) {
    this.el.levelBar.style.width = `${Math.round(level * 100)}%`;
  }

  /**
   * @param {{ audioinput: MediaDeviceInfo[], videoinput: MediaDeviceInfo[], audiooutput: MediaDeviceInfo[] }} lists
   * @param {{ audio: string, video: string, speaker: string }} chosen
   * @param {boolean} canPickSpeaker
   */
  fillPickers(lists, chosen, canPickSpeaker) {
    const t = this.t;
    fillPicker(this.el.pickCamera, lists.videoinput, chosen.video, t, t('camera'));
    fillPicker(this.el.pickMic, lists.audioinput, chosen.audio, t, t('microphone'));
    const speakers = canPickSpeaker && lists.audiooutput.length > 0;
    this.el.pickSpeaker.hidden = !speakers;
    this.el.pickSpeakerLabel.hidden = !speakers;
    if (speakers) fillPicker(this.el.pickSpeaker, lists.audiooutput, chosen.speaker, t, t('speaker'));
  }
}

/**
 * A toggle button for a device: the label says what a press does.
 * @param {HTMLElement} button @param {boolean} on @param {string} whenOn @param {string} whenOff
 */
export function renderToggle(button, on, whenOn, whenOff) {
  setLabel(button, on ? whenOn : whenOff);
  button.dataset.on = String(on);
}
