// The meeting's controls in real Chromium: toggles, camera flip, screen share, chat, second tab.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, participant, waitFor, decodingAll, joinWithMedia } from './harness.mjs';
import { LADDER } from '../../../assets/js/adapt.js';

let server;
let browser;
before(async () => { server = await startServer(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.stop(); });

/** Two people in `room`, both decoding; `extra` runs in Ada's context before the page loads. */
async function pair(room, extra) {
  const ada = await participant(browser);
  if (extra) await ada.context.addInitScript(extra);
  const bo = await participant(browser);
  await joinWithMedia(ada.page, server.url, room, 'Ada');
  await joinWithMedia(bo.page, server.url, room, 'Bo');
  await waitFor(ada.page, decodingAll, 1, { what: 'Ada decoding' });
  await waitFor(bo.page, decodingAll, 1, { what: 'Bo decoding' });
  return { ada, bo, close: async () => { await ada.context.close(); await bo.context.close(); } };
}

const senderState = () => {
  const pc = window.__pcs.find((p) => p.connectionState !== 'closed');
  const video = pc.getSenders().find((s) => s.track?.kind === 'video')?.track;
  const audio = pc.getSenders().find((s) => s.track?.kind === 'audio')?.track;
  return {
    connection: pc.connectionState,
    video: video && { id: video.id, state: video.readyState, enabled: video.enabled },
    audio: audio && { id: audio.id, state: audio.readyState },
    offers: window.__offers,
    pcs: window.__pcs.filter((p) => p.connectionState !== 'closed').length,
  };
};

test('twenty camera and microphone toggles keep every connection and track', async () => {
  const { ada, bo, close } = await pair('toggles');
  try {
    const before = await ada.page.evaluate(senderState);
    for (let i = 0; i < 20; i++) {
      await ada.page.getByRole('button', { name: 'Turn camera off' }).click();
      await ada.page.getByRole('button', { name: 'Turn camera on' }).click();
      await ada.page.getByRole('button', { name: 'Turn microphone off' }).click();
      await ada.page.getByRole('button', { name: 'Turn microphone on' }).click();
    }
    const afterState = await ada.page.evaluate(senderState);
    assert.equal(afterState.connection, 'connected');
    assert.deepEqual(afterState.video, { ...before.video, enabled: true }, 'same live camera track');
    assert.deepEqual(afterState.audio, before.audio, 'same live microphone track');
    assert.equal(afterState.offers, before.offers, 'no renegotiation');
    assert.equal(afterState.pcs, 1);
    await waitFor(bo.page, decodingAll, 1, { what: 'Bo still decoding' });
  } finally {
    await close();
  }
});

// Two cameras for the flip button; the fake device answers whichever is asked for.
function twoCameras() {
  const md = navigator.mediaDevices;
  const enumerate = md.enumerateDevices.bind(md);
  md.enumerateDevices = async () => {
    const list = await enumerate();
    const cam = list.find((d) => d.kind === 'videoinput');
    if (!cam) return list;
    const back = { deviceId: 'back-camera', kind: 'videoinput', label: 'Back camera', groupId: 'g2', toJSON() { return this; } };
    return [...list, back];
  };
  const gum = md.getUserMedia;
  md.getUserMedia = (constraints) => {
    if (constraints?.video && typeof constraints.video === 'object') {
      const { deviceId, facingMode, ...rest } = constraints.video;
      window.__flipAsked = (window.__flipAsked ?? 0) + (deviceId || facingMode ? 1 : 0);
      return gum({ ...constraints, video: rest });
    }
    return gum(constraints);
  };
}

test('a camera flip swaps the track on the sender without a new offer or an audio gap', async () => {
  const { ada, bo, close } = await pair('flip', twoCameras);
  try {
    const before = await ada.page.evaluate(senderState);
    await ada.page.getByRole('button', { name: 'Switch camera' }).click();
    await waitFor(ada.page, (id) => {
      const pc = window.__pcs.find((p) => p.connectionState !== 'closed');
      const t = pc.getSenders().find((s) => s.track?.kind === 'video')?.track;
      return Boolean(t && t.id !== id && t.readyState === 'live');
    }, before.video.id, { what: 'a new camera track on the sender' });
    const afterState = await ada.page.evaluate(senderState);
    assert.equal(afterState.offers, before.offers, 'replaceTrack needs no new offer');
    assert.deepEqual(afterState.audio, before.audio, 'the microphone track is untouched');
    assert.equal(afterState.connection, 'connected');
    await waitFor(bo.page, decodingAll, 1, { what: 'Bo decoding the new camera' });
  } finally {
    await close();
  }
});

// A "screen" the test controls: a canvas stream in place of the browser's picker.
function fakeScreen() {
  navigator.mediaDevices.getDisplayMedia = async () => {
    const canvas = document.createElement('canvas');
    canvas.width = 320;
    canvas.height = 180;
    const ctx = canvas.getContext('2d');
    let n = 0;
    setInterval(() => { ctx.fillStyle = `hsl(${(n += 7) % 360} 80% 50%)`; ctx.fillRect(0, 0, 320, 180); }, 50);
    return canvas.captureStream(15);
  };
}

/** True once the open connection's video sender carries the track with id `id`. */
const cameraOnSender = (id) => {
  const pc = window.__pcs.find((p) => p.connectionState !== 'closed');
  return pc.getSenders().some((s) => s.track?.kind === 'video' && s.track.id === id);
};

test('screen share reaches the peer and stopping returns to the camera', async () => {
  const { ada, bo, close } = await pair('screen', fakeScreen);
  try {
    const before = await ada.page.evaluate(senderState);
    await ada.page.getByRole('button', { name: 'Share screen' }).click();
    await bo.page.locator('figure.tile', { hasText: 'Ada' }).locator('.badge', { hasText: 'Sharing screen' }).waitFor();
    const sharing = await ada.page.evaluate(senderState);
    assert.notEqual(sharing.video.id, before.video.id, 'the screen is on the sender');
    assert.equal(sharing.offers, before.offers, 'no renegotiation');
    const frames = () => bo.page.evaluate(async () => {
      const pc = window.__pcs.find((p) => p.connectionState !== 'closed');
      let f = 0;
      (await pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') f += s.framesDecoded; });
      return f;
    });
    const f0 = await frames();
    await waitFor(bo.page, decodingAll, 1, { what: 'Bo decoding the screen' });
    await new Promise((r) => setTimeout(r, 1500));
    assert.ok((await frames()) > f0, 'screen frames keep arriving');
    await ada.page.getByRole('button', { name: 'Stop sharing' }).click();
    await bo.page.locator('figure.tile', { hasText: 'Ada' }).locator('.badge', { hasText: 'Sharing screen' }).waitFor({ state: 'detached' });
    // replaceTrack is asynchronous; the badge can leave Bo's screen before it resolves.
    await waitFor(ada.page, cameraOnSender, before.video.id, { what: 'the camera back on the sender' });

    // Stopping from the browser's own "Stop sharing" bar ends the track without our button.
    await ada.page.getByRole('button', { name: 'Share screen' }).click();
    await bo.page.locator('figure.tile', { hasText: 'Ada' }).locator('.badge', { hasText: 'Sharing screen' }).waitFor();
    await ada.page.evaluate(() => {
      const pc = window.__pcs.find((p) => p.connectionState !== 'closed');
      pc.getSenders().find((s) => s.track?.kind === 'video').track.dispatchEvent(new Event('ended'));
    });
    await ada.page.getByRole('button', { name: 'Share screen' }).waitFor();
    await bo.page.locator('figure.tile', { hasText: 'Ada' }).locator('.badge', { hasText: 'Sharing screen' }).waitFor({ state: 'detached' });
    await waitFor(ada.page, cameraOnSender, before.video.id, { what: 'the camera back after the browser stopped the share' });
    const after = await ada.page.evaluate(senderState);
    assert.equal(after.offers, before.offers, 'still no renegotiation');
  } finally {
    await close();
  }
});

test('the active speaker is highlighted for the others and not once their microphone is off', async () => {
  const { ada, bo, close } = await pair('speaker');
  try {
    // Chromium's fake microphone beeps; Bo hears Ada's beeps through Web Audio.
    const adaTile = bo.page.locator('figure.tile', { hasText: 'Ada' });
    await bo.page.locator('figure.tile.speaking', { hasText: 'Ada' }).waitFor({ timeout: 15000 });
    await ada.page.getByRole('button', { name: 'Turn microphone off' }).click();
    await adaTile.locator('.badge', { hasText: 'Microphone off' }).waitFor();
    // A muted track sends silence: the highlight leaves within a few ticks and stays off.
    await bo.page.waitForFunction(() => ![...document.querySelectorAll('figure.tile.speaking')].some((t) => t.textContent.includes('Ada')), null, { timeout: 5000 });
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(await bo.page.locator('figure.tile.speaking', { hasText: 'Ada' }).count(), 0);
  } finally {
    await close();
  }
});

const XSS = [
  '<img src=x onerror="window.__xss=1">',
  '<script>window.__xss=2</script>',
  '"><svg onload="window.__xss=3">',
  '<a href="javascript:window.__xss=4">click</a>',
  '<iframe srcdoc="<script>parent.__xss=5</script>"></iframe>',
  '{{7*7}} ${7*7} <b>bold</b> &amp; &lt;',
];

test('chat shows HTML payloads as plain text and late joiners get the history', async () => {
  const { ada, bo, close } = await pair('chat');
  try {
    await ada.page.getByRole('button', { name: 'Chat', exact: true }).click();
    for (const payload of XSS) {
      await ada.page.getByLabel('Message').fill(payload);
      await ada.page.getByRole('button', { name: 'Send', exact: true }).click();
    }
    await bo.page.getByRole('button', { name: 'Chat', exact: true }).click();
    await waitFor(bo.page, (n) => document.querySelectorAll('#chat-log .chat-text').length === n, XSS.length, { what: 'all messages' });
    const seen = await bo.page.evaluate(() => ({
      texts: [...document.querySelectorAll('#chat-log .chat-text')].map((p) => p.textContent),
      elements: document.querySelectorAll('#chat-log img, #chat-log script, #chat-log svg, #chat-log iframe, #chat-log a, #chat-log b').length,
      xss: window.__xss ?? null,
    }));
    assert.deepEqual(seen.texts, XSS);
    assert.equal(seen.elements, 0, 'no markup was created');
    assert.equal(seen.xss, null, 'no payload ran');

    const cy = await participant(browser);
    await joinWithMedia(cy.page, server.url, 'chat', 'Cy');
    await cy.page.getByRole('button', { name: 'Chat', exact: true }).click();
    await waitFor(cy.page, (n) => document.querySelectorAll('#chat-log .chat-text').length === n, XSS.length, { what: 'history' });
    await cy.context.close();
  } finally {
    await close();
  }
});

test('a second tab with the same identity takes the seat and leaves one tile', async () => {
  const { ada, bo, close } = await pair('two-tabs');
  try {
    const identity = await ada.page.evaluate(() => ({ ...sessionStorage }));
    const tab2 = await ada.context.newPage();
    await tab2.addInitScript((saved) => {
      for (const [k, v] of Object.entries(saved)) sessionStorage.setItem(k, v);
    }, identity);
    // Same browser profile: the name and the camera and microphone choices are remembered.
    await tab2.goto(`${server.url}/r/two-tabs`);
    assert.equal(await tab2.getByLabel('Your name').inputValue(), 'Ada');
    await tab2.getByRole('button', { name: 'Turn camera off' }).waitFor();
    await tab2.getByRole('button', { name: 'Join', exact: true }).click();
    await tab2.getByRole('button', { name: 'Leave' }).waitFor();
    await ada.page.getByText('You joined from another tab').waitFor();
    await waitFor(bo.page, decodingAll, 1, { what: 'Bo decoding the second tab' });
    assert.equal(await bo.page.locator('figure.tile').count(), 2, 'Bo sees himself and one Ada');
    assert.equal(await bo.page.locator('figure.tile', { hasText: 'Ada' }).count(), 1);
  } finally {
    await close();
  }
});

/** In the page: each open connection's video sender `active` flag and the audio's priority. */
const sendParams = () => window.__pcs.filter((p) => p.connectionState === 'connected').map((pc) => {
  const enc = (kind) => pc.getSenders().find((s) => s.track?.kind === kind)?.getParameters().encodings?.[0] ?? {};
  return { video: enc('video').active !== false, audioPriority: enc('audio').priority, offers: window.__offers };
});

test('Audio only: my video stops, the peer stops sending me its video, no renegotiation; remembered after a reload', async () => {
  const { ada, bo, close } = await pair('audio-only');
  try {
    const offersBefore = (await bo.page.evaluate(sendParams))[0].offers;
    const toggle = bo.page.getByRole('button', { name: 'Audio only' });
    assert.equal(await toggle.getAttribute('aria-pressed'), 'false');
    await toggle.click();
    assert.equal(await toggle.getAttribute('aria-pressed'), 'true');
    // Bo sends no video; Ada, asked through the signaling socket, sends Bo none either.
    await waitFor(bo.page, () => window.__pcs.some((pc) => pc.getSenders().some((s) => s.track?.kind === 'video' && s.getParameters().encodings?.[0]?.active === false)), null, { what: 'Bo video inactive' });
    await waitFor(ada.page, () => window.__pcs.some((pc) => pc.getSenders().some((s) => s.track?.kind === 'video' && s.getParameters().encodings?.[0]?.active === false)), null, { what: 'Ada video to Bo inactive' });
    const bob = (await bo.page.evaluate(sendParams))[0];
    assert.equal(bob.audioPriority, 'high', 'audio first');
    assert.equal(bob.offers, offersBefore, 'no renegotiation');
    // Off again: video flows both ways.
    await toggle.click();
    await waitFor(ada.page, () => window.__pcs.some((pc) => pc.getSenders().some((s) => s.track?.kind === 'video' && s.getParameters().encodings?.[0]?.active === true)), null, { what: 'Ada video to Bo active again' });
    await toggle.click();
    await bo.page.reload();
    assert.equal(await bo.page.evaluate(() => JSON.parse(localStorage.getItem('videomeet.prefs.v1')).audioOnly), true, 'remembered');
  } finally {
    await close();
  }
});

/** In the page: the video encoding of the (one) connected link's sender. */
const videoEncoding = () => {
  const pc = window.__pcs.find((p) => p.connectionState === 'connected');
  const e = pc?.getSenders().find((s) => s.track?.kind === 'video')?.getParameters().encodings?.[0];
  return e ? { active: e.active !== false, maxBitrate: e.maxBitrate ?? null, scale: e.scaleResolutionDownBy ?? 1 } : null;
};

/** In the page: pretend the tab went to the background (or came back), as the browser says it. */
const setHidden = (hidden) => {
  Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (hidden ? 'hidden' : 'visible') });
  document.dispatchEvent(new Event('visibilitychange'));
};

