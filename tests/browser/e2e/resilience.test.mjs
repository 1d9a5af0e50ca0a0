// Calls that survive the signaling server going away: kill -9 and restart it, and both clients
// find their way back into the room and decode each other again without a reload.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, participant, waitFor, decodingAll, joinWithMedia } from './harness.mjs';

let browser;
let server;
after(async () => { await browser?.close(); await server?.stop(); });

test('after the server is killed and restarted, both clients are back within 10 s', async () => {
  server = await startServer();
  browser = await launch();
  const ada = await participant(browser);
  const bo = await participant(browser);
  await joinWithMedia(ada.page, server.url, 'phoenix', 'Ada');
  await joinWithMedia(bo.page, server.url, 'phoenix', 'Bo');
  await waitFor(ada.page, decodingAll, 1, { what: 'decoding before' });

  // The room store has both seats (it is written within a second of a change).
  const store = path.join(server.stateDir, 'rooms.json');
  for (let i = 0; i < 50 && !(existsSync(store) && readFileSync(store, 'utf8').includes('"Bo"')); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const pcsBefore = await ada.page.evaluate(() => window.__pcs.length);

  const listen = server.url.replace('http://', '');
  server.proc.kill('SIGKILL');
  await new Promise((r) => server.proc.once('exit', r));
  // While it is gone the page says so; the call itself keeps going peer to peer.
  await ada.page.getByText('Connection to the server lost').waitFor();
  const restartedAt = Date.now();
  server = await startServer(['--state-dir', server.stateDir], listen);

  for (const p of [ada, bo]) {
    await waitFor(p.page, async () => {
      const banner = document.getElementById('banner');
      if (!banner.hidden) return 'banner still up';
      const pcs = window.__pcs.filter((pc) => pc.connectionState === 'connected');
      for (const pc of pcs) {
        let frames = 0;
        (await pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded; });
        if (frames > 0) return true;
      }
      return 'not decoding';
    }, undefined, { ms: 10000, what: 'back in the room and decoding' });
  }
  const seconds = (Date.now() - restartedAt) / 1000;
  assert.ok(seconds <= 10, `${seconds} s`);
  assert.equal(await ada.page.locator('figure.tile').count(), 2, 'no duplicate tile');
  assert.equal(await bo.page.locator('figure.tile').count(), 2, 'no duplicate tile');
  // Same seats from the room store: Ada is still host, and the call was never rebuilt.
  await bo.page.locator('figure.tile', { hasText: 'Ada' }).locator('.badge', { hasText: 'Host' }).waitFor();
  assert.equal(await ada.page.evaluate(() => window.__pcs.length), pcsBefore, 'the working connection was kept');
  await ada.context.close();
  await bo.context.close();
});
