// HTTPS as a phone on the LAN uses it: the self-signed certificate accepted once, the page and
// its WebSocket (wss) over TLS, meeting someone who came in over plain HTTP.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, participant, waitFor, decodingAll, joinWithMedia } from './harness.mjs';

let server;
let browser;
before(async () => { server = await startServer(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.stop(); });

test('a participant over HTTPS meets one over HTTP in the same room', async () => {
  assert.match(server.httpsUrl ?? '', /^https:\/\/127\.0\.0\.1:\d+$/, 'the server says where HTTPS is');
  // "Accept the certificate once": the context trusts it, as a user who clicked through would.
  const phone = await participant(browser, { context: { ignoreHTTPSErrors: true } });
  const laptop = await participant(browser);
  try {
    await joinWithMedia(phone.page, server.httpsUrl, 'family', 'Phone');
    await joinWithMedia(laptop.page, server.url, 'family', 'Laptop');
    assert.equal(await phone.page.evaluate(() => window.isSecureContext), true, 'camera-capable page');
    assert.equal(new URL(phone.page.url()).protocol, 'https:');
    await waitFor(phone.page, decodingAll, 1, { what: 'the HTTPS page decoding' });
    await waitFor(laptop.page, decodingAll, 1, { what: 'the HTTP page decoding' });
  } finally {
    await phone.context.close();
    await laptop.context.close();
  }
});