test('nobody sees it, nobody gets it in full: a hidden page or a tile off screen gets the smallest rung, shown again the full one', async () => {
  const { ada, bo, close } = await pair('unseen');
  const low = LADDER.at(-1).maxBitrate;
  const isLow = () => window.__pcs.some((pc) => pc.connectionState === 'connected' && pc.getSenders().some((s) => s.track?.kind === 'video'
    && s.getParameters().encodings?.[0]?.maxBitrate === 90_000 && s.getParameters().encodings[0].scaleResolutionDownBy > 1));
  const isFull = () => window.__pcs.some((pc) => pc.connectionState === 'connected' && pc.getSenders().some((s) => s.track?.kind === 'video'
    && (s.getParameters().encodings?.[0]?.maxBitrate ?? 0) > 90_000));
  try {
    assert.equal(low, 90_000, 'the test knows the last rung');
    await waitFor(ada.page, isFull, null, { what: 'Ada sends Bo more than a thumbnail', ms: 30000 });
    // Bo's tab goes to the background: Ada, asked through the signaling socket, sends a thumbnail.
    await bo.page.evaluate(setHidden, true);
    await waitFor(ada.page, isLow, null, { what: 'Ada sends hidden Bo the smallest rung' });
    const lowEnc = await ada.page.evaluate(videoEncoding);
    assert.ok(lowEnc.active, 'a thumbnail, not nothing: the tile still shows when Bo comes back');
    // Bo's own sending does not change for it.
    assert.ok((await bo.page.evaluate(videoEncoding)).maxBitrate > low, 'Bo still sends Ada full video');
    await bo.page.evaluate(setHidden, false);
    // (A loaded machine may have stepped the link itself down meanwhile: its probes take longer.)
    await waitFor(ada.page, isFull, null, { what: 'Ada sends visible Bo full video again', ms: 30000 });
    // Ada's tile leaves Bo's screen (a phone shows only some): the IntersectionObserver sees it.
    await bo.page.locator('figure.tile', { hasText: 'Ada' }).evaluate((tile) => { tile.style.position = 'fixed'; tile.style.top = '-5000px'; });
    await waitFor(ada.page, isLow, null, { what: 'Ada sends the smallest rung to a Bo who does not show her tile' });
    await bo.page.locator('figure.tile', { hasText: 'Ada' }).evaluate((tile) => { tile.style.position = ''; tile.style.top = ''; });
    await waitFor(ada.page, isFull, null, { what: 'Ada full again once her tile is back on Bo\'s screen', ms: 30000 });
  } finally {
    await close();
  }
});
