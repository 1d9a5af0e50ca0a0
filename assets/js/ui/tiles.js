// The meeting grid: one tile per participant, with video, name and state badges.

import { el } from './dom.js';

export class Grid {
  /** @param {HTMLElement} root @param {(key: string) => string} t */
  constructor(root, t) {
    this.root = root;
    this.t = t;
    /** @type {Map<string, {tile: HTMLElement, video: HTMLVideoElement, name: HTMLElement, badges: HTMLElement, avatar: HTMLElement}>} */
    this.tiles = new Map();
  }

  /**
   * The tile for `id`, made if missing.
   * @param {string} id
   * @param {{ self?: boolean }} [options]
   */
  ensure(id, { self = false } = {}) {
    let entry = this.tiles.get(id);
    if (entry) return entry;
    const tile = el('figure', self ? 'tile self' : 'tile');
    tile.dataset.peer = id;
    const video = /** @type {HTMLVideoElement} */ (el('video'));
    video.autoplay = true;
    video.playsInline = true;
    if (self) video.muted = true;
    const avatar = el('div', 'avatar');
    avatar.setAttribute('aria-hidden', 'true');
    const label = el('figcaption', 'label');
    const name = el('span', 'name');
    const badges = el('span', 'badges');
    label.append(name, badges);
    tile.append(video, avatar, label);
    this.root.append(tile);
    entry = { tile, video, name, badges, avatar };
    this.tiles.set(id, entry);
    this.#layout();
    return entry;
  }

  /**
   * Shows a participant's state on their tile.
   * @param {string} id
   * @param {{ name: string, audio: boolean, video: boolean, away?: boolean, host?: boolean, self?: boolean }} state
   */
  update(id, state) {
    const entry = this.ensure(id, { self: state.self });
    const label = state.self ? `${state.name} (${this.t('you')})` : state.name;
    entry.name.textContent = label;
    entry.avatar.textContent = (state.name.trim()[0] ?? '?').toUpperCase();
    entry.tile.classList.toggle('no-video', !state.video);
    entry.tile.setAttribute('aria-label', label);
    entry.badges.replaceChildren();
    if (!state.audio) entry.badges.append(badge(this.t('muted'), 'off'));
    if (!state.video) entry.badges.append(badge(this.t('cameraIsOff'), 'off'));
    if (state.away) entry.badges.append(badge(this.t('peerAway'), 'away'));
  }

  /** @param {string} id @param {MediaStream} stream */
  setStream(id, stream) {
    const entry = this.ensure(id);
    if (entry.video.srcObject !== stream) entry.video.srcObject = stream;
    entry.video.play().catch(() => { /* autoplay will retry when media flows */ });
  }

  remove(id) {
    const entry = this.tiles.get(id);
    if (!entry) return;
    entry.video.srcObject = null;
    entry.tile.remove();
    this.tiles.delete(id);
    this.#layout();
  }

  clear() {
    for (const id of [...this.tiles.keys()]) this.remove(id);
  }

  get count() {
    return this.tiles.size;
  }

  #layout() {
    this.root.dataset.count = String(Math.max(1, this.tiles.size));
  }
}

function badge(text, kind) {
  return el('span', `badge ${kind}`, text);
}
