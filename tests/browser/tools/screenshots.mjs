// Takes the README's screenshots: the lobby and a meeting, on a desktop and a phone.
// Usage: node tools/screenshots.mjs [participants=6]  (writes docs/screenshot-*.png)
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, launch, participant, joinWithMedia, waitFor, decodingAll } from '../e2e/harness.mjs';

const out = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../docs');
const count = Number(process.argv[2] ?? 6);
const server = await startServer();
const browser = await launch();
try {
  const names = ['Ada', 'Bo', 'Chidi', 'Dana', 'Eun-ji', 'Farid'];
  const people = [];
  for (let i = 0; i < count; i++) {
    const phone = i === 1;
    const p = await participant(browser, phone
      ? { viewport: { width: 390, height: 844 }, context: { isMobile: true, hasTouch: true, deviceScaleFactor: 1 } }
      : { viewport: { width: 1280, height: 800 } });
    if (i === 0) {
      await p.page.goto(`${server.url}/r/team-standup`);
      await p.page.getByLabel('Your name').fill('Ada');
      await p.page.getByRole('button', { name: 'Turn camera on' }).click();
      await p.page.getByRole('button', { name: 'Turn camera off' }).waitFor();
      await p.page.waitForTimeout(500);
      await p.page.screenshot({ path: `${out}/screenshot-lobby.png` });
      await p.page.getByRole('button', { name: 'Turn microphone on' }).click();
      await p.page.getByRole('button', { name: 'Join', exact: true }).click();
      await p.page.getByRole('button', { name: 'Leave' }).waitFor();
    } else {
      await joinWithMedia(p.page, server.url, 'team-standup', names[i]);
    }
    people.push(p);
  }
  for (const p of people) await waitFor(p.page, decodingAll, count - 1, { ms: 90000, what: 'all decoding' });
  await people[2]?.page.getByRole('button', { name: 'Turn microphone off' }).click();
  if (people[2]) await people[0].page.locator('.badge', { hasText: 'Microphone off' }).waitFor();
  await people[0].page.waitForTimeout(500);
  await people[0].page.screenshot({ path: `${out}/screenshot-meeting.png` });
  if (people[1]) await people[1].page.screenshot({ path: `${out}/screenshot-phone.png` });
} finally {
  await browser.close();
  await server.stop();
}
