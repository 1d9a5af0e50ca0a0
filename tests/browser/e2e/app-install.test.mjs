// The installable app (issue 16): a manifest with icons, standalone display and theme colours,
// and a service worker that keeps only the start page's shell: Chromium finds the app
// installable, the start page opens with the server gone and says it cannot be reached (English
// and Russian), and nothing of a room is ever cached or served from a cache.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { startServer, launch, participant, waitFor } from './harness.mjs';

let server;
let browser;
before(async () => { server = await startServer(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.stop(); });

/** True once the page is controlled by the service worker and its shell is cached. */
const controlled = async () => {
  await navigator.serviceWorker.ready;
  const keys = await caches.keys();
  return Boolean(navigator.serviceWorker.controller) && keys.length === 1;
};

test('installable, the start page works with the server gone, and no room is ever cached', async () => {
  const en = await participant(browser);
  const ru = await participant(browser, { context: { locale: 'ru-RU' } });
  try {
    for (const { page } of [en, ru]) {
      await page.goto(`${server.url}/`);
      await page.waitForFunction(controlled, undefined, { timeout: 15000 });
      await page.reload();
    }
    const manifest = await en.page.evaluate(async () => (await fetch('/manifest.webmanifest')).json());
    assert.equal(manifest.display, 'standalone');
    assert.equal(manifest.start_url, '/');
    assert.match(manifest.theme_color, /^#[0-9a-f]{6}$/);
    assert.match(manifest.background_color, /^#[0-9a-f]{6}$/);
    for (const icon of manifest.icons) {
      const type = await en.page.evaluate(async (src) => (await fetch(src)).headers.get('content-type'), icon.src);
      assert.equal(type, icon.type, icon.src);
    }
    assert.ok(manifest.icons.some((i) => i.sizes === '512x512' && i.purpose === 'maskable'));
    const cdp = await en.context.newCDPSession(en.page);
    const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
    // A test's browser context is an incognito one, which never installs; nothing else may stop it.
    assert.deepEqual(installabilityErrors.filter((e) => e.errorId !== 'in-incognito'), [], 'Chromium can install it');

    // A meeting in the same browser: nothing of it goes into the cache.
    await en.page.goto(`${server.url}/r/family`);
    await en.page.getByLabel('Your name').fill('Ada');
    await en.page.getByRole('button', { name: 'Join', exact: true }).click();
    await en.page.getByRole('button', { name: 'Leave' }).waitFor();
    const cached = await en.page.evaluate(async () => {
      const out = [];
      for (const key of await caches.keys()) {
        for (const request of await (await caches.open(key)).keys()) out.push(new URL(request.url).pathname);
      }
      return out.sort();
    });
    assert.ok(cached.includes('/') && cached.includes('/js/landing.js'), cached.join(' '));
    for (const path of cached) {
      assert.doesNotMatch(path, /^\/r\/|room\.html|\/js\/app\.js|\/ws\//, `a room's ${path} was cached`);
    }

    await server.stop();
    await en.page.goto(`${server.url}/`);
    await en.page.getByRole('alert').filter({ hasText: 'The server cannot be reached.' }).waitFor();
    await en.page.getByRole('button', { name: 'Create a room' }).waitFor();
    await ru.page.reload();
    await ru.page.getByRole('alert').filter({ hasText: 'Сервер недоступен.' }).waitFor();
    // A room's page is never served from a cache.
    await assert.rejects(en.page.goto(`${server.url}/r/family`), /ERR_CONNECTION_REFUSED|ERR_FAILED/);
  } finally {
    await en.context.close();
    await ru.context.close();
  }
});

test('online, the start page says nothing about the server', async () => {
  const fresh = await startServer();
  const { context, page } = await participant(browser);
  try {
    await page.goto(`${fresh.url}/`);
    await page.getByRole('button', { name: 'Create a room' }).waitFor();
    await waitFor(page, async () => (await fetch('/healthz')).ok, undefined, { what: 'healthz' });
    await page.waitForTimeout(300);
    assert.equal(await page.getByRole('alert').filter({ hasText: 'cannot be reached' }).count(), 0);
  } finally {
    await context.close();
    await fresh.stop();
  }
});

test('on the self-signed HTTPS origin, once its certificate is trusted, the app installs', async () => {
  const tls = await startServer();
  // What a user does once on a phone (installing the certificate), as a flag: Chromium trusts
  // this certificate's key. A certificate merely clicked through registers no service worker.
  const pem = path.join(tls.stateDir, 'tls-cert.pem');
  const spki = execFileSync('sh', ['-c',
    `openssl x509 -in '${pem}' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`]).toString().trim();
  const trusting = await launch([`--ignore-certificate-errors-spki-list=${spki}`]);
  try {
    const page = await (await trusting.newContext()).newPage();
    await page.goto(`${tls.httpsUrl}/`);
    await page.waitForFunction(controlled, undefined, { timeout: 15000 });
    const cdp = await page.context().newCDPSession(page);
    const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
    assert.deepEqual(installabilityErrors.filter((e) => e.errorId !== 'in-incognito'), []);
  } finally {
    await trusting.close();
    await tls.stop();
  }
});
