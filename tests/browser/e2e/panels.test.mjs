// Issue 16, defect 3: alone in a meeting, opening Chat or Room settings pushed part of the page
// off-screen (at 1280x800 the right edge with Send and the password field, at 1024x768 the left).
// Every control of the open panel and the toolbar must be inside the window, at both sizes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, participant, joinWithMedia } from './harness.mjs';

let server;
let browser;
before(async () => { server = await startServer(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.stop(); });

/** The elements of `selectors` that are not wholly inside the window, with their edges. */
const offScreen = (selectors) => {
  const out = [];
  for (const selector of selectors) {
    for (const node of document.querySelectorAll(selector)) {
      if (node.closest('[hidden]')) continue;
      const r = node.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      if (r.left < 0 || r.top < 0 || r.right > innerWidth + 0.5 || r.bottom > innerHeight + 0.5) {
        out.push(`${selector}: ${Math.round(r.left)}..${Math.round(r.right)} x ${Math.round(r.top)}..${Math.round(r.bottom)}`);
      }
    }
  }
  if (document.documentElement.scrollWidth > innerWidth) out.push(`page scrolls sideways: ${document.documentElement.scrollWidth}`);
  return out;
};

for (const viewport of [{ width: 1280, height: 800 }, { width: 1024, height: 768 }]) {
  test(`alone at ${viewport.width}x${viewport.height}, Chat and Room settings fit in the window`, async () => {
    const { context, page } = await participant(browser, { viewport });
    try {
      await joinWithMedia(page, server.url, `panels-${viewport.width}`, 'Ada', { audio: false });
      const everything = ['#grid', '.tile', '#controls button', '.topbar button', '#alone'];
      await page.getByRole('button', { name: 'Chat', exact: true }).click();
      await page.getByRole('button', { name: 'Send', exact: true }).waitFor();
      await page.waitForTimeout(300);
      assert.deepEqual(await page.evaluate(offScreen, [...everything, '#chat', '#chat input', '#chat button']), [], 'Chat open');
      await page.getByRole('button', { name: 'Close chat' }).click();

      await page.getByRole('button', { name: 'Room settings' }).click();
      await page.locator('#host-panel').getByLabel('Room password').waitFor();
      await page.waitForTimeout(300);
      assert.deepEqual(await page.evaluate(offScreen, [...everything, '#host-panel', '#host-panel input', '#host-panel button']), [], 'Room settings open');
    } finally {
      await context.close();
    }
  });
}
