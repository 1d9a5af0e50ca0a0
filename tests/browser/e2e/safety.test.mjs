// Safety codes in real Chromium: both sides of a call show the same code and room code; a
// verified person stays verified when they come back from the same browser, and a visible warning
// appears when they come back with another key; and when a fingerprint is rewritten in transit
// (an init script on one page changes the SDP in the signaling messages it receives, as a server
// in the middle would), the two sides' codes differ.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, participant, waitFor, joinWithMedia, smallVideo } from './harness.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Opens the Verify panel on `page` for `name` and returns the codes shown once there. */
async function codes(page, name) {
  await page.locator('figure.tile', { hasText: name }).getByRole('button', { name: 'Verify', exact: true }).click();
  await page.getByRole('heading', { name: `Verify ${name}` }).waitFor();
  await waitFor(page, () => /^\d{5} \d{5} \d{5} \d{5}$/.test(document.getElementById('verify-code')?.textContent ?? '')
    && /^\d{5} \d{5} \d{5} \d{5}$/.test(document.getElementById('verify-room-code')?.textContent ?? ''), undefined, { what: 'codes shown' });
  return page.evaluate(() => ({
    pair: document.getElementById('verify-code')?.textContent,
    room: document.getElementById('verify-room-code')?.textContent,
  }));
}

const badge = (page, name, text) => page.locator('figure.tile', { hasText: name }).locator('.badge', { hasText: text });

/** Rewrites the DTLS fingerprint of every description this page receives over the socket. */
function rewriteFingerprints() {
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    set onmessage(handler) {
      super.onmessage = (event) => {
        let data = event.data;
        if (typeof data === 'string') {
          data = data.replace(/a=fingerprint:(\S+) ([0-9A-Fa-f:]+)/g, (_, alg, hex) => `a=fingerprint:${alg} ${hex.replace(/[0-9A-Fa-f]/g, 'A')}`);
        }
        handler.call(this, new MessageEvent('message', { data }));
      };
    }
    get onmessage() {
      return super.onmessage;
    }
  };
}

test('safety code: the same on both sides; remembered when verified; a changed key is a visible warning', async () => {
  const ada = await participant(browser);
  let bo = await participant(browser);
  try {
    for (const p of [ada, bo]) await p.context.addInitScript(smallVideo);
    await joinWithMedia(ada.page, server.url, 'verify-room', 'Ada', { audio: false });
    await joinWithMedia(bo.page, server.url, 'verify-room', 'Bo', { audio: false });
    const seenByAda = await codes(ada.page, 'Bo');
    const seenByBo = await codes(bo.page, 'Ada');
    assert.deepEqual(seenByAda, seenByBo, 'both read the same codes');
    assert.notEqual(seenByAda.pair, seenByAda.room);
    await ada.page.getByText('If Bo sees the same digits on their screen, your call with them is encrypted end to end').waitFor();

    await ada.page.getByRole('button', { name: 'Mark as verified' }).click();
    await badge(ada.page, 'Bo', 'Verified').waitFor();
    await ada.page.getByText('You compared this code with Bo').waitFor();

    // Bo comes back from the same browser: the same key, still verified.
    await bo.page.reload();
    await bo.page.getByRole('button', { name: 'Join', exact: true }).click();
    await bo.page.getByRole('button', { name: 'Leave' }).waitFor();
    await waitFor(ada.page, () => window.__pcs.filter((pc) => pc.connectionState === 'connected').length === 1, undefined, { what: 'call again' });
    assert.equal((await codes(bo.page, 'Ada')).pair, seenByAda.pair, 'the same code after a reload');
    await badge(ada.page, 'Bo', 'Verified').waitFor();

    // "Bo" comes back with another key (another browser, or someone in the middle): a warning.
    await bo.page.getByRole('button', { name: 'Leave' }).click();
    await bo.context.close();
    bo = await participant(browser);
    await bo.context.addInitScript(smallVideo);
    await joinWithMedia(bo.page, server.url, 'verify-room', 'Bo', { audio: false });
    await badge(ada.page, 'Bo', 'Code changed').waitFor();
    await ada.page.getByRole('status').getByText('The safety code of Bo is not the one you verified before').waitFor();
    const changed = await codes(ada.page, 'Bo');
    assert.notEqual(changed.pair, seenByAda.pair);
    await ada.page.getByRole('alert').getByText('The safety code of Bo is not the one you verified before').waitFor();
  } finally {
    await ada.context.close();
    await bo.context.close();
  }
});

test('safety code: a fingerprint rewritten in transit makes the two codes differ', async () => {
  const cy = await participant(browser);
  const dee = await participant(browser);
  try {
    for (const p of [cy, dee]) await p.context.addInitScript(smallVideo);
    await dee.context.addInitScript(rewriteFingerprints);
    await joinWithMedia(cy.page, server.url, 'tampered', 'Cy', { audio: false });
    await joinWithMedia(dee.page, server.url, 'tampered', 'Dee', { audio: false });
    const seenByCy = await codes(cy.page, 'Dee');
    const seenByDee = await codes(dee.page, 'Cy');
    assert.notEqual(seenByCy.pair, seenByDee.pair, 'the codes differ');
    assert.notEqual(seenByCy.room, seenByDee.room, 'and so do the room codes');
  } finally {
    await cy.context.close();
    await dee.context.close();
  }
});
