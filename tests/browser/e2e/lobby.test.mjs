// The start page and joining with nothing on: a new room from "Create a room", names checked
// inline; a participant with camera and microphone off still sees the others, and turning the
// camera on later reaches them without a new offer.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, participant, waitFor, decodingAll, joinWithMedia } from './harness.mjs';

let server;
let browser;
before(async () => { server = await startServer(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.stop(); });

test('the start page creates a random room and checks typed names', async () => {
  const { context, page } = await participant(browser);
  try {
    await page.goto(`${server.url}/`);
    await page.getByRole('button', { name: 'Create a room' }).click();
    await page.waitForURL(/\/r\/[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}$/);
    await page.getByLabel('Your name').waitFor();

    await page.goto(`${server.url}/`);
    await page.getByLabel('Room name').fill('team standup!');
    await page.getByRole('button', { name: 'Go to room' }).click();
    await page.getByRole('alert').filter({ hasText: 'letters, digits or dashes' }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/', 'stays on the start page');
    await page.getByLabel('Room name').fill('  Team-Standup ');
    await page.getByRole('button', { name: 'Go to room' }).click();
    await page.waitForURL(/\/r\/team-standup$/);
  } finally {
    await context.close();
  }
});

/** Offers this page has made, and the state of its one open peer connection. */
const linkState = () => {
  const pcs = window.__pcs.filter((p) => p.connectionState !== 'closed');
  const pc = pcs[0];
  const video = pc?.getSenders().find((s) => s.track?.kind === 'video')?.track;
  return { pcs: pcs.length, connection: pc?.connectionState, offers: window.__offers, video: video?.readyState ?? null };
};

test('joining with camera and microphone off still receives; a camera turned on later needs no new offer', async () => {
  const ada = await participant(browser);
  const bo = await participant(browser);
  try {
    await joinWithMedia(ada.page, server.url, 'quiet-bo', 'Ada');
    await bo.page.goto(`${server.url}/r/quiet-bo`);
    await bo.page.getByLabel('Your name').fill('Bo');
    await bo.page.getByRole('button', { name: 'Join', exact: true }).click();
    await bo.page.getByRole('button', { name: 'Turn camera on' }).waitFor();
    assert.equal(await bo.page.evaluate(() => window.__gum), 0, 'Bo was never asked for a device');
    await waitFor(bo.page, decodingAll, 1, { what: 'Bo, with nothing on, decoding Ada' });
    await ada.page.locator('figure.tile', { hasText: 'Bo' }).locator('.badge', { hasText: 'Camera off' }).waitFor();

    const adaBefore = await ada.page.evaluate(linkState);
    const boBefore = await bo.page.evaluate(linkState);
    assert.equal(boBefore.video, null, 'Bo sends no video yet');
    await bo.page.getByRole('button', { name: 'Turn camera on' }).click();
    await bo.page.getByRole('button', { name: 'Turn camera off' }).waitFor();
    await ada.page.locator('figure.tile', { hasText: 'Bo' }).locator('.badge', { hasText: 'Camera off' }).waitFor({ state: 'detached' });
    await waitFor(ada.page, decodingAll, 1, { what: 'Ada decoding the camera Bo turned on' });
    const adaAfter = await ada.page.evaluate(linkState);
    const boAfter = await bo.page.evaluate(linkState);
    assert.deepEqual(boAfter, { ...boBefore, video: 'live' }, 'same connection, no new offer from Bo');
    assert.deepEqual(adaAfter, adaBefore, 'same connection, no new offer from Ada');
  } finally {
    await ada.context.close();
    await bo.context.close();
  }
});

test('with no camera or microphone at all, the page says so and joining still works', async () => {
  const { context, page } = await participant(browser);
  await context.addInitScript(() => {
    navigator.mediaDevices.getUserMedia = async () => {
      throw new DOMException('Requested device not found', 'NotFoundError');
    };
  });
  try {
    await page.goto(`${server.url}/r/no-devices`);
    await page.getByLabel('Your name').fill('Dee');
    await page.getByRole('button', { name: 'Turn microphone on' }).click();
    await page.getByRole('alert').filter({ hasText: 'No camera or microphone was found' }).waitFor();
    await page.getByRole('button', { name: 'Join', exact: true }).click();
    await page.getByRole('button', { name: 'Leave' }).waitFor();
    await page.getByRole('button', { name: 'Turn microphone on' }).waitFor();
  } finally {
    await context.close();
  }
});
