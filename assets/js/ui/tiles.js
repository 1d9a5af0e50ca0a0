// The meeting grid: one tile per participant, with video, name and state badges. Owns the
// element id `grid`; everything inside it is made here.

import { byId, el, icon } from './dom.js';

/** Where each tile button goes, left to right (unknown keys last). */
const ACTION_ORDER = ['verify', 'file', 'remove'];

/** The widest tile shape, as width / height (the narrowest is fitTiles' own: 4:3, or 3:4). */
const WIDEST = 16 / 9;

/**
 * The biggest tile size that fits `count` tiles in a `width` x `height` area, trying every column
 * count. Tiles stay between 16:9 and 4:3 (3:4 in a portrait area), so videos are not stretched
 * into strips. Pure.
 * @returns {{ width: number, height: number, cols: number }}
 */
export function fitTiles(count, width, height, gap = 8) {
  const narrowest = width >= height ? 4 / 3 : 3 / 4;
  let best = { width: 0, height: 0, cols: 1 };
  for (let cols = 1; cols <= Math.max(1, count); cols++) {
    const rows = Math.ceil(count / cols);
    const cellW = (width - gap * (cols - 1)) / cols;
    const cellH = (height - gap * (rows - 1)) / rows;
    if (cellW <= 0 || cellH <= 0) continue;
    let w = cellW;
    let h = cellH;
    if (w / h > WIDEST) w = h * WIDEST;
    else if (w / h < narrowest) h = w / narrowest;
    if (w * h > best.width * best.height) best = { width: Math.floor(w), height: Math.floor(h), cols };
  }
  return best;
}

export class Grid {
  /** The grid of the room page. @param {import('../i18n.js').Translate} t */
  static onPage(t) {
    return new Grid(byId('grid'), t);
  }

