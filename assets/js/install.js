// The installable app: registers the service worker (sw.js) that keeps the start page's shell.
// Only in a secure context (HTTPS, or localhost), where browsers allow service workers.

export function registerShell() {
  if (!('serviceWorker' in navigator) || !window.isSecureContext) return;
  navigator.serviceWorker.register('/sw.js', { scope: '/' }).catch((err) => {
    // A self-signed certificate that was clicked through, not trusted: the page works, the
    // app does not install (README, "Install as an app").
    console.info('service worker not registered:', err?.message ?? err);
  });
}

/**
 * Whether the server answers now (the start page may come from the service worker's cache).
 * @param {typeof fetch} [get]
 */
export async function serverReachable(get = fetch) {
  try {
    const response = await get('/healthz', { cache: 'no-store' });
    return response.ok;
  } catch {
    return false;
  }
}
