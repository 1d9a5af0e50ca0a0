// Camera switching in node, with fake devices (issue 16, defect 4): the old track used to be
// stopped right after `outgoing` was emitted, 4-183 ms before replaceTrack put the new one on the
// senders, so peers saw a frozen or black frame. It must stop only once every sender has the
// new track; phones that cannot open two cameras keep their stop-first path.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { LocalMedia } from '../../../assets/js/media.js';

/** A fake MediaStreamTrack that records when it was stopped. */
class FakeTrack extends EventTarget {
  constructor(kind, deviceId, log) {
    super();
    this.kind = kind;
    this.deviceId = deviceId;
    this.enabled = true;
    this.readyState = 'live';
    this.log = log;
  }
  stop() {
    this.readyState = 'ended';
    this.log.push(`stop ${this.deviceId}`);
  }
  getSettings() { return { deviceId: this.deviceId }; }
}

/** Fake mediaDevices: each getUserMedia opens the asked camera; `busy` makes a second one fail. */
function devices(log, { busy = false } = {}) {
  const live = new Set();
  return {
    async getUserMedia(constraints) {
      const id = constraints.video?.deviceId?.exact ?? 'cam1';
      if (busy && [...live].some((t) => t.readyState === 'live')) {
        log.push(`busy ${id}`);
        throw Object.assign(new Error('Could not start video source'), { name: 'NotReadableError' });
      }
      const track = new FakeTrack('video', id, log);
      live.add(track);
      log.push(`open ${id}`);
      return { getTracks: () => [track] };
    },
  };
}

/** Every `outgoing` replaced on the senders `ms` later, as replaceTrack does. */
function sendersTaking(media, log, ms) {
  media.addEventListener('outgoing', (e) => {
    const { track, waitUntil } = /** @type {any} */ (e).detail;
    waitUntil(new Promise((resolve) => setTimeout(() => { log.push(`replaced ${track.deviceId}`); resolve(undefined); }, ms)));
  });
}

test('switching camera stops the old track only after the new one is on every sender', async () => {
  const log = [];
  const media = new LocalMedia(devices(log));
  await media.set('video', true);
  sendersTaking(media, log, 50);
  sendersTaking(media, log, 120);
  await media.useDevice('video', 'cam2');
  assert.deepEqual(log, ['open cam1', 'open cam2', 'replaced cam2', 'replaced cam2', 'stop cam1']);
  assert.equal(media.track('video')?.deviceId, 'cam2');
  await media.flipCamera(['cam1', 'cam2']);
  assert.deepEqual(log.slice(5), ['open cam1', 'replaced cam1', 'replaced cam1', 'stop cam2']);
});

test('a phone that cannot open two cameras stops the old one first, then opens the new one', async () => {
  const log = [];
  const media = new LocalMedia(devices(log, { busy: true }));
  await media.set('video', true);
  sendersTaking(media, log, 20);
  await media.useDevice('video', 'cam2');
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.deepEqual(log, ['open cam1', 'busy cam2', 'stop cam1', 'open cam2', 'replaced cam2']);
});
