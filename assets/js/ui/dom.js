// Small DOM helpers shared by the pages. User text only ever goes in through textContent.

/**
 * The element with `id`, of the type the caller expects; throws at once if the page lacks it,
 * rather than failing later on a null. Each id is looked up by the one ui/ module that owns it.
 * @template {HTMLElement} T
 * @param {string} id
 * @param {{ new (): T, prototype: T }} [type] HTMLElement unless given
 * @returns {T}
 */
export function byId(id, type) {
  const node = document.getElementById(id);
  const want = type ?? HTMLElement;
  if (!(node instanceof want)) throw new Error(`the page has no ${want.name} #${id}`);
  return /** @type {T} */ (node);
}

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
  // Not byId: pages without the region (the start page) simply say nothing.
  const region = document.getElementById('announcer');
  if (!region) return;
  region.textContent = '';
  // A fresh node per message, so repeated messages are read again.
  region.append(el('span', '', text));
}

/**
 * Sets a button's accessible name and visible label. Icon-only controls (`.ctl`) keep the name in
 * a visually hidden `.label` and show it as a tooltip too.
 * @param {HTMLElement} button
 * @param {string} text
 */
export function setLabel(button, text) {
  const label = button.querySelector('.label') ?? button;
  label.textContent = text;
  if (button.classList.contains('ctl')) button.title = text;
}

/** An icon from the page's sprite (`<symbol id="i-…">`), hidden from screen readers. */
export function icon(id) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('class', 'icon');
  svg.setAttribute('aria-hidden', 'true');
  const use = document.createElementNS(ns, 'use');
  use.setAttribute('href', `#${id}`);
  svg.append(use);
  return svg;
}
