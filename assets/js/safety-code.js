// Safety codes: proof that nobody, the signaling server included, sits between two browsers.
//
// Media and data are encrypted with DTLS keys whose certificate fingerprints travel in the SDP,
// through the server. A server that swapped them for its own could read everything; but then the
// two browsers would see different fingerprints. So each side hashes the two fingerprints of the
// link (its own and the other's, sorted, so both sides hash the same bytes) and shows the result
// as digits to read aloud: the same digits on both screens mean the keys are the two browsers'
// own. The room code hashes every participant's fingerprint (each page uses one certificate on
// all its links, see certificate.js), so the whole room can compare one code at once.
//
// Pure: node tests import it as is (crypto.subtle is in node too).

/** Digit groups of a code, and digits per group: 20 digits, about 66 bits. */
const GROUPS = 4;
const GROUP_DIGITS = 5;

/**
 * The first `a=fingerprint` of an SDP (every m-section of a bundled description carries the same
 * one), as `algorithm HEX`, the hex upper-cased; null if there is none.
 * @param {string | undefined | null} sdp
 */
export function fingerprintOf(sdp) {
  const m = /^a=fingerprint:(\S+) ([0-9A-Fa-f:]+)\s*$/m.exec(sdp ?? '');
  return m ? `${m[1].toLowerCase()} ${m[2].toUpperCase()}` : null;
}

/**
 * 20 digits in groups of 5 from the SHA-256 of `label`, then the fingerprints sorted, one a line.
 * @param {string} label what the code is for (a pair's and the room's codes never coincide)
 * @param {string[]} fingerprints
 */
async function codeOf(label, fingerprints) {
  const text = [label, ...[...fingerprints].sort()].join('\n');
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
  let n = 0n;
  for (const byte of digest.subarray(0, 10)) n = (n << 8n) | BigInt(byte);
  const digits = (n % 10n ** BigInt(GROUPS * GROUP_DIGITS)).toString().padStart(GROUPS * GROUP_DIGITS, '0');
  /** @type {string[]} */
  const groups = [];
  for (let i = 0; i < GROUPS; i++) groups.push(digits.slice(i * GROUP_DIGITS, (i + 1) * GROUP_DIGITS));
  return groups.join(' ');
}

/**
 * The safety code of one link: the same on both sides when each sees the other's real key.
 * @param {string} local this side's fingerprint
 * @param {string} remote the other side's, as this side received it
 */
export function pairCode(local, remote) {
  return codeOf('videomeet pair v1', [local, remote]);
}

/**
 * The room's code: everyone's fingerprint, this page's and each peer's as this page sees it.
 * @param {string[]} fingerprints
 */
export function roomCode(fingerprints) {
  return codeOf('videomeet room v1', [...new Set(fingerprints)]);
}

/**
 * @typedef {{ getItem: (key: string) => string | null, setItem: (key: string, value: string) => void }} KeyValue
 * @typedef {'unverified' | 'verified' | 'changed'} Trust
 *   `changed`: this person was verified in this room with another key.
 */

/**
 * Who this browser verified in each room (localStorage): the person's name and the fingerprint
 * their browser had then. Seat ids change every call; names and keys are what last.
 */
export class VerifiedPeers {
  /** @param {KeyValue | undefined} store @param {string} room */
  constructor(store, room) {
    this.store = store;
    this.key = `videomeet.verified.${room}`;
  }

  /** @returns {Record<string, string>} name → fingerprint */
  #read() {
    try {
      const value = JSON.parse(this.store?.getItem(this.key) ?? '{}');
      return value && typeof value === 'object' && !Array.isArray(value) ? value : {};
    } catch {
      return {};
    }
  }

  /** @param {string} name @param {string} fingerprint */
  trust(name, fingerprint) {
    const known = this.#read()[name];
    if (known === undefined) return 'unverified';
    return known === fingerprint ? 'verified' : 'changed';
  }

  /** The person read the same code: remember their key. @param {string} name @param {string} fingerprint */
  mark(name, fingerprint) {
    const all = this.#read();
    all[name] = fingerprint;
    try {
      this.store?.setItem(this.key, JSON.stringify(all));
    } catch {
      // Private mode or full storage: verified for this call only.
    }
  }

  /** @param {string} name */
  forget(name) {
    const all = this.#read();
    delete all[name];
    try {
      this.store?.setItem(this.key, JSON.stringify(all));
    } catch {
      // As above.
    }
  }
}
