// Six people in one room, all connected and decoding each other; the seventh is told it is full.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, participant, waitFor, decodingAll, joinWithMedia, smallVideo } from './harness.mjs';

let server;
let browser;
before(async () => { server = await startServer(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.stop(); });

test('six participants meet in a full mesh and a seventh is turned away', async () => {
  const people = [];
  try {
    for (let i = 0; i < 6; i++) {
      const p = await participant(browser, { viewport: { width: 640, height: 480 } });
      await p.context.addInitScript(smallVideo);
      // Cameras only: thirty audio encoders and analysers would starve two cores for no gain here.
      await joinWithMedia(p.page, server.url, 'six', `P${i}`, { audio: false });
      people.push(p);
    }
    for (const [i, p] of people.entries()) {
      await waitFor(p.page, decodingAll, 5, { ms: 120000, what: `P${i} decoding all five` });
      assert.equal(await p.page.locator('figure.tile').count(), 6, `P${i} sees six tiles`);
    }
    const late = await participant(browser);
    people.push(late);
    await late.page.goto(`${server.url}/r/six`);
    await late.page.getByLabel('Your name').fill('Late');
    await late.page.getByRole('button', { name: 'Join', exact: true }).click();
    await late.page.getByText('This room already has six people').waitFor();
    for (const p of people.slice(0, 6)) assert.equal(await p.page.locator('figure.tile').count(), 6);
  } finally {
    for (const p of people) await p.context.close();
  }
});
