// The plain-HTTP trap (issue 16), as a phone on the LAN meets it: the room's link opened with
// http:// and the LAN name. With HTTPS on, the server sends the page to HTTPS (where the camera
// works); behind a trusted proxy, where a redirect could loop, the page says why the camera will
// be refused and links to the HTTPS page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, participant } from './harness.mjs';

let direct;
let proxied;
let browser;
before(async () => {
  direct = await startServer(['--allowed-hosts', 'pi.lan']);
  proxied = await startServer(['--allowed-hosts', 'pi.lan', '--trusted-proxies', '127.0.0.1/32']);
  // "pi.lan" is this machine, as a LAN name is to a phone: not a loopback name to the browser.
  browser = await launch(['--host-resolver-rules=MAP pi.lan 127.0.0.1']);
});
after(async () => { await browser?.close(); await direct?.stop(); await proxied?.stop(); });

test('http://LAN-name/r/room goes to the HTTPS page, where the camera works', async () => {
  const { context, page } = await participant(browser, { context: { ignoreHTTPSErrors: true } });
  try {
    const port = new URL(direct.url).port;
    const httpsPort = new URL(direct.httpsUrl).port;
    await page.goto(`http://pi.lan:${port}/r/family?x=1`);
    assert.equal(page.url(), `https://pi.lan:${httpsPort}/r/family?x=1`);
    assert.equal(await page.evaluate(() => window.isSecureContext), true);
    await page.getByRole('button', { name: 'Turn camera on' }).click();
    await page.getByRole('button', { name: 'Turn camera off' }).waitFor();
    assert.equal(await page.getByRole('link', { name: 'Open the secure page' }).count(), 0);
  } finally {
    await context.close();
  }
});

test('behind a trusted proxy, the plain-HTTP page says why and links to HTTPS (Russian too)', async () => {
  for (const [locale, words] of [['en-US', { link: 'Open the secure page', why: 'opened without HTTPS' }], ['ru-RU', { link: 'Открыть защищённую страницу', why: 'открыта без HTTPS' }]]) {
    const { context, page } = await participant(browser, { context: { locale } });
    try {
      const port = new URL(proxied.url).port;
      await page.goto(`http://pi.lan:${port}/r/family`);
      assert.equal(new URL(page.url()).protocol, 'http:', 'no redirect behind a proxy');
      await page.getByRole('alert').filter({ hasText: words.why }).waitFor();
      assert.equal(await page.getByRole('link', { name: words.link }).getAttribute('href'), 'https://pi.lan/r/family');
    } finally {
      await context.close();
    }
  }
});
