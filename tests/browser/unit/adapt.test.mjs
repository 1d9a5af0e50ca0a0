// The per-peer send policy (assets/js/adapt.js) as a pure function of stats over time: a link is
// a sequence of samples, one a second, and each test reads like the network it describes.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  AUDIO_RESERVE, FITS, LinkAdapter, MAX_HOLD_MS, UP_HOLD_MS, classifyLink, encodingFor, ownQuality, rungs, wantedFrom,
} from '../../../assets/js/adapt.js';
import { sendPolicy } from '../../../assets/js/bandwidth.js';

/** The room-size ceiling of a 4-person call (3 peers): 450 kbit/s, 480x270, 20 fps. */
const CEILING = sendPolicy(3);

/**
 * A simulated link: `net(t)` says what the network looks like at second t; the sender sends
 * what the adapter allows, capped by what the link carries.
 */
function run(adapter, seconds, net, start = 0) {
  const s = adapter.__sim ?? { t: 0, bytes: 0, recv: 0, lost: 0, samples: 0, concealed: 0 };
  adapter.__sim = s;
  const log = [];
  for (let i = 0; i < seconds; i++) {
    const n = { available: 1_000_000, loss: 0, rtt: 0.05, ramp: false, ...net(start + i) };
    const enc = adapter.encoding();
    // As in Chromium, the estimate follows what is sent: with video paused only the audio
    // flows and the estimate stays near it, however good the link.
    if (!enc.active) n.available = Math.min(n.available, 1.5 * AUDIO_RESERVE);
    // `ramp`: the estimate climbs towards what the link carries by 8% a second (Chromium's
    // multiplicative increase) instead of knowing it at once; it falls at once.
    else if (n.ramp && s.est !== undefined) n.available = Math.min(n.available, s.est * 1.08);
    s.est = n.available;
    const videoRate = enc.active ? Math.min(enc.maxBitrate, Math.max(0, n.available - AUDIO_RESERVE)) : 0;
    const limited = enc.active && n.available - AUDIO_RESERVE < enc.maxBitrate * 0.95;
    s.t += 1000;
    s.bytes += videoRate / 8;
    s.recv += Math.round(100 * (1 - n.loss));
    s.lost += Math.round(100 * n.loss);
    s.samples += 48000;
    adapter.update({
      t: s.t,
      rtt: n.rtt,
      available: n.available,
      limitation: limited ? 'bandwidth' : 'none',
      videoBytesSent: s.bytes,
      outLoss: n.loss,
      outAudioLoss: n.loss,
      inPacketsReceived: s.recv,
      inPacketsLost: s.lost,
      concealed: s.concealed,
      samplesReceived: s.samples,
      inFramesDecoded: s.t / 50,
    });
    log.push({ t: start + i, ...adapter.encoding(), step: adapter.step, quality: adapter.quality.level });
  }
  return log;
}

test('adapt: a good link stays at the room-size ceiling', () => {
  const a = new LinkAdapter({ ceiling: CEILING });
  const log = run(a, 30, () => ({}));
  assert.ok(log.every((e) => e.active && e.maxBitrate === CEILING.maxBitrate && e.scaleResolutionDownBy === 1));
  assert.equal(a.quality.level, 'good');
});

test('adapt: rungs sit below the ceiling, smaller and slower, never above it', () => {
  const all = rungs(CEILING);
  assert.equal(all[0].maxBitrate, CEILING.maxBitrate);
  for (let i = 1; i < all.length; i++) {
    assert.ok(all[i].maxBitrate < all[i - 1].maxBitrate);
    assert.ok(all[i].height <= all[i - 1].height && all[i].frameRate <= all[i - 1].frameRate);
  }
  const e = encodingFor(CEILING, all.length - 1, true);
  assert.ok(e.scaleResolutionDownBy > 1, 'the lowest rung scales the capture down');
  // A camera that gives less than the ceiling asks for: rungs as big as the capture send it as is.
  assert.equal(encodingFor(CEILING, 1, true, 180).scaleResolutionDownBy, 1);
  assert.equal(encodingFor(CEILING, all.length - 1, true, 180).scaleResolutionDownBy, 1.5);
  // A small room's ceiling is higher: more rungs under it.
  assert.ok(rungs(sendPolicy(1)).length > rungs(sendPolicy(5)).length);
});

test('adapt: a link that falls to 300 kbit/s steps video down within a few seconds, not at the first bad sample', () => {
  const a = new LinkAdapter({ ceiling: CEILING });
  run(a, 10, () => ({}));
  const log = run(a, 10, () => ({ available: 300_000 }), 10);
  assert.equal(log[0].maxBitrate, CEILING.maxBitrate, 'one bad sample is not enough');
  const adapted = log.findIndex((e) => e.maxBitrate + AUDIO_RESERVE <= 300_000);
  assert.ok(adapted >= 1 && adapted <= 3, `adapted after ${adapted} s`);
  // Afterwards only a probe now and then asks for more than the link carries (the congestion
  // controller still holds the real rate to its estimate), and each failed probe waits longer.
  const over = log.slice(adapted).filter((e) => e.maxBitrate + AUDIO_RESERVE > 300_000).length;
  assert.ok(log.slice(adapted).every((e) => e.active), 'video stays on');
  assert.ok(over <= 2, `${over} of ${log.length - adapted} samples over the link`);
});

