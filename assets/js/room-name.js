// Room names: the rule of docs/PROTOCOL.md (1–64 of a-z, 0-9, -) and fresh random names like
// `280d-ed66-9442`. Pure, so node tests it.

/** The server's rule for a room name, after lower-casing. */
export const ROOM_NAME = /^[a-z0-9-]{1,64}$/;

/**
 * What a typed room name becomes: trimmed and lower-cased, or null if it breaks the rule.
 * @param {unknown} input
 * @returns {string | null}
 */
export function normalizeRoomName(input) {
  const name = String(input ?? '').trim().toLowerCase();
  return ROOM_NAME.test(name) ? name : null;
}

/**
 * A fresh room name: 12 hex digits (48 random bits) in three groups of four. Guessing one is
 * the only way into an unlisted room, so the bits come from a CSPRNG, never Math.random.
 * @param {(bytes: Uint8Array<ArrayBuffer>) => Uint8Array} fill e.g. `(b) => crypto.getRandomValues(b)`
 */
export function randomRoomName(fill) {
  const hex = Array.from(fill(new Uint8Array(6)), (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 4)}-${hex.slice(4, 8)}-${hex.slice(8, 12)}`;
}

/**
 * The room of a page at `/r/{room}`, or null if the path does not name a valid one.
 * @param {string} pathname e.g. location.pathname
 */
export function roomFromPath(pathname) {
  const match = /^\/r\/([^/]+)\/?$/.exec(pathname);
  if (!match) return null;
  try {
    return normalizeRoomName(decodeURIComponent(match[1]));
  } catch {
    return null;
  }
}
