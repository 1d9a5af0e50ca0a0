// Recording in real Chromium, with everyone's knowledge: every page shows the banner before the
// recorder's MediaRecorder starts, a late joiner sees it too, the file offered at Stop recording
// is a WebM with video and audio of the right length (ffprobe and ffmpeg from Debian decode
// it), the host's "Allow recording" off stops a recording under way and refuses the next, and a
// recorder who leaves is offered the file on the next screen.
// Bo's browser has no save picker, as in Firefox: the recording is written to the origin's
// private file system as it comes (what a crashed tab left there is removed at the start), saved
// with Save recording (the download), and removed from there once Bo dismisses it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer, launch, participant, waitFor, joinWithMedia, smallVideo, noFileSystemAccess } from './harness.mjs';

let server;
let browser;
const dir = mkdtempSync(path.join(tmpdir(), 'videomeet-recording-'));

before(async () => {
  server = await startServer();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Notes when this page's recording banner shows, and when (and whether then) a MediaRecorder starts. */
function watchRecording() {
  window.__bannerShownAt = null;
  window.__recorderStarts = [];
  const check = () => {
    const banner = document.getElementById('recording-banner');
    if (!banner) return;
    if (banner.hidden) window.__bannerShownAt = null;
    else window.__bannerShownAt ??= Date.now();
  };
  new MutationObserver(check).observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
  window.__recorderStops = [];
  const start = MediaRecorder.prototype.start;
  MediaRecorder.prototype.start = function (...args) {
    const banner = document.getElementById('recording-banner');
    window.__recorderStarts.push({ at: Date.now(), bannerShown: Boolean(banner && !banner.hidden) });
    return start.apply(this, args);
  };
  const stop = MediaRecorder.prototype.stop;
  MediaRecorder.prototype.stop = function (...args) {
    window.__recorderStops.push(Date.now());
    return stop.apply(this, args);
  };
}

const banner = (page) => page.locator('#recording-banner');

/** The files of the private file system's recordings directory, with their sizes. */
async function privateRecordings() {
  const root = await navigator.storage.getDirectory();
  const dir = await root.getDirectoryHandle('recordings').catch(() => null);
  const files = [];
  for await (const [name, handle] of dir?.entries() ?? []) files.push({ name, size: (await handle.getFile()).size });
  return files;
}

/** A recording a tab that crashed left behind: no page holds it. */
async function leaveACrashedRecording() {
  const root = await navigator.storage.getDirectory();
  const dir = await root.getDirectoryHandle('recordings', { create: true });
  const writable = await (await dir.getFileHandle('crashed.webm', { create: true })).createWritable();
  await writable.write('not a recording');
  await writable.close();
}

/** What ffprobe says of a file: its streams, and the last packet time of each. */
function probe(file) {
  const streams = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=index,codec_type,codec_name', '-of', 'json', file], { encoding: 'utf8' })).streams;
  const packets = execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'packet=stream_index,pts_time', '-of', 'csv=p=0', file], { encoding: 'utf8' });
  const last = new Map();
  for (const line of packets.trim().split('\n')) {
    const [index, pts] = line.split(',');
    if (pts && pts !== 'N/A') last.set(Number(index), Math.max(last.get(Number(index)) ?? 0, Number(pts)));
  }
  return streams.map((s) => ({ type: s.codec_type, codec: s.codec_name, seconds: last.get(s.index) ?? 0 }));
}

