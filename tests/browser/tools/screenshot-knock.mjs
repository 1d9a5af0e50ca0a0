// Takes the README's "Ask to join" screenshots: the host's meeting with a knock, and the
// newcomer's lobby while waiting. (No reaction in them: this machine has no emoji font.)
// Usage: node tools/screenshot-knock.mjs  (after cargo build; writes docs/screenshot-knock*.png)
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, launch, participant, joinWithMedia, waitFor, decodingAll } from '../e2e/harness.mjs';

const out = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../docs');
const server = await startServer();
const browser = await launch();
try {
  const viewport = { viewport: { width: 1280, height: 800 } };
  const host = await participant(browser, viewport);
  const bo = await participant(browser, viewport);
  const cy = await participant(browser, viewport);
  await joinWithMedia(host.page, server.url, 'family', 'Ada');
  await joinWithMedia(bo.page, server.url, 'family', 'Bo');
  await waitFor(host.page, decodingAll, 1, { what: 'decoding' });
  await host.page.getByRole('button', { name: 'Room settings' }).click();
  await host.page.getByRole('checkbox', { name: 'Ask to join' }).check();
  await host.page.getByRole('button', { name: 'Close room settings' }).click();
  await cy.page.goto(`${server.url}/r/family`);
  await cy.page.getByLabel('Your name').fill('Chidi');
  await cy.page.getByRole('button', { name: 'Turn camera on' }).click();
  await cy.page.getByRole('button', { name: 'Turn camera off' }).waitFor();
  await cy.page.getByRole('button', { name: 'Join', exact: true }).click();
  await cy.page.getByRole('status').filter({ hasText: 'Waiting for the host' }).waitFor();
  await host.page.getByRole('group', { name: 'Chidi wants to join' }).waitFor();
  await host.page.waitForTimeout(900);
  await host.page.screenshot({ path: `${out}/screenshot-knock.png` });
  await cy.page.waitForTimeout(300);
  await cy.page.screenshot({ path: `${out}/screenshot-knock-wait.png` });
} finally {
  await browser.close();
  await server.stop();
}
