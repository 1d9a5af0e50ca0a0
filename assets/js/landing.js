// The start page: create a room (the server names it from its CSPRNG at /new) or type one.

import { pickLanguage, translator } from './i18n.js';
import { applyStrings } from './ui/dom.js';

const t = translator(pickLanguage(navigator.languages));
applyStrings(document, t);

const form = document.getElementById('join-room');
const input = document.getElementById('room-name');
const error = document.getElementById('room-error');

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const name = input.value.trim().toLowerCase();
  if (!/^[a-z0-9-]{1,64}$/.test(name)) {
    error.textContent = t('badRoomName');
    error.hidden = false;
    input.setAttribute('aria-invalid', 'true');
    input.focus();
    return;
  }
  location.assign(`/r/${name}`);
});
input.addEventListener('input', () => {
  error.hidden = true;
  input.removeAttribute('aria-invalid');
});
