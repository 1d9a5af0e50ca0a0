// Unit tests of the client's pure modules, imported straight from assets/.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { DEFAULT_PREFS, loadPrefs, savePrefs, tabIdentity } from '../../../assets/js/prefs.js';
import { STRINGS, pickLanguage, translator } from '../../../assets/js/i18n.js';
import { backoffDelay } from '../../../assets/js/backoff.js';
import { shouldReconnect } from '../../../assets/js/protocol.js';
import { IceRestartPolicy, DISCONNECTED_GRACE_MS } from '../../../assets/js/ice-policy.js';
import { mediaErrorKey } from '../../../assets/js/media.js';

function memoryStorage(initial = {}) {
  const data = new Map(Object.entries(initial));
  return {
    getItem: (k) => (data.has(k) ? data.get(k) : null),
    setItem: (k, v) => data.set(k, String(v)),
    removeItem: (k) => data.delete(k),
    data,
  };
}

test('prefs: a first visit gets safe defaults with nothing on', () => {
  assert.deepEqual(loadPrefs(memoryStorage()), DEFAULT_PREFS);
  assert.deepEqual(loadPrefs(undefined), DEFAULT_PREFS);
});

test('prefs: the microphone processing is on by default, and a choice to turn it off is kept', () => {
  assert.deepEqual(
    [DEFAULT_PREFS.noiseSuppression, DEFAULT_PREFS.echoCancellation, DEFAULT_PREFS.autoGainControl],
    [true, true, true],
  );
  const storage = memoryStorage();
  savePrefs(storage, { ...DEFAULT_PREFS, noiseSuppression: false });
  const back = loadPrefs(storage);
  assert.equal(back.noiseSuppression, false);
  assert.equal(back.echoCancellation, true);
  // An older store without these keys gets them on.
  const old = loadPrefs(memoryStorage({ 'videomeet.prefs.v1': JSON.stringify({ name: 'Ada' }) }));
  assert.equal(old.autoGainControl, true);
});

test('prefs: a corrupt or hostile store falls back field by field', () => {
  for (const raw of ['{not json', '[]', '42', 'null', '"x"']) {
    assert.deepEqual(loadPrefs(memoryStorage({ 'videomeet.prefs.v1': raw })), DEFAULT_PREFS, raw);
  }
  const mixed = loadPrefs(memoryStorage({ 'videomeet.prefs.v1': JSON.stringify({ name: 7, audio: 'yes', video: true }) }));
  assert.equal(mixed.name, '');
  assert.equal(mixed.audio, false);
  assert.equal(mixed.video, true);
});

test('prefs: round trip, and a store that throws is not fatal', () => {
  const storage = memoryStorage();
  const prefs = { ...DEFAULT_PREFS, name: 'Ada', audio: true, videoDevice: 'cam-2' };
  assert.equal(savePrefs(storage, prefs), true);
  assert.deepEqual(loadPrefs(storage), prefs);
  const broken = { getItem() { throw new Error('denied'); }, setItem() { throw new Error('full'); } };
  assert.deepEqual(loadPrefs(broken), DEFAULT_PREFS);
  assert.equal(savePrefs(broken, prefs), false);
});

test('tab identity: made once per tab, kept, and well formed', () => {
  const storage = memoryStorage();
  const fill = (bytes) => bytes.fill(7);
  const id = tabIdentity(storage, fill);
  assert.match(id, /^[A-Za-z0-9_-]{8,64}$/);
  assert.equal(tabIdentity(storage, () => { throw new Error('not called'); }), id);
  storage.setItem('videomeet.client.v1', '<bad>');
  assert.notEqual(tabIdentity(storage, fill), '<bad>');
});

