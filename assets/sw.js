// The installed app's service worker: it keeps the start page's shell, so the app opens with no
// server in reach and says so (landing.js asks /healthz). Network first, so a server that is
// there always serves its current files; the cache only answers when it cannot be reached.
//
// Never anything of a room: room pages, the meeting's scripts and the WebSocket are not in SHELL,
// so this worker does not touch them (no respondWith: the browser fetches them as if it did not
// exist), and nothing a meeting shows or says is ever stored.

const CACHE = 'videomeet-shell-v1';

/** The start page and exactly what it loads. */
const SHELL = [
  '/',
  '/css/app.css',
  '/js/landing.js',
  '/js/i18n.js',
  '/js/room-name.js',
  '/js/install.js',
  '/js/ui/dom.js',
  '/favicon.svg',
  '/manifest.webmanifest',
  '/icons/icon-192.png',
  '/icons/icon-512.png',
  '/icons/icon-maskable-512.png',
];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((key) => key !== CACHE).map((key) => caches.delete(key))))
    .then(() => self.clients.claim()));
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin || !SHELL.includes(url.pathname)) return;
  event.respondWith(fetch(request).then((response) => {
    if (response.ok) {
      const copy = response.clone();
      event.waitUntil(caches.open(CACHE).then((cache) => cache.put(url.pathname, copy)));
    }
    return response;
  }).catch(() => caches.match(url.pathname).then((cached) => cached ?? Response.error())));
});
