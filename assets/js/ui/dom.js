// Small DOM helpers shared by the pages. User text only ever goes in through textContent.

/** Fills every `[data-i18n]` element's text, and every `[data-i18n-label]`'s aria-label, from the translator. */
export function applyStrings(root, t) {
  for (const el of root.querySelectorAll('[data-i18n]')) {
    el.textContent = t(el.dataset.i18n);
  }
  for (const el of root.querySelectorAll('[data-i18n-label]')) {
    el.setAttribute('aria-label', t(el.dataset.i18nLabel));
  }
}

/** Creates an element with a class and optional text (as text, never HTML). */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Says something to screen readers through the page's aria-live region. */
export function announce(text) {
  const region = document.getElementById('announcer');
  if (!region) return;
  region.textContent = '';
  // A fresh node per message, so repeated messages are read again.
  region.append(el('span', '', text));
}