test('i18n: every key exists in every language, with the same placeholders', () => {
  const keys = Object.keys(STRINGS.en);
  for (const [lang, table] of Object.entries(STRINGS)) {
    assert.deepEqual(Object.keys(table).sort(), [...keys].sort(), `${lang} keys`);
    for (const key of keys) {
      const holes = (s) => (s.match(/\{\w+\}/g) ?? []).sort().join();
      assert.equal(holes(table[key]), holes(STRINGS.en[key]), `${lang}.${key} placeholders`);
      assert.ok(table[key].trim().length > 0, `${lang}.${key} empty`);
    }
  }
});

test('i18n: the browser language picks the table, English otherwise', () => {
  assert.equal(pickLanguage(['ru-RU', 'en']), 'ru');
  assert.equal(pickLanguage(['de-DE', 'en-GB']), 'en');
  assert.equal(pickLanguage([]), 'en');
  const t = translator('ru');
  assert.equal(t('joined', { name: 'Ада' }), 'Ада вошёл(а)');
  assert.equal(translator('en')('joinTitle', { room: 'x' }), 'Join x');
});

test('backoff: grows from about 0.5 s to at most 5 s, with jitter', () => {
  const mid = () => 0.5;
  assert.equal(backoffDelay(0, mid), 500);
  assert.equal(backoffDelay(1, mid), 1000);
  assert.equal(backoffDelay(3, mid), 4000);
  assert.equal(backoffDelay(10, mid), 5000);
  for (let attempt = 0; attempt < 20; attempt++) {
    for (const r of [0, 0.25, 0.999]) {
      const d = backoffDelay(attempt, () => r);
      assert.ok(d >= 350 && d <= 5000, `${attempt} ${r} -> ${d}`);
    }
  }
  assert.notEqual(backoffDelay(2, () => 0), backoffDelay(2, () => 0.99), 'jittered');
});

test('backoff: final close codes do not reconnect, the rest do', () => {
  for (const code of [1000, 4000, 4001, 4002, 4004, 4005, 1008]) assert.equal(shouldReconnect(code), false, code);
  for (const code of [1001, 1006, 1009, 1011, 4003]) assert.equal(shouldReconnect(code), true, code);
});

function fakeClock() {
  let now = 0;
  const timers = new Map();
  let next = 1;
  return {
    now: () => now,
    setTimer: (fn, ms) => { timers.set(next, { fn, at: now + ms }); return next++; },
    clearTimer: (id) => timers.delete(id),
    advance(ms) {
      now += ms;
      for (const [id, timer] of [...timers]) {
        if (timer.at <= now) { timers.delete(id); timer.fn(); }
      }
    },
  };
}

test('ICE restart: 3 s after disconnected, unless it recovers', () => {
  const clock = fakeClock();
  let restarts = 0;
  const policy = new IceRestartPolicy({ restart: () => restarts++, responsible: true, ...clock });
  policy.onState('connected');
  policy.onState('disconnected');
  clock.advance(DISCONNECTED_GRACE_MS - 1);
  assert.equal(restarts, 0);
  policy.onState('connected');
  clock.advance(10_000);
  assert.equal(restarts, 0, 'recovered on its own');
  policy.onState('disconnected');
  clock.advance(DISCONNECTED_GRACE_MS);
  assert.equal(restarts, 1);
});

test('ICE restart: at once on failed, one in flight, only on the responsible side', () => {
  const clock = fakeClock();
  let restarts = 0;
  const policy = new IceRestartPolicy({ restart: () => restarts++, responsible: true, ...clock });
  policy.onState('failed');
  assert.equal(restarts, 1);
  policy.onState('failed');
  policy.onState('disconnected');
  clock.advance(DISCONNECTED_GRACE_MS);
  assert.equal(restarts, 1, 'one restart in flight');
  clock.advance(10_000);
  policy.onState('failed');
  assert.equal(restarts, 2, 'a stale restart may be retried');
  policy.onState('connected');

  let politeRestarts = 0;
  const polite = new IceRestartPolicy({ restart: () => politeRestarts++, responsible: false, ...clock });
  polite.onState('failed');
  polite.onState('disconnected');
  clock.advance(10_000);
  assert.equal(politeRestarts, 0);
});

