// Reactions and picture in picture through the UI (issue 16). A reaction floats over the
// sender's tile on every page and is announced; clicking fast sends only what the rate allows.
// Picture in picture moves the whole grid into a Document Picture-in-Picture window where the
// browser has one, falls back to the active speaker's video elsewhere, and is hidden where
// neither exists.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, participant, joinWithMedia, waitFor, decodingAll } from './harness.mjs';

let server;
let browser;
before(async () => { server = await startServer(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.stop(); });

const reactionsOn = (page, name) => page.locator('figure.tile', { hasText: name }).locator('.reaction');

test('a reaction floats over the sender\'s tile everywhere, is announced, and is rate-limited', async () => {
  const ada = await participant(browser);
  const bo = await participant(browser, { context: { locale: 'ru-RU' } });
  try {
    await joinWithMedia(ada.page, server.url, 'react', 'Ada', { audio: false });
    await bo.page.goto(`${server.url}/r/react`);
    await bo.page.getByLabel('Ваше имя').fill('Бо');
    await bo.page.getByRole('button', { name: 'Войти', exact: true }).click();
    await bo.page.getByRole('button', { name: 'Выйти' }).waitFor();
    await ada.page.locator('figure.tile', { hasText: 'Бо' }).waitFor();

    await ada.page.getByRole('button', { name: 'Reactions' }).click();
    await ada.page.getByRole('button', { name: 'Celebrate' }).click();
    await reactionsOn(bo.page, 'Ada').filter({ hasText: '🎉' }).waitFor();
    await reactionsOn(ada.page, 'Ada (You)').filter({ hasText: '🎉' }).waitFor();
    await waitFor(bo.page, () => document.querySelector('#announcer')?.textContent === 'Ada: реакция 🎉', undefined, { what: 'the announcement' });
    // It floats for a few seconds, then goes.
    await reactionsOn(bo.page, 'Ada').first().waitFor({ state: 'detached', timeout: 8000 });

    // In Russian the control is «Реакции»; ten fast clicks send a burst of four, not ten.
    for (let i = 0; i < 10; i++) {
      await bo.page.getByRole('button', { name: 'Реакции' }).click();
      await bo.page.getByRole('button', { name: 'Нравится' }).click();
    }
    await reactionsOn(ada.page, 'Бо').first().waitFor();
    await ada.page.waitForTimeout(700);
    const seen = await reactionsOn(ada.page, 'Бо').count();
    assert.ok(seen >= 4 && seen <= 6, `${seen} reactions shown`);
  } finally {
    await ada.context.close();
    await bo.context.close();
  }
});

test('Picture in picture moves the grid into a Document Picture-in-Picture window and back', async () => {
  const ada = await participant(browser);
  const bo = await participant(browser);
  try {
    await joinWithMedia(ada.page, server.url, 'pip-doc', 'Ada', { audio: false });
    await joinWithMedia(bo.page, server.url, 'pip-doc', 'Bo', { audio: false });
    await waitFor(ada.page, decodingAll, 1, { what: 'Ada decoding Bo' });
    const pip = ada.page.getByRole('button', { name: 'Picture in picture' });
    await pip.click();
    await waitFor(ada.page, () => {
      const win = window.documentPictureInPicture?.window;
      return Boolean(win && win.document.querySelectorAll('#grid figure.tile').length === 2 && !document.querySelector('#grid'));
    }, undefined, { what: 'the grid in the PiP window' });
    assert.equal(await pip.getAttribute('aria-pressed'), 'true');
    // The remote video keeps playing there.
    await waitFor(ada.page, () => {
      const v = window.documentPictureInPicture.window.document.querySelector('#grid figure.tile:not(.self) video');
      return v instanceof HTMLVideoElement && !v.paused && v.videoWidth > 0;
    }, undefined, { what: 'video playing in the PiP window' });
    await pip.click();
    await waitFor(ada.page, () => document.querySelectorAll('#grid figure.tile').length === 2 && !window.documentPictureInPicture.window, undefined, { what: 'the grid back' });
    assert.equal(await pip.getAttribute('aria-pressed'), 'false');
  } finally {
    await ada.context.close();
    await bo.context.close();
  }
});

test('without Document PiP the speaker\'s video goes into video PiP; with neither the control is hidden', async () => {
  const ada = await participant(browser);
  const bo = await participant(browser);
  const cy = await participant(browser);
  await ada.context.addInitScript(() => {
    Object.defineProperty(window, 'documentPictureInPicture', { value: undefined });
  });
  await cy.context.addInitScript(() => {
    Object.defineProperty(window, 'documentPictureInPicture', { value: undefined });
    Object.defineProperty(Document.prototype, 'pictureInPictureEnabled', { get: () => false });
  });
  try {
    await joinWithMedia(ada.page, server.url, 'pip-video', 'Ada', { audio: false });
    await joinWithMedia(bo.page, server.url, 'pip-video', 'Bo', { audio: false });
    await waitFor(ada.page, decodingAll, 1, { what: 'Ada decoding Bo' });
    await ada.page.getByRole('button', { name: 'Picture in picture' }).click();
    await waitFor(ada.page, () => document.pictureInPictureElement?.closest('figure.tile')?.textContent?.includes('Bo') === true,
      undefined, { what: "Bo's video in picture in picture" });
    assert.equal(await ada.page.getByRole('button', { name: 'Picture in picture' }).getAttribute('aria-pressed'), 'true');
    await ada.page.getByRole('button', { name: 'Picture in picture' }).click();
    await waitFor(ada.page, () => document.pictureInPictureElement === null, undefined, { what: 'video PiP closed' });

    await joinWithMedia(cy.page, server.url, 'pip-video', 'Cy', { audio: false });
    assert.equal(await cy.page.getByRole('button', { name: 'Picture in picture' }).count(), 0, 'hidden where neither exists');
  } finally {
    for (const p of [ada, bo, cy]) await p.context.close();
  }
});