test('adapt: a link that cannot carry video beside the audio pauses video, and says why', () => {
  const a = new LinkAdapter({ ceiling: CEILING });
  run(a, 5, () => ({}));
  const log = run(a, 10, () => ({ available: 110_000 }), 5);
  assert.equal(log.at(-1).active, false, 'video paused');
  assert.equal(a.paused, true);
  assert.deepEqual(classifyLink({ rtt: 0.05, loss: 0, available: 110_000, videoPaused: true }), { level: 'poor', reason: 'bandwidth' });
  assert.equal(a.quality.level, 'poor');
  assert.equal(a.quality.reason, 'bandwidth');
});

test('adapt: after the link heals, video resumes and reaches the ceiling within 20 s', () => {
  const a = new LinkAdapter({ ceiling: CEILING });
  run(a, 5, () => ({}));
  // 20 s too thin for video: the paused link probes now and then, each failure waits longer.
  const dip = run(a, 20, () => ({ available: 110_000 }), 5);
  assert.equal(a.paused, true);
  // A probe the estimate does not carry ends after DOWN_AFTER samples (loss or a queue, which a
  // real overfull link shows, end it at once): at most two probes of two or three seconds.
  const probes = dip.filter((e) => e.active).length;
  assert.ok(probes <= 7, `${probes} s of probing in a 20 s dip`);
  assert.equal(a.hold, MAX_HOLD_MS, 'failed probes waited longer each time');
  const log = run(a, 25, () => ({}), 25);
  const resumed = log.findIndex((e) => e.active);
  const full = log.findIndex((e) => e.active && e.maxBitrate === CEILING.maxBitrate);
  assert.ok(resumed >= 0 && resumed <= 11, `resumed after ${resumed} s`);
  assert.ok(full >= 0 && full <= 20, `full again after ${full} s`);
  assert.equal(a.quality.level, 'good');
});

test('adapt: after a pause, an estimate that ramps up slowly does not fail the probes: full again within 20 s of the heal', () => {
  const a = new LinkAdapter({ ceiling: CEILING });
  run(a, 5, () => ({ ramp: true }));
  const dip = run(a, 20, () => ({ available: 110_000, ramp: true }), 5);
  assert.ok(dip.filter((e) => !e.active).length >= 10, 'paused for half the dip at least');
  const log = run(a, 30, () => ({ ramp: true }), 25);
  // The capture is 180p in the shaped benchmark: its base height is the 180k rung's.
  const base = rungs(CEILING).findIndex((r) => r.height <= 180);
  const back = log.findIndex((e) => e.active && e.step <= base);
  assert.ok(back >= 0 && back <= 20, `the 180p rung again after ${back} s: ${log.map((e) => (e.active ? e.step : 'p')).join(' ')}`);
  const full = log.findIndex((e) => e.active && e.step === 0);
  assert.ok(full >= 0 && full <= 30, `the ceiling again after ${full} s`);
});

test('adapt: a paused link is not kept paused by its own low estimate (only audio flows then)', () => {
  const a = new LinkAdapter({ ceiling: CEILING });
  run(a, 3, () => ({}));
  const dip = run(a, 6, () => ({ available: 100_000 }), 3);
  assert.ok(dip.some((e) => !e.active), 'paused in the dip');
  // Healed, but the estimate of an audio-only link stays low until video flows again.
  const log = run(a, 12, () => ({}), 9);
  assert.ok(log.some((e) => e.active), 'video tried again on a clean link');
});

test('adapt: random loss under the threshold is not congestion: 5% loss keeps the rung and reads as fair', () => {
  const a = new LinkAdapter({ ceiling: CEILING });
  const log = run(a, 30, () => ({ loss: 0.05 }));
  assert.ok(log.every((e) => e.active && e.maxBitrate === CEILING.maxBitrate));
  assert.deepEqual(a.quality, { level: 'fair', reason: 'loss' });
});

test('adapt: heavy loss steps video down so audio keeps its share', () => {
  const a = new LinkAdapter({ ceiling: CEILING });
  run(a, 5, () => ({}));
  const log = run(a, 6, () => ({ loss: 0.2 }), 5);
  assert.ok(log.at(-1).maxBitrate < CEILING.maxBitrate || !log.at(-1).active);
  assert.deepEqual(a.quality, { level: 'poor', reason: 'loss' });
});

