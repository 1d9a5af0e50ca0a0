// Recording on the page: the toolbar's Start / Stop recording, the banner everyone sees while
// someone records (who, by name), and the finished recording offered for saving (in the meeting
// and on the screen after leaving). Owns the ids `record`, `recording-banner` and
// `recording-ready`. It shows what app.js gives it; recorder.js records.

import { byId, el, setLabel } from './dom.js';
import { saveBlob } from './files.js';

/**
 * @typedef {import('../i18n.js').Translate} Translate
 * @typedef {import('../recorder.js').RecordingStore} RecordingStore
 */

/**
 * A download started by Save reads the file after the click, in the browser's own time; a
 * Dismiss right after Save waits this long before the file is removed from under it.
 */
export const SAVE_GRACE_MS = 5000;

export class RecordingView {
  /** @param {Translate} t */
  constructor(t) {
    this.t = t;
    this.el = {
      button: byId('record', HTMLButtonElement),
      banner: byId('recording-banner'),
      ready: byId('recording-ready'),
    };
    setLabel(this.el.button, t('startRecording'));
    /** A recording is on offer and was not saved yet. */
    this.unsaved = false;
    /** Lets go of the file on offer (its sink's `dispose`). @type {(() => Promise<void>) | null} */
    this.dispose = null;
    /** When Save was last pressed for the file on offer. */
    this.savedAt = 0;
  }

  /** @param {{ toggle: () => void }} actions */
  bind(actions) {
    this.el.button.addEventListener('click', actions.toggle);
  }

  /**
   * The toolbar button: Stop recording while this page records (or is about to).
   * @param {boolean} active
   * @param {boolean} allowed whether the room allows recording (the tooltip says when not)
   */
  renderButton(active, allowed) {
    setLabel(this.el.button, this.t(active ? 'stopRecording' : 'startRecording'));
    this.el.button.dataset.on = String(active);
    if (!active && !allowed) this.el.button.title = this.t('errRecordingOff');
  }

  /**
   * Who records now: the banner names them (this page as "You"); hidden when nobody does.
   * @param {string[]} names others who record
   * @param {boolean} self this page records
   * @param {RecordingStore | null} stored where this page's recording is kept: until it is
   *   saved, the banner says so (and the limit, in memory)
   */
  renderBanner(names, self, stored) {
    const t = this.t;
    const banner = this.el.banner;
    if (!self && names.length === 0) {
      banner.hidden = true;
      banner.textContent = '';
      return;
    }
    const who = self ? [t('you'), ...names] : names;
    let text = who.length === 1
      ? t(self ? 'youAreRecording' : 'isRecording', { name: who[0] })
      : t('areRecording', { names: who.join(', ') });
    if (self && stored === 'memory') text = `${text}. ${t('recordingInMemory')}`;
    if (self && stored === 'browser') text = `${text}. ${t('recordingInBrowser')}`;
    banner.textContent = text;
    banner.hidden = false;
  }

  /**
   * The recording is finished: kept in the browser (a Save button) or written to a file already.
   * A file on offer before is let go of: this one takes its place.
   * @param {Blob | null} blob
   * @param {string} name
   * @param {() => Promise<void>} dispose lets go of `blob` once it is no longer on offer
   */
  ready(blob, name, dispose = async () => {}) {
    this.#letGo();
    this.dispose = dispose;
    this.savedAt = 0;
    const t = this.t;
    const box = this.el.ready;
    const close = el('button', 'ghost small', t('dismiss'));
    close.type = 'button';
    close.addEventListener('click', () => {
      box.hidden = true;
      this.unsaved = false;
      this.#letGo();
    });
    this.unsaved = Boolean(blob);
    if (blob) {
      const save = el('button', 'primary small', t('saveRecording'));
      save.type = 'button';
      save.addEventListener('click', () => {
        saveBlob(blob, name);
        this.unsaved = false;
        this.savedAt = Date.now();
      });
      box.replaceChildren(el('span', '', t('recordingReady', { size: String(Math.round(blob.size / 1e5) / 10) })), save, close);
    } else {
      box.replaceChildren(el('span', '', t('recordingSaved')), close);
    }
    box.hidden = false;
  }

  /** The file on offer is no longer: it goes, once a download just started has had its time. */
  #letGo() {
    const dispose = this.dispose;
    this.dispose = null;
    if (!dispose) return;
    const wait = this.savedAt ? Math.max(0, this.savedAt + SAVE_GRACE_MS - Date.now()) : 0;
    setTimeout(() => dispose().catch((err) => console.warn('recording not let go of', err)), wait);
  }
}
