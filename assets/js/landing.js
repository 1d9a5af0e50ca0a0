// The start page: create a room with a fresh random name, or go to one by name. Installed as an
// app it may open from the service worker's cache with no server in reach: then it says so.

import { pickLanguage, translator } from './i18n.js';
import { registerShell, serverReachable } from './install.js';
import { normalizeRoomName, randomRoomName } from './room-name.js';
import { applyStrings, byId } from './ui/dom.js';

const lang = pickLanguage(navigator.languages);
const t = translator(lang);
document.documentElement.lang = lang;
applyStrings(document, t);

const form = byId('join-room', HTMLFormElement);
const input = byId('room-name', HTMLInputElement);
const error = byId('room-error');

byId('create-room', HTMLFormElement).addEventListener('submit', (event) => {
  event.preventDefault();
  location.assign(`/r/${randomRoomName((bytes) => crypto.getRandomValues(bytes))}`);
});

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const name = normalizeRoomName(input.value);
  if (!name) {
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

const offline = byId('offline');
async function checkServer() {
  const up = await serverReachable();
  offline.hidden = up;
  offline.textContent = up ? '' : t('offline');
}
checkServer();
window.addEventListener('online', checkServer);
window.addEventListener('offline', checkServer);
registerShell();
