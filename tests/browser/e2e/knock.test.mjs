// Knock to enter through the UI (issue 16): the host turns on "Ask to join" in Room settings; a
// newcomer waits in the lobby with their preview; the host, not looking at the page, hears a
// chime and sees a toast and the knock with Admit and Deny; admitted people join, denied ones
// are told and cannot knock again at once; a host who reloads sees the knock still waiting; a
// removal turns "Ask to join" on by itself. English, then Russian.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, participant, joinWithMedia, waitFor } from './harness.mjs';

let server;
let browser;
before(async () => { server = await startServer(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.stop(); });

/** Counts the page's chimes (oscillators started), and makes it look unfocused. */
function hearChimes() {
  window.__chimes = 0;
  const create = AudioContext.prototype.createOscillator;
  AudioContext.prototype.createOscillator = function () {
    window.__chimes += 1;
    return create.call(this);
  };
}

/** Opens the room's link and presses Join with the camera on. */
async function knock(page, room, name, words = { name: 'Your name', camOn: 'Turn camera on', camOff: 'Turn camera off', join: 'Join' }) {
  await page.goto(`${server.url}/r/${room}`);
  await page.getByLabel(words.name).fill(name);
  await page.getByRole('button', { name: words.camOn }).click();
  await page.getByRole('button', { name: words.camOff }).waitFor();
  await page.getByRole('button', { name: words.join, exact: true }).click();
}

test('Ask to join: wait in the lobby, Admit lets in, Deny turns away for a while, a later host is shown who waits', async () => {
  const host = await participant(browser);
  const gus = await participant(browser);
  const dee = await participant(browser);
  const eve = await participant(browser);
  await host.context.addInitScript(hearChimes);
  try {
    await joinWithMedia(host.page, server.url, 'knock-en', 'Hana', { audio: false });
    await host.page.getByRole('button', { name: 'Room settings' }).click();
    await host.page.getByRole('checkbox', { name: 'Ask to join' }).check();
    await host.page.getByText('Newcomers ask to join.').waitFor();
    await host.page.getByRole('button', { name: 'Close room settings' }).click();
    // The host works in another window now.
    await host.page.evaluate(() => { document.hasFocus = () => false; });

    await knock(gus.page, 'knock-en', 'Gus');
    await gus.page.getByRole('status').filter({ hasText: 'Waiting for the host to let you in' }).waitFor();
    await waitFor(gus.page, () => {
      const v = document.querySelector('#preview');
      return v instanceof HTMLVideoElement && v.videoWidth > 0 && !v.paused;
    }, undefined, { what: 'the preview while waiting' });
    assert.equal(await gus.page.getByRole('button', { name: 'Leave' }).count(), 0, 'not in the meeting');

    const card = host.page.getByRole('group', { name: 'Gus wants to join' });
    await card.waitFor();
    await host.page.getByRole('status').filter({ hasText: 'Gus wants to join' }).waitFor();
    assert.ok(await host.page.evaluate(() => window.__chimes) > 0, 'a chime for an unfocused page');
    await card.getByRole('button', { name: 'Admit' }).click();
    await gus.page.getByRole('button', { name: 'Leave' }).waitFor();
    await host.page.locator('figure.tile', { hasText: 'Gus' }).waitFor();
    await card.waitFor({ state: 'detached' });

    // Dee is turned away and may not knock again at once.
    await knock(dee.page, 'knock-en', 'Dee');
    await host.page.getByRole('group', { name: 'Dee wants to join' }).getByRole('button', { name: 'Deny' }).click();
    const told = dee.page.getByRole('alert').filter({ hasText: 'The host did not let you in. You can ask again in a minute.' });
    await told.waitFor();
    await dee.page.getByRole('button', { name: 'Join', exact: true }).click();
    await dee.page.getByRole('button', { name: 'Joining…' }).waitFor({ state: 'detached' });
    await told.waitFor();
    assert.equal(await host.page.getByRole('group', { name: 'Dee wants to join' }).count(), 0, 'no second knock reached the host');

    // Fay gives up waiting: off the host's list, and her lobby is as before Join.
    const fay = await participant(browser);
    try {
      await knock(fay.page, 'knock-en', 'Fay');
      await host.page.getByRole('group', { name: 'Fay wants to join' }).waitFor();
      await fay.page.getByRole('button', { name: 'Stop waiting' }).click();
      await host.page.getByRole('group', { name: 'Fay wants to join' }).waitFor({ state: 'detached' });
      await fay.page.getByRole('button', { name: 'Join', exact: true }).waitFor();
    } finally {
      await fay.context.close();
    }

    // Eve knocks; the host reloads: her seat goes (host passes to Gus, who arrives as host
    // later and is shown Eve waiting), and her tab is back in without knocking.
    await knock(eve.page, 'knock-en', 'Eve');
    await host.page.getByRole('group', { name: 'Eve wants to join' }).waitFor();
    await host.page.reload();
    await host.page.getByRole('button', { name: 'Join', exact: true }).click();
    await host.page.getByRole('button', { name: 'Leave' }).waitFor();
    await gus.page.getByRole('group', { name: 'Eve wants to join' }).getByRole('button', { name: 'Admit' }).click();
    await eve.page.getByRole('button', { name: 'Leave' }).waitFor();
    await host.page.locator('figure.tile', { hasText: 'Eve' }).waitFor();
  } finally {
    for (const p of [host, gus, dee, eve]) await p.context.close();
  }
});

test('after a removal "Ask to join" is on by itself, and the host is told how to turn it off', async () => {
  const host = await participant(browser);
  const troll = await participant(browser);
  try {
    await joinWithMedia(host.page, server.url, 'knock-rm', 'Hana', { audio: false });
    await joinWithMedia(troll.page, server.url, 'knock-rm', 'Troll', { audio: false });
    await host.page.getByRole('button', { name: 'Remove Troll' }).click();
    await host.page.getByRole('status').filter({ hasText: 'Ask to join is now on' }).waitFor();
    await host.page.getByRole('button', { name: 'Room settings' }).click();
    assert.equal(await host.page.getByRole('checkbox', { name: 'Ask to join' }).isChecked(), true);
  } finally {
    await host.context.close();
    await troll.context.close();
  }
});

test('in Russian: «Спрашивать разрешения на вход», the wait, «Впустить»', async () => {
  const ru = { context: { locale: 'ru-RU' } };
  const host = await participant(browser, ru);
  const gus = await participant(browser, ru);
  try {
    await host.page.goto(`${server.url}/r/knock-ru`);
    await host.page.getByLabel('Ваше имя').fill('Хана');
    await host.page.getByRole('button', { name: 'Войти', exact: true }).click();
    await host.page.getByRole('button', { name: 'Настройки комнаты' }).click();
    await host.page.getByRole('checkbox', { name: 'Спрашивать разрешения на вход' }).check();
    await host.page.getByText('Новые участники просят разрешения войти.').waitFor();
    await knock(gus.page, 'knock-ru', 'Гусь', { name: 'Ваше имя', camOn: 'Включить камеру', camOff: 'Выключить камеру', join: 'Войти' });
    await gus.page.getByRole('status').filter({ hasText: 'Ждём, пока организатор вас впустит' }).waitFor();
    const card = host.page.getByRole('group', { name: 'Гусь просит войти' });
    await card.getByRole('button', { name: 'Отклонить' }).waitFor();
    await card.getByRole('button', { name: 'Впустить' }).click();
    await gus.page.getByRole('button', { name: 'Выйти' }).waitFor();
  } finally {
    await host.context.close();
    await gus.context.close();
  }
});
