// The meeting grid: one tile per participant, with video, name and state badges.

import { el } from './dom.js';

export class Grid {
  /** @param {HTMLElement} root @param {(key: string, vars?: object) => string} t */
  constructor(root, t) {
    this.root = root;
    this.t = t;
    /** @type {Map<string, any>} */
    this.tiles = new Map();
    this.speaker = null;
    this.sinkId = '';
  }

  /**
   * The tile for `id`, made if missing.
   * @param {string} id
   * @param {{ self?: boolean }} [options]
   */
  ensure(id, { self = false } = {}) {
    let entry = this.tiles.get(id);
    if (!entry) {
      entry = this.#make(id, self);
      this.tiles.set(id, entry);
      this.#layout();
    }
    return entry;
  }

  #make(id, self) {
    const tile = el('figure', self ? 'tile self' : 'tile');
    tile.dataset.peer = id;
    const video = /** @type {HTMLVideoElement} */ (el('video'));
    video.autoplay = true;
    video.playsInline = true;
    if (self) video.muted = true;
    else if (this.sinkId) video.setSinkId?.(this.sinkId).catch(() => {});
    const avatar = el('div', 'avatar');
    avatar.setAttribute('aria-hidden', 'true');
    const label = el('figcaption', 'label');
    const name = el('span', 'name');
    const badges = el('span', 'badges');
    label.append(name, badges);
    const quality = el('span', 'quality');
    quality.hidden = true;
    const actions = el('div', 'tile-actions');
    tile.append(video, avatar, label, quality, actions);
    this.root.append(tile);
    return { tile, video, name, badges, avatar, quality, actions, state: null };
  }

  /**
   * Shows a participant's state on their tile.
   * @param {string} id
   * @param {{ name: string, audio: boolean, video: boolean, screen?: boolean, away?: boolean,
   *           host?: boolean, hand?: boolean, self?: boolean }} state
   */
  update(id, state) {
    const entry = this.ensure(id, { self: state.self });
    entry.state = state;
    const t = this.t;
    const label = state.self ? `${state.name} (${t('you')})` : state.name;
    entry.name.textContent = label;
    entry.avatar.textContent = (state.name.trim()[0] ?? '?').toUpperCase();
    entry.tile.classList.toggle('no-video', !state.video && !state.screen);
    entry.tile.classList.toggle('sharing', Boolean(state.screen));
    entry.tile.classList.toggle('hand', Boolean(state.hand));
    entry.tile.setAttribute('aria-label', label);
    const badges = [];
    if (state.host) badges.push(badge(t('hostBadge'), 'host'));
    if (state.hand) badges.push(badge(`✋ ${t('handBadge')}`, 'hand'));
    if (state.screen) badges.push(badge(t('sharingBadge'), 'screen'));
    if (!state.audio) badges.push(badge(t('muted'), 'off'));
    if (!state.video && !state.screen) badges.push(badge(t('cameraIsOff'), 'off'));
    if (state.away) badges.push(badge(t('peerAway'), 'away'));
    entry.badges.replaceChildren(...badges);
  }

  /**
   * Offers the host a Remove button on a tile (or takes it away).
   * @param {string} id
   * @param {(() => void) | null} onRemove
   */
  setRemovable(id, onRemove) {
    const entry = this.tiles.get(id);
    if (!entry) return;
    entry.actions.replaceChildren();
    if (!onRemove || !entry.state) return;
    const button = el('button', 'ghost small', this.t('remove', { name: entry.state.name }));
    button.type = 'button';
    button.addEventListener('click', onRemove);
    entry.actions.append(button);
  }

  /**
   * @param {string} id
   * @param {'good' | 'fair' | 'poor' | null} level
   * @param {string} detail
   */
  setQuality(id, level, detail) {
    const entry = this.tiles.get(id);
    if (!entry) return;
    entry.quality.hidden = !level;
    entry.quality.className = `quality ${level ?? ''}`;
    entry.quality.title = detail;
    entry.quality.textContent = detail;
  }

  /** Highlights the active speaker (null for nobody). */
  setSpeaker(id) {
    if (id === this.speaker) return;
    this.tiles.get(this.speaker)?.tile.classList.remove('speaking');
    this.speaker = id;
    this.tiles.get(id)?.tile.classList.add('speaking');
  }

  /** Plays every remote tile on the chosen speaker, where the browser can. */
  setSink(sinkId) {
    this.sinkId = sinkId;
    for (const entry of this.tiles.values()) {
      if (!entry.video.muted) entry.video.setSinkId?.(sinkId).catch(() => {});
    }
  }

  /** @param {string} id @param {MediaStream} stream */
  setStream(id, stream) {
    const entry = this.ensure(id);
    if (entry.video.srcObject !== stream) entry.video.srcObject = stream;
    entry.video.play().catch(() => { /* plays once media flows */ });
  }

  remove(id) {
    const entry = this.tiles.get(id);
    if (!entry) return;
    entry.video.srcObject = null;
    entry.tile.remove();
    this.tiles.delete(id);
    if (this.speaker === id) this.speaker = null;
    this.#layout();
  }

  clear() {
    for (const id of [...this.tiles.keys()]) this.remove(id);
  }

  #layout() {
    this.root.dataset.count = String(Math.max(1, this.tiles.size));
  }
}

function badge(text, kind) {
  return el('span', `badge ${kind}`, text);
}
