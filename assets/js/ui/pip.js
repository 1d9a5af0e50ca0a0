// Picture in picture: keeps the meeting visible while the user works in another window. With
// Document Picture-in-Picture (Chromium) the whole grid moves into a small always-on-top window
// and back when it closes; elsewhere the active speaker's video goes into the browser's video
// picture-in-picture, following the speaker; where neither exists the control stays hidden.
// Owns no element id: it moves the grid that ui/tiles.js owns.

/** @typedef {import('./tiles.js').Grid} Grid */
/** @typedef {'document' | 'video' | null} PipKind */

/**
 * What this browser offers.
 * @param {any} win the window
 * @returns {PipKind}
 */
export function pipKind(win) {
  if (win.documentPictureInPicture?.requestWindow) return 'document';
  if (win.document?.pictureInPictureEnabled && typeof win.HTMLVideoElement?.prototype?.requestPictureInPicture === 'function') return 'video';
  return null;
}

export class PictureInPicture extends EventTarget {
  /** @param {Grid} grid @param {PipKind} kind */
  constructor(grid, kind) {
    super();
    this.grid = grid;
    this.kind = kind;
    /** @type {Window | null} the Document PiP window, while open */
    this.win = null;
    /** @type {HTMLVideoElement | null} the video in video PiP, while open */
    this.video = null;
    document.addEventListener('leavepictureinpicture', () => {
      this.video = null;
      this.#changed();
    }, true);
  }

  get open() {
    return Boolean(this.win || this.video);
  }

  /**
   * Opens or closes it (a click: both APIs need the user's gesture to open).
   * @param {string | null} speaker the active speaker's tile id, if any
   */
  async toggle(speaker) {
    if (this.open) return this.close();
    if (this.kind === 'document') return this.#openWindow();
    if (this.kind === 'video') return this.#openVideo(speaker);
    return undefined;
  }

  async close() {
    if (this.win) this.win.close();
    else if (document.pictureInPictureElement) await document.exitPictureInPicture();
  }

  /** The active speaker changed: video PiP follows them. @param {string | null} speaker */
  follow(speaker) {
    if (!this.video || !speaker) return;
    const next = this.grid.videoOf(speaker);
    if (!next || next === this.video || !this.grid.withVideo().includes(speaker)) return;
    next.requestPictureInPicture().then(() => { this.video = next; }).catch(() => { /* keep the one there is */ });
  }

  async #openWindow() {
    const pip = /** @type {any} */ (window).documentPictureInPicture;
    const win = /** @type {Window} */ (await pip.requestWindow({ width: 480, height: 300 }));
    for (const sheet of document.querySelectorAll('link[rel="stylesheet"]')) {
      const link = win.document.createElement('link');
      link.rel = 'stylesheet';
      link.href = /** @type {HTMLLinkElement} */ (sheet).href;
      win.document.head.append(link);
    }
    win.document.documentElement.lang = document.documentElement.lang;
    win.document.title = document.title;
    win.document.body.className = 'pip-window';
    const root = this.grid.root;
    const placeholder = document.createComment('grid in picture in picture');
    root.before(placeholder);
    win.document.body.append(root);
    this.win = win;
    const refit = () => this.grid.refit();
    const resize = new /** @type {any} */ (win).ResizeObserver(refit);
    resize.observe(root);
    replay(root);
    win.addEventListener('pagehide', () => {
      resize.disconnect();
      placeholder.replaceWith(root);
      this.win = null;
      replay(root);
      refit();
      this.#changed();
    }, { once: true });
    this.#changed();
  }

  /** @param {string | null} speaker */
  async #openVideo(speaker) {
    const ids = this.grid.withVideo();
    const id = speaker && ids.includes(speaker) ? speaker : ids[0];
    const video = id ? this.grid.videoOf(id) : null;
    if (!video) throw Object.assign(new Error('no video'), { name: 'NoVideo' });
    await video.requestPictureInPicture();
    this.video = video;
    this.#changed();
  }

  #changed() {
    this.dispatchEvent(new Event('change'));
  }
}

/** Videos moved between documents pause; play them again. @param {HTMLElement} root */
function replay(root) {
  for (const video of root.querySelectorAll('video')) video.play().catch(() => { /* plays when media flows */ });
}