test('media errors map to messages people can act on', () => {
  assert.equal(mediaErrorKey({ name: 'NotAllowedError' }), 'errPermission');
  assert.equal(mediaErrorKey({ name: 'NotFoundError' }), 'errNoDevice');
  assert.equal(mediaErrorKey({ name: 'NotReadableError' }), 'errBusy');
  assert.equal(mediaErrorKey({ name: 'Weird' }), 'errMedia');
});

import { sendPolicy, totalUpload } from '../../../assets/js/bandwidth.js';

test('bandwidth: per-peer bitrate and capture shrink as the mesh grows', () => {
  let last = Infinity;
  for (let peers = 1; peers <= 5; peers++) {
    const p = sendPolicy(peers);
    assert.ok(p.maxBitrate <= last, `${peers}`);
    last = p.maxBitrate;
  }
  assert.equal(sendPolicy(5).height, 180);
  // Six people: five copies up, within a 3 Mbit/s home uplink.
  assert.ok(totalUpload(5) <= 1_600_000, `${totalUpload(5)}`);
  assert.ok(totalUpload(2) <= 1_300_000);
});

import { STUCK_MS } from '../../../assets/js/ice-policy.js';

test('ICE restart: a connection that never connects is restarted, then watched again', () => {
  const clock = fakeClock();
  let restarts = 0;
  const policy = new IceRestartPolicy({ restart: () => restarts++, responsible: true, ...clock });
  policy.onState('connecting');
  clock.advance(STUCK_MS - 1);
  assert.equal(restarts, 0);
  clock.advance(1);
  assert.equal(restarts, 1);
  clock.advance(STUCK_MS);
  assert.equal(restarts, 2, 'still stuck: tried again');
  policy.onState('connected');
  clock.advance(STUCK_MS * 3);
  assert.equal(restarts, 2, 'connected: the watch ends');
  policy.dispose();
});

test('active speaker: the loudest over the threshold, held briefly so the highlight does not flicker', async () => {
  const { pickSpeaker, loudestBlock } = await import('../../../assets/js/audio-level.js');
  assert.equal(pickSpeaker(new Map([['a', 0.01], ['b', 0.02]]), null), null, 'quiet room: nobody');
  assert.equal(pickSpeaker(new Map([['a', 0.3], ['b', 0.5]]), null), 'b');
  assert.equal(pickSpeaker(new Map([['a', 0.05], ['b', 0.01]]), 'a'), 'a', 'a pause keeps the speaker');
  assert.equal(pickSpeaker(new Map([['a', 0.01], ['b', 0.01]]), 'a'), null, 'silence ends it');
  // A 10 ms burst in a third of a second of silence counts in full.
  const samples = new Float32Array(16384);
  for (let i = 8192; i < 8192 + 512; i++) samples[i] = i % 2 ? 0.5 : -0.5;
  assert.ok(Math.abs(loudestBlock(samples) - 0.5) < 1e-6);
  assert.equal(loudestBlock(new Float32Array(16384)), 0);
});

test('active speaker: remote loudness is the RMS since the last sample, from the energy counters', async () => {
  const { EnergyLevel } = await import('../../../assets/js/audio-level.js');
  const level = new EnergyLevel();
  assert.equal(level.update({ energy: 0, duration: 0 }), 0, 'the first sample has nothing to compare');
  // 0.25 s at RMS 0.1: energy grows by 0.1^2 * 0.25.
  assert.ok(Math.abs(level.update({ energy: 0.0025, duration: 0.25 }) - 0.4) < 1e-9);
  assert.equal(level.update({ energy: 0.0025, duration: 0.5 }), 0, 'silence');
  assert.equal(level.update({ energy: 0.0025, duration: 0.5 }), 0, 'no time passed: no division by zero');
  assert.equal(level.update(null), 0, 'no audio receiver');
  assert.equal(level.update({ energy: 9, duration: 9 }), 0, 'after a gap, start over');
  assert.equal(level.update({ energy: 10, duration: 9.25 }), 1, 'capped at 1');
});
