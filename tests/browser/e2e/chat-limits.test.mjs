// Issue 16, defects 1 and 2: an over-limit message (1,100 Cyrillic letters: 2,200 bytes, the limit
// counts bytes) was dropped without a word; a message with U+200F (which RTL keyboards insert)
// was refused by the server and the box emptied with nothing shown. Now the limit shows as the
// user types, a message that cannot go says why and keeps its text, RTL text is sent, and a
// refusal from the server is shown beside the box in the user's language.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, participant, joinWithMedia } from './harness.mjs';

let server;
let browser;
before(async () => { server = await startServer(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.stop(); });

/** Joins with nothing on, in the lobby's own language, and opens the chat. */
async function inChat(page, room, names) {
  await page.goto(`${server.url}/r/${room}`);
  await page.getByLabel(names.yourName).fill('Ада');
  await page.getByRole('button', { name: names.join, exact: true }).click();
  await page.getByRole('button', { name: names.leave }).waitFor();
  await page.getByRole('button', { name: names.chat, exact: true }).click();
  return page.getByRole('textbox', { name: names.message });
}

test('1,100 Cyrillic letters: the counter says how far over, Send says why and keeps the text (Russian)', async () => {
  const { context, page } = await participant(browser, { context: { locale: 'ru-RU' } });
  try {
    const box = await inChat(page, 'chat-ru', { yourName: 'Ваше имя', join: 'Войти', leave: 'Выйти', chat: 'Чат', message: 'Сообщение' });
    const long = 'я'.repeat(1100);
    await box.fill(long);
    await page.getByText('2200 из 2048 байт: на 152 больше').waitFor();
    await page.getByRole('button', { name: 'Отправить', exact: true }).click();
    await page.getByRole('alert').filter({ hasText: 'Не отправлено: сообщение на 152 байт длиннее предела в 2048' }).waitFor();
    assert.equal(await box.inputValue(), long, 'the text stays');
    assert.equal(await page.locator('#chat-log li').count(), 0, 'nothing was sent');
    // Shortened to fit: it goes, and the warning goes away.
    await box.fill('я'.repeat(1024));
    await page.getByText('2048 из 2048 байт').waitFor();
    await page.getByRole('button', { name: 'Отправить', exact: true }).click();
    await page.locator('#chat-log li').first().waitFor();
    assert.equal(await box.inputValue(), '');
    assert.equal(await page.getByRole('alert').filter({ hasText: 'Не отправлено' }).count(), 0);
  } finally {
    await context.close();
  }
});

test('a message with U+200F is sent and shown; a refusal from the server is shown and the text given back', async () => {
  const ada = await participant(browser);
  const bo = await participant(browser);
  // Stands in for a server that refuses: the page's chat "REFUSE" goes out with an override the
  // server turns away, as if the client's own check had missed it.
  await ada.context.addInitScript(() => {
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function (data) {
      if (typeof data === 'string' && data.includes('"text":"REFUSE"')) data = data.replace('"text":"REFUSE"', '"text":"REFUSE\\u202e"');
      return send.call(this, data);
    };
  });
  try {
    await joinWithMedia(ada.page, server.url, 'chat-rtl', 'Ada', { audio: false });
    await joinWithMedia(bo.page, server.url, 'chat-rtl', 'Bo', { audio: false });
    await ada.page.getByRole('button', { name: 'Chat', exact: true }).click();
    const box = ada.page.getByRole('textbox', { name: 'Message' });
    const rtl = 'שלום\u200F!';
    await box.fill(rtl);
    await ada.page.getByRole('button', { name: 'Send', exact: true }).click();
    await bo.page.getByRole('button', { name: 'Chat', exact: true }).click();
    await bo.page.locator('#chat-log .chat-text', { hasText: 'שלום' }).waitFor();
    assert.equal(await bo.page.locator('#chat-log .chat-text').first().textContent(), rtl, 'verbatim, the mark kept');
    assert.equal(await box.inputValue(), '');

    await box.fill('REFUSE');
    await ada.page.getByRole('button', { name: 'Send', exact: true }).click();
    await ada.page.getByRole('alert').filter({ hasText: 'Not sent: the server refused the message' }).waitFor();
    assert.equal(await box.inputValue(), 'REFUSE', 'the text is given back');
  } finally {
    await ada.context.close();
    await bo.context.close();
  }
});