test('adapt: a probe up that meets congestion goes back at once, and the next probe waits twice as long', () => {
  const a = new LinkAdapter({ ceiling: CEILING });
  // The link carries 250 kbit/s: the 180k rung fits, the 300k rung does not.
  const limit = () => ({ available: 250_000 });
  run(a, 20, limit);
  assert.ok(rungs(CEILING)[a.step].maxBitrate * FITS + AUDIO_RESERVE <= 250_000, 'settled on a rung that fits');
  const holdBefore = a.hold;
  // The estimate never covers the next rung: only the slow path probes, after the hold.
  const log = run(a, 40, limit, 20);
  const ups = log.filter((e, i) => i > 0 && e.step < log[i - 1].step).length;
  // One probe at most every MAX_HOLD_MS plus the two samples that find it out.
  assert.ok(ups <= Math.ceil(40_000 / (MAX_HOLD_MS + 2000)), `${ups} probes in 40 s`);
  assert.ok(a.hold >= holdBefore, 'failed probes lengthen the hold');
  assert.ok(a.hold <= MAX_HOLD_MS);
});

test('adapt: rising delay (a queue on the link) steps down, before any loss', () => {
  const a = new LinkAdapter({ ceiling: CEILING });
  run(a, 5, () => ({}));
  const log = run(a, 4, () => ({ rtt: 0.9 }), 5);
  assert.ok(log.at(-1).maxBitrate < CEILING.maxBitrate);
  run(a, 4, () => ({ rtt: 0.9 }), 9);
  assert.deepEqual(a.quality, { level: 'poor', reason: 'delay' });
});

test('adapt: what the peer asked for caps the sender: none stops video, low sends the smallest rung', () => {
  const a = new LinkAdapter({ ceiling: CEILING });
  run(a, 3, () => ({}));
  a.setWanted('none');
  assert.equal(a.encoding().active, false);
  assert.equal(a.paused, false, 'not a pause for the link: the peer chose it');
  a.setWanted('low');
  const low = a.encoding();
  assert.ok(low.active && low.maxBitrate === rungs(CEILING).at(-1).maxBitrate);
  a.setWanted('full');
  assert.equal(a.encoding().maxBitrate, CEILING.maxBitrate);
});

test('adapt: one poor link lowers only its own sender', () => {
  const good = new LinkAdapter({ ceiling: CEILING });
  const poor = new LinkAdapter({ ceiling: CEILING });
  run(good, 30, () => ({}));
  run(poor, 30, (t) => (t < 5 ? {} : { available: 200_000, loss: 0.05 }));
  assert.equal(good.encoding().maxBitrate, CEILING.maxBitrate);
  assert.ok(poor.encoding().maxBitrate + AUDIO_RESERVE <= 200_000);
});

test('adapt: the quality level changes only after two samples at the new level', () => {
  const a = new LinkAdapter({ ceiling: CEILING });
  run(a, 3, () => ({}));
  run(a, 1, () => ({ rtt: 0.5 }), 3);
  assert.equal(a.quality.level, 'good', 'one slow sample is not a new level');
  run(a, 1, () => ({ rtt: 0.5 }), 4);
  assert.deepEqual(a.quality, { level: 'poor', reason: 'delay' });
});

test('adapt: levels and reasons in plain terms', () => {
  assert.deepEqual(classifyLink({ rtt: 0.03, loss: 0, available: 2e6, videoPaused: false }), { level: 'good', reason: null });
  assert.deepEqual(classifyLink({ rtt: 0.25, loss: 0, available: 2e6, videoPaused: false }), { level: 'fair', reason: 'delay' });
  assert.deepEqual(classifyLink({ rtt: 0.03, loss: 0.1, available: 2e6, videoPaused: false }), { level: 'poor', reason: 'loss' });
  assert.deepEqual(classifyLink({ rtt: null, loss: 0, available: null, videoPaused: false }), { level: 'good', reason: null });
});

test('adapt: my own link is judged by my best link', () => {
  assert.equal(ownQuality([]), null);
  assert.deepEqual(ownQuality([{ level: 'poor', reason: 'loss' }, { level: 'good', reason: null }]), { level: 'good', reason: null });
  assert.deepEqual(ownQuality([{ level: 'poor', reason: 'loss' }, { level: 'poor', reason: 'bandwidth' }]), { level: 'poor', reason: 'loss' });
});

test('adapt: what I ask each peer for: audio only, hidden, not on screen, and the speaker first on a poor link', () => {
  const base = { audioOnly: false, pageHidden: false, tileShown: true, ownPoor: false, speaker: null, peer: '3' };
  assert.equal(wantedFrom(base), 'full');
  assert.equal(wantedFrom({ ...base, audioOnly: true }), 'none');
  assert.equal(wantedFrom({ ...base, pageHidden: true }), 'low');
  assert.equal(wantedFrom({ ...base, tileShown: false }), 'low');
  assert.equal(wantedFrom({ ...base, ownPoor: true, speaker: '3' }), 'full', 'the speaker stays full');
  assert.equal(wantedFrom({ ...base, ownPoor: true, speaker: '4' }), 'low', 'the others yield');
  assert.equal(wantedFrom({ ...base, ownPoor: true, speaker: null }), 'full', 'nobody speaking: no choice to make');
  assert.ok(UP_HOLD_MS < MAX_HOLD_MS);
});
