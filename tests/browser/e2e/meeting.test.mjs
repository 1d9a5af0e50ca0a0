// Two people meet in real Chromium: each decodes the other's video; toggling the camera keeps
// the connection and the track; the lobby asks for nothing before a click and remembers choices.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, participant, waitFor, decodingAll, joinWithMedia } from './harness.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  const code = await server?.stop();
  assert.equal(code, 0, 'the server exits 0 on SIGTERM');
});

test('two browsers meet, see each other, and camera toggles keep the call', async () => {
  const ada = await participant(browser);
  const bo = await participant(browser);
  try {
    await joinWithMedia(ada.page, server.url, 'team-standup', 'Ada');
    await joinWithMedia(bo.page, server.url, 'team-standup', 'Bo');
    for (const p of [ada, bo]) {
      await waitFor(p.page, decodingAll, 1, { what: 'remote video decoding' });
    }
    // Each sees the other's tile with the right name.
    await ada.page.locator('figure.tile', { hasText: 'Bo' }).waitFor();
    await bo.page.locator('figure.tile', { hasText: 'Ada' }).waitFor();

    // Camera off and on again, twice: only track.enabled flips; nothing is renegotiated or dropped.
    for (let i = 0; i < 2; i++) {
      await ada.page.getByRole('button', { name: 'Turn camera off' }).click();
      await bo.page.locator('figure.tile', { hasText: 'Ada' }).locator('.badge', { hasText: 'Camera off' }).waitFor();
      await ada.page.getByRole('button', { name: 'Turn camera on' }).click();
      await bo.page.locator('figure.tile', { hasText: 'Ada' }).locator('.badge', { hasText: 'Camera off' }).waitFor({ state: 'detached' });
    }
    const state = await ada.page.evaluate(() => {
      const pc = window.__pcs.find((p) => p.connectionState !== 'closed');
      const sender = pc.getSenders().find((s) => s.track?.kind === 'video');
      return { connection: pc.connectionState, track: sender.track.readyState, enabled: sender.track.enabled, pcs: window.__pcs.length };
    });
    assert.deepEqual(state, { connection: 'connected', track: 'live', enabled: true, pcs: 1 });
    await waitFor(bo.page, decodingAll, 1, { what: 'video still decoding after toggles' });

    // The CSP (connect-src 'self') let the page's own WebSocket through, as the meeting shows,
    // and stops one to any other host before it is opened.
    const blocked = await ada.page.evaluate(() => new Promise((resolve) => {
      document.addEventListener('securitypolicyviolation', (e) => resolve(e.effectiveDirective), { once: true });
      try { new WebSocket('ws://127.0.0.2:9/elsewhere'); } catch (e) { resolve(`threw ${e.name}`); }
      setTimeout(() => resolve('not blocked'), 2000);
    }));
    assert.match(blocked, /connect-src|threw SecurityError/);
  } finally {
    await ada.context.close();
    await bo.context.close();
  }
});

test('the lobby asks for no device before a click, and remembers choices across a reload', async () => {
  const cy = await participant(browser);
  try {
    const { page } = cy;
    await page.goto(`${server.url}/r/lobby-check`);
    await page.getByLabel('Your name').waitFor();
    assert.equal(await page.evaluate(() => window.__gum), 0, 'no getUserMedia on load');
    await page.getByLabel('Your name').fill('Cy');
    await page.getByRole('button', { name: 'Turn microphone on' }).click();
    await page.getByRole('button', { name: 'Turn microphone off' }).waitFor();
    assert.equal(await page.evaluate(() => window.__gum), 1);
    await page.getByRole('button', { name: 'Join', exact: true }).click();
    await page.getByRole('button', { name: 'Leave' }).waitFor();

    await page.reload();
    await page.getByLabel('Your name').waitFor();
    assert.equal(await page.getByLabel('Your name').inputValue(), 'Cy');
    // Remembered: the microphone is chosen, the camera is not, and still nothing was asked.
    await page.getByRole('button', { name: 'Turn microphone off' }).waitFor();
    await page.getByRole('button', { name: 'Turn camera on' }).waitFor();
    assert.equal(await page.evaluate(() => window.__gum), 0, 'no getUserMedia after reload');
  } finally {
    await cy.context.close();
  }
});

test('a refused camera gets a clear message and the user can still join to watch', async () => {
  const { context, page } = await participant(browser);
  await context.addInitScript(() => {
    navigator.mediaDevices.getUserMedia = async () => {
      throw new DOMException('Permission denied', 'NotAllowedError');
    };
  });
  try {
    await page.goto(`${server.url}/r/denied`);
    await page.getByLabel('Your name').fill('Dee');
    await page.getByRole('button', { name: 'Turn camera on' }).click();
    await page.getByRole('alert').filter({ hasText: 'not allowed to use the camera' }).waitFor();
    await page.getByRole('button', { name: 'Turn camera on' }).waitFor();
    await page.getByRole('button', { name: 'Join', exact: true }).click();
    await page.getByRole('button', { name: 'Leave' }).waitFor();
    assert.equal(await page.locator('figure.tile').count(), 1);
  } finally {
    await context.close();
  }
});