  /** @param {HTMLElement} root @param {import('../i18n.js').Translate} t */
  constructor(root, t) {
    this.root = root;
    this.t = t;
    /** @type {Map<string, any>} */
    this.tiles = new Map();
    this.speaker = null;
    this.sinkId = '';
    // Sizes the tiles whenever the area changes (window, chat panel, phone rotation).
    this.resize = typeof ResizeObserver === 'function' ? new ResizeObserver(() => this.#layout()) : null;
    this.resize?.observe(root);
    /** @type {(id: string, shown: boolean) => void} */
    this.onShown = () => {};
    // Whether each tile is on screen (a phone shows only some): a peer whose tile is not shown
    // need not send full video (app.js asks it for less).
    this.visibility = typeof IntersectionObserver === 'function'
      ? new IntersectionObserver((entries) => {
        for (const entry of entries) {
          const id = /** @type {HTMLElement} */ (entry.target).dataset.peer ?? '';
          const tile = this.tiles.get(id);
          if (!tile) continue;
          tile.shown = entry.isIntersecting;
          this.onShown(id, tile.shown);
        }
      })
      : null;
  }

  /** Calls `fn(id, shown)` when a tile comes on or goes off screen. @param {(id: string, shown: boolean) => void} fn */
  onShownChange(fn) {
    this.onShown = fn;
  }

  /** Whether the tile of `id` is on screen (true until the browser says otherwise). @param {string} id */
  isShown(id) {
    return this.tiles.get(id)?.shown ?? true;
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
    // Whether this person's safety code was verified (or changed since): kept apart from the
    // state badges, which update() redraws.
    const trust = el('span', 'badges trust');
    label.append(name, badges, trust);
    // The connection level in plain words; the reason shows on hover and on keyboard focus.
    const quality = el('span', 'quality');
    quality.hidden = true;
    quality.tabIndex = 0;
    const qualityLevel = el('span', 'quality-level');
    const qualityReason = el('span', 'quality-reason');
    quality.append(qualityLevel, qualityReason);
    const paused = el('p', 'paused-note', this.t('videoPausedPoor'));
    paused.hidden = true;
    const actions = el('div', 'tile-actions');
    tile.append(video, avatar, label, paused, quality, actions);
    this.root.append(tile);
    this.visibility?.observe(tile);
    return { tile, video, name, badges, trust, avatar, quality, qualityLevel, qualityReason, paused, actions, state: null, shown: true };
  }

  /**
   * Shows a participant's state on their tile.
   * @param {string} id
   * @param {{ name: string, audio: boolean, video: boolean, screen?: boolean, away?: boolean,
   *           host?: boolean, hand?: boolean, recording?: boolean, self?: boolean }} state
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
    entry.tile.classList.toggle('away', Boolean(state.away));
    entry.tile.setAttribute('aria-label', label);
    const badges = [];
    // The recording dot first: nobody should miss it.
    if (state.recording) badges.push(badge(t('recordingBadge'), 'recording'));
    if (state.away) badges.push(badge(t('peerAway'), 'away'));
    if (state.host) badges.push(badge(t('hostBadge'), 'host'));
    if (state.hand) badges.push(badge(t('handBadge'), 'hand', 'i-hand'));
    if (state.screen) badges.push(badge(t('sharingBadge'), 'screen', 'i-screen'));
    // Microphone and camera off are icons (the name is there for screen readers and as a tooltip).
    if (!state.audio) badges.push(badge(t('muted'), 'off icon-badge', 'i-mic-off'));
    if (!state.video && !state.screen) badges.push(badge(t('cameraIsOff'), 'off icon-badge', 'i-cam-off'));
    entry.badges.replaceChildren(...badges);
  }

  /**
   * Offers the host a Remove button on a tile (or takes it away).
   * @param {string} id
   * @param {(() => void) | null} onRemove
   */
  setRemovable(id, onRemove) {
    const name = this.tiles.get(id)?.state?.name ?? '';
    this.setAction(id, 'remove', onRemove && name ? { label: this.t('remove', { name }), run: onRemove } : null);
  }

  /**
   * A button of a tile's own (Verify, Send a file to…, Remove), by key, in the order of
   * ACTION_ORDER; null takes it away.
   * @param {string} id
   * @param {string} key
   * @param {{ label: string, run: () => void, title?: string } | null} action
   */
  setAction(id, key, action) {
    const entry = this.tiles.get(id);
    if (!entry) return;
    entry.actionButtons ??= new Map();
    entry.actionButtons.get(key)?.remove();
    entry.actionButtons.delete(key);
    if (action) {
      const button = el('button', 'ghost small', action.label);
      button.type = 'button';
      button.dataset.action = key;
      if (action.title) button.title = action.title;
      button.addEventListener('click', action.run);
      entry.actionButtons.set(key, button);
    }
    const rank = (/** @type {string} */ k) => {
      const i = ACTION_ORDER.indexOf(k);
      return i < 0 ? ACTION_ORDER.length : i;
    };
    entry.actions.replaceChildren(...[...entry.actionButtons.entries()].sort((a, b) => rank(a[0]) - rank(b[0])).map(([, b]) => b));
  }

  /**
   * "Verified" or "Code changed" on a tile (null: neither).
   * @param {string} id
   * @param {{ kind: 'verified' | 'changed', label: string } | null} trust
   */
  setTrust(id, trust) {
    const entry = this.tiles.get(id);
    if (!entry) return;
    entry.trust.replaceChildren(...(trust ? [badge(trust.label, trust.kind)] : []));
  }

  /**
   * The link's level in plain words, with its reason on hover and focus (null hides it).
   * @param {string} id
   * @param {{ level: 'good' | 'fair' | 'poor', label: string, reason: string } | null} quality
   */
  setQuality(id, quality) {
    const entry = this.tiles.get(id);
    if (!entry) return;
    entry.quality.hidden = !quality;
    if (!quality) return;
    entry.quality.className = `quality ${quality.level}`;
    entry.qualityLevel.textContent = quality.label;
    entry.qualityReason.textContent = quality.reason;
    const full = quality.reason ? `${quality.label}: ${quality.reason}` : quality.label;
    entry.quality.title = full;
    entry.quality.setAttribute('aria-label', full);
  }

  /**
   * "Video paused: poor connection" on a tile whose video stopped because the link cannot carry
   * it (the peer said so with `video-paused`).
   * @param {string} id
   * @param {boolean} paused
   */
  setVideoPaused(id, paused) {
    const entry = this.tiles.get(id);
    if (!entry) return;
    entry.paused.hidden = !paused;
    entry.tile.classList.toggle('paused', paused);
  }

  /** Audio only: remote tiles show their avatar, since no video comes in. @param {boolean} on */
  setAudioOnly(on) {
    this.root.classList.toggle('audio-only', on);
  }

  /**
   * Floats a reaction over a tile for `ms`; several may float at once. Screen readers hear it
   * through the page's announcement instead (app.js).
   * @param {string} id
   * @param {string} emoji
   * @param {number} ms
   */
  showReaction(id, emoji, ms) {
    const entry = this.tiles.get(id);
    if (!entry) return;
    const node = el('span', 'reaction', emoji);
    node.setAttribute('aria-hidden', 'true');
    node.style.setProperty('--drift', `${Math.round((Math.random() - 0.5) * 60)}px`);
    entry.tile.append(node);
    setTimeout(() => node.remove(), ms);
  }

  /** The video element of a tile (for picture in picture). @param {string} id */
  videoOf(id) {
    return this.tiles.get(id)?.video ?? null;
  }

  /** Ids of tiles that show video now, self last. */
  withVideo() {
    const ids = [...this.tiles.entries()]
      .filter(([, entry]) => entry.state && (entry.state.video || entry.state.screen) && !entry.tile.classList.contains('paused'))
      .map(([id]) => id);
    return [...ids.filter((id) => id !== 'self'), ...ids.filter((id) => id === 'self')];
  }

  /** Sizes the tiles again (after the grid moved to another window). */
  refit() {
    this.#layout();
  }

  /**
   * Every tile as the recorder draws and hears it, in the grid's order.
   * @returns {import('../recorder.js').RecordingSource[]}
   */
  recordingSources() {
    return [...this.tiles.entries()].map(([id, entry]) => {
      const stream = entry.video.srcObject instanceof MediaStream ? entry.video.srcObject : null;
      const state = entry.state;
      return {
        id,
        name: state?.name ?? '',
        video: entry.video,
        showsVideo: Boolean(state && (state.video || state.screen)) && !entry.tile.classList.contains('paused')
          && !(id !== 'self' && this.root.classList.contains('audio-only')),
        audio: stream ? stream.getAudioTracks() : [],
      };
    });
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
    // The page's own tile may be made here first (before its state): made as self, so it is
    // muted (no echo of one's own microphone) and styled as self.
    const entry = this.ensure(id, { self: id === 'self' });
    if (entry.video.srcObject !== stream) entry.video.srcObject = stream;
    entry.video.play().catch(() => { /* plays once media flows */ });
  }

  remove(id) {
    const entry = this.tiles.get(id);
    if (!entry) return;
    entry.video.srcObject = null;
    this.visibility?.unobserve(entry.tile);
    entry.tile.remove();
    this.tiles.delete(id);
    if (this.speaker === id) this.speaker = null;
    this.#layout();
  }

  clear() {
    for (const id of [...this.tiles.keys()]) this.remove(id);
  }

  #layout() {
    const count = Math.max(1, this.tiles.size);
    this.root.dataset.count = String(count);
    const style = getComputedStyle(this.root);
    const width = this.root.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const height = this.root.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
    if (!(width > 0 && height > 0)) return;
    const gap = parseFloat(style.columnGap) || 0;
    const fit = fitTiles(count, width, height, gap);
    this.root.style.setProperty('--tile-w', `${fit.width}px`);
    this.root.style.setProperty('--tile-h', `${fit.height}px`);
  }
}

/** A state badge; with an icon, its text is for screen readers and the tooltip only. */
function badge(text, kind, iconId) {
  if (!iconId) return el('span', `badge ${kind}`, text);
  const node = el('span', `badge ${kind}`);
  node.title = text;
  const words = el('span', kind.includes('icon-badge') ? 'sr-only' : 'badge-text', text);
  node.append(icon(iconId), words);
  return node;
}
