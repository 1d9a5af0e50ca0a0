// What the server takes as a chat message (docs/PROTOCOL.md, `chat`), checked before sending so
// the page can say why a message cannot go, in the reader's language, as it is typed. Pure: node
// tests import it. Mirrors `check_chat` and `is_unsafe_in_text` of src/signaling/protocol.rs.

/** Longest message the server takes, in bytes of UTF-8 (not characters). */
export const MAX_CHAT_BYTES = 2048;

/**
 * What may not be in a message: control characters but newline and tab, the bidi embeddings and
 * overrides U+202A-U+202E (they reorder the text after them), the annotation marks
 * U+FFF9-U+FFFB (they hide text). The marks RTL keyboards insert (U+200E, U+200F, U+061C),
 * joiners, isolates, soft hyphens and emoji tags are text.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u202A-\u202E\uFFF9-\uFFFB]/u;

const encoder = new TextEncoder();

/** @param {string} text */
export function chatBytes(text) {
  return encoder.encode(text).length;
}

/**
 * @typedef {{ ok: true, text: string, bytes: number }
 *   | { ok: false, reason: 'empty', bytes: number }
 *   | { ok: false, reason: 'tooLong', bytes: number, over: number }
 *   | { ok: false, reason: 'unsafe', bytes: number, char: string }} ChatCheck
 *   `char`: the first refused character as `U+XXXX`.
 */

/**
 * Trims a message and says whether the server will take it, and if not, why.
 * @param {unknown} raw
 * @returns {ChatCheck}
 */
export function checkChat(raw) {
  const text = String(raw ?? '').trim();
  const bytes = chatBytes(text);
  if (!text) return { ok: false, reason: 'empty', bytes };
  if (bytes > MAX_CHAT_BYTES) return { ok: false, reason: 'tooLong', bytes, over: bytes - MAX_CHAT_BYTES };
  const bad = UNSAFE.exec(text);
  if (bad) {
    const code = bad[0].codePointAt(0) ?? 0;
    return { ok: false, reason: 'unsafe', bytes, char: `U+${code.toString(16).toUpperCase().padStart(4, '0')}` };
  }
  return { ok: true, text, bytes };
}
