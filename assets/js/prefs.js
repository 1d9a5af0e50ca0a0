// The lobby's remembered choices, in localStorage. Pure apart from the storage it is handed.
// Remembered "on" choices are applied when the user clicks Join (or asks for a preview): the
// page never asks for a camera or microphone on load (the old app's bug 2).

const KEY = 'videomeet.prefs.v1';

/**
 * @typedef {{ name: string, audio: boolean, video: boolean, audioDevice: string, videoDevice: string,
 *             speakerDevice: string, audioOnly: boolean, noiseSuppression: boolean,
 *             echoCancellation: boolean, autoGainControl: boolean }} Prefs
 *   `audioOnly`: no video sent or received (the toolbar's Audio only toggle), kept for the next call.
 *   `noiseSuppression`, `echoCancellation`, `autoGainControl`: the browser's own microphone
 *   processing, on unless the user turned it off (a musician, a good headset).
 */

/** Nothing on (but the microphone's processing): what a first visit, or a store that cannot be read, gets. @type {Prefs} */
export const DEFAULT_PREFS = Object.freeze({
  name: '', audio: false, video: false,
  audioDevice: '', videoDevice: '', speakerDevice: '', audioOnly: false,
  noiseSuppression: true, echoCancellation: true, autoGainControl: true,
});

/**
 * Reads the preferences; any field that is missing or of the wrong type falls back to its default.
 * @param {Pick<Storage, 'getItem'> | undefined} storage
 * @returns {Prefs}
 */
export function loadPrefs(storage) {
  let raw;
  try {
    raw = JSON.parse(storage?.getItem(KEY) ?? 'null');
  } catch {
    raw = null;
  }
  const out = { ...DEFAULT_PREFS };
  if (raw && typeof raw === 'object' && !Array.isArray(raw)) {
    for (const [key, fallback] of Object.entries(DEFAULT_PREFS)) {
      if (typeof raw[key] === typeof fallback) out[key] = raw[key];
    }
  }
  out.name = out.name.slice(0, 64);
  return out;
}

/**
 * Saves the preferences; a full or forbidden store is not an error worth showing.
 * @param {Pick<Storage, 'setItem'> | undefined} storage
 * @param {Prefs} prefs
 */
export function savePrefs(storage, prefs) {
  try {
    storage?.setItem(KEY, JSON.stringify(prefs));
    return true;
  } catch {
    return false;
  }
}

/**
 * The tab's identity for the signaling server: a random id kept in sessionStorage, so a reload
 * or reconnect in the same tab is the same participant and a new tab is a new one.
 * @param {Pick<Storage, 'getItem' | 'setItem'> | undefined} storage
 * @param {(bytes: Uint8Array<ArrayBuffer>) => Uint8Array} fill
 * @returns {string}
 */
export function tabIdentity(storage, fill) {
  const key = 'videomeet.client.v1';
  /** @type {string | null | undefined} */
  let id = null;
  try { id = storage?.getItem(key); } catch { /* private mode */ }
  if (!id || !/^[A-Za-z0-9_-]{8,64}$/.test(id)) {
    const bytes = fill(new Uint8Array(16));
    id = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
    try { storage?.setItem(key, id); } catch { /* private mode */ }
  }
  return id;
}

/** Room-scoped token storage, so a reload takes the seat back. */
export function tokenKey(room) {
  return `videomeet.token.${room}`;
}