test('recording: banner everywhere first; a playable WebM of the right length; a late joiner sees it; the host turns it off', async () => {
  const ada = await participant(browser);
  const bo = await participant(browser);
  let cy = null;
  try {
    for (const p of [ada, bo]) {
      await p.context.addInitScript(smallVideo);
      await p.context.addInitScript(watchRecording);
    }
    await bo.context.addInitScript(noFileSystemAccess);
    await joinWithMedia(ada.page, server.url, 'recorded', 'Ada');
    await joinWithMedia(bo.page, server.url, 'recorded', 'Bo');
    await waitFor(ada.page, () => window.__pcs.some((pc) => pc.connectionState === 'connected'), undefined, { what: 'call up' });
    await ada.page.locator('figure.tile', { hasText: 'Bo' }).locator('video').evaluate((v) => new Promise((r) => (v.videoWidth ? r(0) : v.addEventListener('resize', r, { once: true }))));

    await bo.page.evaluate(leaveACrashedRecording);
    await bo.page.getByRole('button', { name: 'Start recording' }).click();
    await bo.page.getByRole('button', { name: 'Stop recording' }).waitFor();
    await waitFor(bo.page, () => window.__recorderStarts.length === 1, undefined, { what: 'the recorder started' });
    // Chromium writes to a swap file (`.crswap`) beside the file until it is closed.
    const writing = (await bo.page.evaluate(privateRecordings)).filter((f) => !f.name.endsWith('.crswap'));
    assert.equal(writing.length, 1, `one file in the private file system: ${JSON.stringify(writing)}`);
    assert.notEqual(writing[0].name, 'crashed.webm', 'the crashed tab\'s file is gone');
    const [start] = await bo.page.evaluate(() => window.__recorderStarts);
    assert.ok(start.bannerShown, 'the recorder\'s own page showed the banner first');
    const adaSaw = await ada.page.evaluate(() => window.__bannerShownAt);
    assert.ok(adaSaw !== null && adaSaw <= start.at, `Ada's banner (${adaSaw}) before the first frame (${start.at})`);
    assert.equal(await banner(ada.page).textContent(), 'Bo is recording this meeting');
    assert.equal(await banner(bo.page).textContent(), 'You are recording this meeting. It is kept in this browser until you save it.');
    await ada.page.locator('figure.tile', { hasText: 'Bo' }).locator('.badge.recording', { hasText: 'Recording' }).waitFor();
    await bo.page.locator('figure.tile[data-peer="self"]').locator('.badge.recording').waitFor();

    // About four seconds of meeting, then Stop recording and Save recording.
    await bo.page.waitForFunction((t) => Date.now() - t > 4000, start.at, { polling: 100 });
    await bo.page.getByRole('button', { name: 'Stop recording' }).click();
    const [download] = await Promise.all([
      bo.page.waitForEvent('download'),
      bo.page.getByRole('button', { name: 'Save recording' }).click(),
    ]);
    const file = path.join(dir, 'meeting.webm');
    await download.saveAs(file);
    assert.match(download.suggestedFilename(), /^recorded .*\.webm$/);
    for (const p of [ada, bo]) await banner(p.page).waitFor({ state: 'hidden' });
    const [stoppedAt] = await bo.page.evaluate(() => window.__recorderStops);
    const wall = (stoppedAt - start.at) / 1000;

    const streams = probe(file);
    const video = streams.find((s) => s.type === 'video');
    const audio = streams.find((s) => s.type === 'audio');
    assert.ok(video && audio, `video and audio: ${JSON.stringify(streams)}`);
    assert.match(video.codec, /^vp[89]$/);
    assert.equal(audio.codec, 'opus');
    // As long as it was recorded: the last packet of each within a second and a half of the
    // time between MediaRecorder.start and .stop (about 4 s).
    for (const s of [video, audio]) assert.ok(s.seconds > 3 && Math.abs(s.seconds - wall) < 1.5, `${s.type} lasts ${s.seconds} s of ${wall} s`);
    // Every frame of both streams decoded, and no decoder complained. (ffprobe rather than
    // `ffmpeg -f null`: the null muxer also reports frames that share a millisecond timestamp,
    // which Chromium writes when its canvas frames come in a burst on a busy machine.)
    const decoded = spawnSync('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'stream=codec_type,nb_read_frames', '-of', 'json', file], { encoding: 'utf8' });
    assert.equal(decoded.status, 0, decoded.stderr);
    assert.equal(decoded.stderr.trim(), '', 'decodes without an error');
    for (const s of JSON.parse(decoded.stdout).streams) assert.ok(Number(s.nb_read_frames) > 10, `${s.codec_type}: ${s.nb_read_frames} frames decoded`);

    // What was offered is the private file system's file, written as it came, not memory.
    const offered = await bo.page.evaluate(privateRecordings);
    assert.deepEqual(offered, [{ name: writing[0].name, size: statSync(file).size }], 'the download is the file written in the private file system');
    // Dismissed: nothing is on offer, so nothing is kept.
    await bo.page.locator('#recording-ready').getByRole('button', { name: 'Dismiss' }).click();
    await waitFor(bo.page, async () => {
      const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('recordings');
      for await (const name of dir.keys()) return name;
      return true;
    }, undefined, { what: 'the dismissed recording removed' });

    // Bo records again, and someone who joins meanwhile is told as they come in.
    await bo.page.getByRole('button', { name: 'Start recording' }).click();
    await waitFor(bo.page, () => window.__recorderStarts.length === 2, undefined, { what: 'recording again' });
    cy = await participant(browser);
    await cy.context.addInitScript(smallVideo);
    await joinWithMedia(cy.page, server.url, 'recorded', 'Cy', { audio: false });
    await banner(cy.page).getByText('Bo is recording this meeting').waitFor();
    await cy.page.locator('figure.tile', { hasText: 'Bo' }).locator('.badge.recording', { hasText: 'Recording' }).waitFor();

    // The host turns recording off while Bo records: Bo's recording stops and is kept.
    await ada.page.getByRole('button', { name: 'Room settings' }).click();
    await ada.page.getByLabel('Allow recording').uncheck();
    await bo.page.getByText('The host turned recording off: your recording stopped').waitFor();
    await bo.page.getByRole('button', { name: 'Save recording' }).waitFor();
    await bo.page.getByRole('button', { name: 'Start recording' }).waitFor();
    for (const p of [ada, bo, cy]) await banner(p.page).waitFor({ state: 'hidden' });
    // And the next try is refused, in words.
    await bo.page.getByRole('button', { name: 'Start recording' }).click();
    await bo.page.getByText('The host has turned recording off for this room.').first().waitFor();
    assert.equal(await bo.page.evaluate(() => window.__recorderStarts.length), 2, 'nothing recorded');
    assert.equal(await banner(ada.page).isHidden(), true);

    // Allowed again; Bo records and leaves: the file is offered after leaving.
    await ada.page.getByLabel('Allow recording').check();
    await bo.page.getByRole('button', { name: 'Start recording' }).click();
    await waitFor(bo.page, () => window.__recorderStarts.length === 3, undefined, { what: 'recording a third time' });
    await bo.page.waitForFunction(() => Date.now() - window.__recorderStarts[2].at > 2000, undefined, { polling: 100 });
    await bo.page.getByRole('button', { name: 'Leave' }).click();
    await bo.page.getByRole('heading', { name: 'You left the meeting' }).waitFor();
    await banner(ada.page).waitFor({ state: 'hidden' });
    const [left] = await Promise.all([
      bo.page.waitForEvent('download'),
      bo.page.getByRole('button', { name: 'Save recording' }).click(),
    ]);
    const leftFile = path.join(dir, 'left.webm');
    await left.saveAs(leftFile);
    const kinds = probe(leftFile).map((s) => s.type).sort();
    assert.deepEqual(kinds, ['audio', 'video'], 'the recording made before leaving');
  } finally {
    await ada.context.close();
    await bo.context.close();
    await cy?.context.close();
  }
});
