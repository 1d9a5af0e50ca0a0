// This browser's DTLS certificate for every call, kept in IndexedDB (an RTCCertificate can be
// stored there; its private key cannot be read out). One certificate on every link of a page is
// what lets the whole room compare one code (safety-code.js), and keeping it between calls is
// what lets a verified person stay verified: a changed code in a later call then means another
// key, which is worth a warning. Without IndexedDB or the API, links make their own (the codes
// still work per link; the room code says it cannot be computed).

const DB = 'videomeet';
const STORE = 'dtls';
const KEY = 'certificate';
/** Asked for; Chromium may grant less. Renewed a day before it ends. */
const LIFETIME_MS = 365 * 24 * 3600 * 1000;
const RENEW_BEFORE_MS = 24 * 3600 * 1000;

/** @returns {Promise<IDBDatabase>} */
function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/**
 * @param {IDBDatabase} db
 * @param {'readonly' | 'readwrite'} mode
 * @param {(store: IDBObjectStore) => IDBRequest} act
 * @returns {Promise<any>}
 */
function run(db, mode, act) {
  return new Promise((resolve, reject) => {
    const request = act(db.transaction(STORE, mode).objectStore(STORE));
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/**
 * The certificate to give every RTCPeerConnection of this page, or undefined to let each make
 * its own.
 * @returns {Promise<RTCCertificate[] | undefined>}
 */
export async function loadCertificate() {
  if (typeof RTCPeerConnection?.generateCertificate !== 'function') return undefined;
  /** @type {IDBDatabase | null} */
  let db = null;
  try {
    db = await open();
    /** @type {RTCCertificate | undefined} */
    const kept = await run(/** @type {IDBDatabase} */ (db), 'readonly', (s) => s.get(KEY));
    if (kept && kept.expires - Date.now() > RENEW_BEFORE_MS) return [kept];
  } catch (err) {
    console.warn('no stored certificate', err);
  }
  try {
    const fresh = await RTCPeerConnection.generateCertificate(
      /** @type {any} */ ({ name: 'ECDSA', namedCurve: 'P-256', expires: LIFETIME_MS }),
    );
    if (db) await run(db, 'readwrite', (s) => s.put(fresh, KEY)).catch((err) => console.warn('certificate not kept', err));
    return [fresh];
  } catch (err) {
    console.warn('no certificate made', err);
    return undefined;
  } finally {
    db?.close();
  }
}
