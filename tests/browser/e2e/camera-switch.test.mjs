// Issue 16, defect 4, in a real browser: "Switch camera" used to stop the old track before
// replaceTrack had put the new one on the senders, so peers saw a frozen or black frame. Each
// sender's replaceTrack is made to take 300 ms (as a busy phone's does); the old camera track
// must stop only after it resolved on every sender, and the peers keep decoding.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, participant, joinWithMedia, waitFor, decodingAll } from './harness.mjs';

let server;
let browser;
before(async () => { server = await startServer(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.stop(); });

/** Two cameras (the fake one twice), slow replaceTrack, and a log of stops and replacements. */
function twoSlowCameras() {
  window.__events = [];
  const md = navigator.mediaDevices;
  const enumerate = md.enumerateDevices.bind(md);
  md.enumerateDevices = async () => {
    const list = await enumerate();
    const camera = list.find((d) => d.kind === 'videoinput');
    if (!camera) return list;
    const second = { deviceId: 'second-camera', groupId: 'second', kind: 'videoinput', label: 'Second camera', toJSON() { return this; } };
    return [...list, second];
  };
  const gum = md.getUserMedia.bind(md);
  md.getUserMedia = (constraints) => {
    const video = constraints?.video;
    if (video && typeof video === 'object') {
      const { deviceId, facingMode, ...rest } = video;
      constraints = { ...constraints, video: rest };
    }
    return gum(constraints);
  };
  const replace = RTCRtpSender.prototype.replaceTrack;
  RTCRtpSender.prototype.replaceTrack = function (track) {
    const result = new Promise((resolve) => setTimeout(resolve, 300)).then(() => replace.call(this, track));
    result.then(() => window.__events.push({ what: 'replaced', track: track?.id, kind: track?.kind, at: performance.now() }));
    return result;
  };
  const stop = MediaStreamTrack.prototype.stop;
  MediaStreamTrack.prototype.stop = function () {
    window.__events.push({ what: 'stop', track: this.id, kind: this.kind, at: performance.now() });
    return stop.call(this);
  };
}

test('Switch camera stops the old track only after the new one is on every sender', async () => {
  const ada = await participant(browser);
  const bo = await participant(browser);
  const cy = await participant(browser);
  await ada.context.addInitScript(twoSlowCameras);
  try {
    await joinWithMedia(ada.page, server.url, 'flip', 'Ada', { audio: false });
    await joinWithMedia(bo.page, server.url, 'flip', 'Bo', { audio: false });
    await joinWithMedia(cy.page, server.url, 'flip', 'Cy', { audio: false });
    await waitFor(ada.page, decodingAll, 2, { what: 'Ada connected to both' });
    const before = await ada.page.evaluate(() => window.__pcs.flatMap((pc) => pc.getSenders()).find((s) => s.track?.kind === 'video')?.track?.id);
    assert.ok(before, 'Ada sends a camera track');
    await ada.page.evaluate(() => { window.__events = []; });
    await ada.page.getByRole('button', { name: 'Switch camera' }).click();
    await waitFor(ada.page, (old) => window.__events.some((e) => e.what === 'stop' && e.track === old), before, { what: 'the old track stopped', ms: 10000 });
    const events = await ada.page.evaluate(() => window.__events);
    const stoppedAt = events.find((e) => e.what === 'stop' && e.track === before).at;
    const replaced = events.filter((e) => e.what === 'replaced' && e.kind === 'video');
    assert.equal(replaced.length, 2, `one replacement per sender: ${JSON.stringify(events)}`);
    for (const r of replaced) assert.ok(r.at <= stoppedAt, `replaced at ${r.at}, old stopped at ${stoppedAt}`);
    assert.notEqual(replaced[0].track, before, 'the new track is on the senders');
    await waitFor(bo.page, decodingAll, 2, { what: 'Bo still decoding' });
    await waitFor(cy.page, decodingAll, 2, { what: 'Cy still decoding' });
  } finally {
    for (const p of [ada, bo, cy]) await p.context.close();
  }
});
