// Files over the peers' data channels, in real Chromium: a 3 MB file to one person and to
// everyone arrives byte-identical (SHA-256 compared with the original's), a declined file leaves
// nothing, a drop on a tile offers to that person only, cancel works from either side, and a
// sender leaving mid-file is reported. Bo's browser writes to disk as the bytes come (the File
// System Access API: the save picker answered with a file of the origin's private file system,
// since a test cannot click a native dialog); Cy's has no such API and keeps the file in memory
// until Save, as Firefox and Safari do. No data channel costs a second offer.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  startServer, launch, participant, waitFor, joinWithMedia, smallVideo, pickerToPrivateFiles, noFileSystemAccess,
} from './harness.mjs';

let server;
let browser;
const dir = mkdtempSync(path.join(tmpdir(), 'videomeet-files-'));

/** A file of random bytes on disk, with its SHA-256. */
function makeFile(name, size) {
  const bytes = randomBytes(size);
  const file = path.join(dir, name);
  writeFileSync(file, bytes);
  return { file, name, size, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** In Bo's page: the SHA-256 of a file of its private file system, or null if there is none. */
async function privateFileHash(name) {
  const root = await navigator.storage.getDirectory();
  let handle;
  try {
    handle = await root.getFileHandle(name);
  } catch {
    return null;
  }
  const file = await handle.getFile();
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', await file.arrayBuffer()));
  return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
}

before(async () => {
  server = await startServer();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const card = (page, name) => page.locator('#transfers li', { hasText: name });

/** Chooses `file` in the picker the click opens. */
async function choose(page, click, file) {
  const [chooser] = await Promise.all([page.waitForEvent('filechooser'), click()]);
  await chooser.setFiles(file);
}

/** Every link has its data channel open, and each was set up with one offer only. */
const channelsOpen = (expected) => {
  const pcs = window.__pcs.filter((pc) => pc.connectionState !== 'closed');
  if (pcs.length !== expected) return `pcs=${pcs.length}`;
  if (!pcs.every((pc) => pc.connectionState === 'connected' && pc.sctp?.state === 'connected')) return 'sctp not up';
  return true;
};

async function meet(room) {
  const ada = await participant(browser);
  const bo = await participant(browser);
  const cy = await participant(browser);
  for (const p of [ada, bo, cy]) await p.context.addInitScript(smallVideo);
  await bo.context.addInitScript(pickerToPrivateFiles);
  await cy.context.addInitScript(noFileSystemAccess);
  await joinWithMedia(ada.page, server.url, room, 'Ada', { audio: false });
  await joinWithMedia(bo.page, server.url, room, 'Bo', { audio: false });
  await joinWithMedia(cy.page, server.url, room, 'Cy', { audio: false });
  for (const p of [ada, bo, cy]) await waitFor(p.page, channelsOpen, 2, { what: 'data channels open', ms: 60000 });
  return { ada, bo, cy, close: () => Promise.all([ada, bo, cy].map((p) => p.context.close().catch(() => {}))) };
}

test('files: 3 MB to one person and to everyone arrive byte-identical; decline and drop-on-tile', async () => {
  const { ada, bo, cy, close } = await meet('files-basic');
  try {
    // The channel came with the first offer: the two links Bo and Cy offered on, one offer each,
    // and Ada (who answered both) offered nothing.
    assert.equal(await ada.page.evaluate(() => window.__offers), 0, 'the first person made no offer at all');
    assert.equal(await cy.page.evaluate(() => window.__offers), 2, 'the newcomer made one offer per link');

    // To one person: the tile's button.
    const one = makeFile('one.bin', 3 * 1024 * 1024);
    await choose(ada.page, () => ada.page.getByRole('button', { name: 'Send a file to Bo' }).click(), one.file);
    await card(bo.page, 'one.bin').getByText('Ada wants to send you one.bin').waitFor();
    await card(bo.page, 'one.bin').getByText('3.1 MB · application/octet-stream').waitFor();
    await card(ada.page, 'one.bin').getByText('Waiting for Bo to accept one.bin').waitFor();
    await card(bo.page, 'one.bin').getByRole('button', { name: 'Accept' }).click();
    await card(bo.page, 'one.bin').getByText('one.bin from Ada arrived intact').waitFor();
    await card(ada.page, 'one.bin').getByText('Bo received one.bin intact').waitFor();
    assert.equal(await bo.page.evaluate(privateFileHash, 'one.bin'), one.sha256);
    assert.equal(await card(cy.page, 'one.bin').count(), 0, 'Cy was not offered it');

    // To everyone: the toolbar's Send a file.
    const all = makeFile('all.bin', 3 * 1024 * 1024);
    await choose(ada.page, () => ada.page.getByRole('button', { name: 'Send a file', exact: true }).click(), all.file);
    await card(bo.page, 'all.bin').getByRole('button', { name: 'Accept' }).click();
    await card(cy.page, 'all.bin').getByRole('button', { name: 'Accept' }).click();
    await card(bo.page, 'all.bin').getByText('arrived intact').waitFor();
    await card(cy.page, 'all.bin').getByText('arrived intact').waitFor();
    assert.equal(await bo.page.evaluate(privateFileHash, 'all.bin'), all.sha256);
    const [download] = await Promise.all([
      cy.page.waitForEvent('download'),
      card(cy.page, 'all.bin').getByRole('button', { name: 'Save' }).click(),
    ]);
    assert.equal(download.suggestedFilename(), 'all.bin');
    const saved = path.join(dir, 'cy-all.bin');
    await download.saveAs(saved);
    assert.equal(createHash('sha256').update(readFileSync(saved)).digest('hex'), all.sha256);
    assert.equal(await ada.page.locator('#transfers li', { hasText: 'received all.bin intact' }).count(), 2);

    // Declined: nothing is written, and the sender is told.
    const no = makeFile('no.bin', 3 * 1024 * 1024);
    await choose(ada.page, () => ada.page.getByRole('button', { name: 'Send a file to Bo' }).click(), no.file);
    await card(bo.page, 'no.bin').getByRole('button', { name: 'Decline' }).click();
    await card(ada.page, 'no.bin').getByText('Bo declined no.bin').waitFor();
    await card(bo.page, 'no.bin').getByText('You declined no.bin').waitFor();
    assert.equal(await bo.page.evaluate(privateFileHash, 'no.bin'), null, 'nothing was written');

    // A file dropped on Cy's tile is offered to Cy alone.
    await ada.page.evaluate(() => {
      const tile = [...document.querySelectorAll('figure.tile')].find((t) => t.textContent.includes('Cy'));
      const data = new DataTransfer();
      data.items.add(new File(['dropped'], 'dropped.txt', { type: 'text/plain' }));
      for (const type of ['dragover', 'drop']) {
        tile.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: data }));
      }
    });
    await card(cy.page, 'dropped.txt').getByText('Ada wants to send you dropped.txt').waitFor();
    assert.equal(await card(bo.page, 'dropped.txt').count(), 0, 'Bo was not offered the dropped file');

    // Nothing of it renegotiated the call.
    assert.equal(await ada.page.evaluate(() => window.__offers), 0);
    assert.equal(await cy.page.evaluate(() => window.__offers), 2);
  } finally {
    await close();
  }
});

test('files: cancel from the receiver mid-file and from the sender before an answer; a sender who leaves is reported', async () => {
  const { ada, bo, cy, close } = await meet('files-cancel');
  try {
    const big = makeFile('big.bin', 64 * 1024 * 1024);
    // The receiver cancels while the bytes move: both sides say so, nothing is kept.
    await choose(ada.page, () => ada.page.getByRole('button', { name: 'Send a file to Bo' }).click(), big.file);
    await card(bo.page, 'big.bin').getByRole('button', { name: 'Accept' }).click();
    await waitFor(bo.page, () => {
      const bar = document.querySelector('#transfers li progress');
      return Boolean(bar && !bar.hidden && bar.value > 0 && bar.value < bar.max);
    }, undefined, { what: 'big.bin under way' });
    await card(bo.page, 'big.bin').getByText(/MB of 67.1 MB · .+\/s · /).waitFor();
    await card(bo.page, 'big.bin').getByRole('button', { name: 'Cancel' }).click();
    await card(bo.page, 'big.bin').getByText('You cancelled big.bin').waitFor();
    await card(ada.page, 'big.bin').getByText('Bo cancelled big.bin').waitFor();
    assert.equal(await bo.page.evaluate(async () => {
      const root = await navigator.storage.getDirectory();
      return (await (await root.getFileHandle('big.bin')).getFile()).size;
    }).catch(() => 0), 0, 'the partial file was discarded');

    // The sender cancels before Cy answers: the offer there ends.
    await choose(ada.page, () => ada.page.getByRole('button', { name: 'Send a file to Cy' }).click(), big.file);
    await card(cy.page, 'big.bin').getByText('Ada wants to send you big.bin').waitFor();
    await card(ada.page, 'big.bin').last().getByRole('button', { name: 'Cancel' }).click();
    await card(cy.page, 'big.bin').getByText('Ada cancelled big.bin').waitFor();
    assert.equal(await card(cy.page, 'big.bin').getByRole('button', { name: 'Accept' }).count(), 0);

    // The sender leaves mid-file.
    await choose(ada.page, () => ada.page.getByRole('button', { name: 'Send a file to Bo' }).click(), big.file);
    await card(bo.page, 'big.bin').last().getByRole('button', { name: 'Accept' }).click();
    await waitFor(bo.page, () => {
      const bar = [...document.querySelectorAll('#transfers li progress')].at(-1);
      return Boolean(bar && !bar.hidden && bar.value > 0 && bar.value < bar.max);
    }, undefined, { what: 'big.bin under way again' });
    await ada.page.getByRole('button', { name: 'Leave' }).click();
    await card(bo.page, 'big.bin').last().getByText('Ada left before big.bin was finished').waitFor();
  } finally {
    await close();
  }
});
