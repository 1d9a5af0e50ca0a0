// Perfect negotiation in peers.js, without a browser: two PeerLinks on the fake RTCPeerConnection
// of fake-rtc.mjs, joined by a wire the test can hold, reorder and release. Each test drives one
// path of https://w3c.github.io/webrtc-pc/#perfect-negotiation-example and checks what the two
// connections end up in, and that no error reached the console.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { FakeMediaStream, FakeRTCPeerConnection, FakeTrack, tick } from './fake-rtc.mjs';

globalThis.RTCPeerConnection = FakeRTCPeerConnection;
globalThis.MediaStream = FakeMediaStream;

const { Mesh, PeerLink, isPolite } = await import('../../../assets/js/peers.js');

/** Local media with a camera and a microphone on, as LocalMedia shows it to a link. */
function fakeMedia() {
  const tracks = { audio: new FakeTrack('audio'), video: new FakeTrack('video') };
  return { outgoing: (kind) => tracks[kind] };
}

/** Everything peers.js warns about, so a test can say that no error surfaced. */
function watchWarnings(t) {
  const warnings = [];
  t.mock.method(console, 'warn', (...args) => warnings.push(args.map(String).join(' ')));
  return warnings;
}

/**
 * Two links, `a` to `b` and back, with the signaling server between them as a queue per
 * direction. Nothing is delivered until the test says so: `deliver()` hands every held message
 * over (each in its own task, as WebSocket messages arrive), `settle()` does that until quiet.
 */
function pair({ a: aId, b: bId, aOffers, bOffers }) {
  const toA = [];
  const toB = [];
  // JSON on the way, as through the server: descriptions and candidates arrive as plain objects.
  const wire = (queue) => (data) => queue.push(JSON.parse(JSON.stringify(data)));
  const a = new PeerLink({ id: bId, selfId: aId, iceServers: [], send: wire(toB), media: fakeMedia(), initiator: aOffers });
  const b = new PeerLink({ id: aId, selfId: bId, iceServers: [], send: wire(toA), media: fakeMedia(), initiator: bOffers });
  const sent = { a: [], b: [] };
  async function deliver(queue, link, log) {
    for (const data of queue.splice(0)) {
      log.push(data);
      link.handle(data);
      await tick();
    }
  }
  return {
    a, b, toA, toB, sent,
    /** Lets the links run until they have something to send (or nothing more happens). */
    async run(turns = 10) {
      for (let i = 0; i < turns; i++) await tick();
    },
    async deliverToA() { await deliver(toA, a, sent.b); },
    async deliverToB() { await deliver(toB, b, sent.a); },
    async settle() {
      for (let round = 0; round < 40; round++) {
        await this.run(5);
        if (toA.length === 0 && toB.length === 0) {
          await this.run(10);
          if (toA.length === 0 && toB.length === 0) return;
        }
        await Promise.all([this.deliverToA(), this.deliverToB()]);
      }
      throw new Error('the links never went quiet');
    },
    close() { a.close(); b.close(); },
  };
}

const descriptions = (log, type) => log.filter((d) => d.description?.type === type);

/** The state both sides of a healthy call settle in. */
function assertConnected(link, what) {
  const pc = link.pc;
  assert.equal(pc.signalingState, 'stable', `${what}: signaling`);
  assert.equal(pc.connectionState, 'connected', `${what}: connection`);
  assert.ok(pc.remoteDescription, `${what}: has the remote description`);
  assert.deepEqual(link.pendingCandidates, [], `${what}: no candidate left waiting`);
  for (const transceiver of pc.getTransceivers()) {
    assert.notEqual(transceiver.mid, null, `${what}: every transceiver negotiated`);
    assert.equal(transceiver.direction, 'sendrecv', `${what}: sends and receives`);
  }
  const kinds = link.remoteStream.getTracks().map((track) => track.kind).sort();
  assert.deepEqual([...new Set(kinds)], ['audio', 'video'], `${what}: receives both kinds`);
}

test('politeness: exactly one side of every pair is polite, with ids compared as the strings they are', () => {
  const pairs = [['3', '7'], ['9', '10'], ['99', '100'], ['2147483647', '2147483648'],
    ['18446744073709551614', '18446744073709551615'], ['1000', '999']];
  for (const [x, y] of pairs) {
    assert.notEqual(isPolite(x, y), isPolite(y, x), `${x} / ${y}: the two sides agree`);
  }
  // As strings, not numbers: "10" sorts before "9", so 10 is the polite one.
  assert.equal(isPolite('10', '9'), true);
  assert.equal(isPolite('9', '10'), false);
  // Past 2^53 numbers would compare equal and make both sides impolite; strings do not.
  assert.equal(isPolite('18446744073709551614', '18446744073709551615'), true);
});

test('negotiation: the newcomer offers, the other side answers with its tracks, no crossing', async (t) => {
  const warnings = watchWarnings(t);
  const link = pair({ a: '3', b: '4', aOffers: false, bOffers: true });
  t.after(() => link.close());
  await link.settle();
  assertConnected(link.a, 'answerer');
  assertConnected(link.b, 'newcomer');
  assert.equal(descriptions(link.sent.b, 'offer').length, 1, 'one offer, from the newcomer');
  assert.equal(descriptions(link.sent.a, 'offer').length, 0, 'none from the other side');
  assert.equal(link.a.pc.getTransceivers().length, 2, 'one audio and one video transceiver');
  assert.deepEqual(link.a.pc.getSenders().map((s) => s.track?.kind).sort(), ['audio', 'video'], 'the answer carries its tracks');
  assert.deepEqual(warnings, []);
});

test('glare: both offer at once; the polite side rolls back and answers, the impolite side ignores the offer', async (t) => {
  const warnings = watchWarnings(t);
  // '10' < '9' as strings: a (10) is polite.
  const link = pair({ a: '10', b: '9', aOffers: true, bOffers: true });
  t.after(() => link.close());
  assert.equal(link.a.polite, true);
  assert.equal(link.b.polite, false);
  await link.run();
  assert.equal(link.a.pc.signalingState, 'have-local-offer', 'a offered');
  assert.equal(link.b.pc.signalingState, 'have-local-offer', 'b offered');
  assert.equal(descriptions(link.toA, 'offer').length, 1);
  assert.equal(descriptions(link.toB, 'offer').length, 1);

  // The offers cross in the server.
  await Promise.all([link.deliverToA(), link.deliverToB()]);
  await link.run();
  assert.equal(link.b.ignoreOffer, true, 'impolite: the polite offer was ignored');
  assert.equal(link.b.pc.signalingState, 'have-local-offer', 'impolite: still waiting for its answer');
  assert.equal(link.b.pc.pendingRemoteDescription, null, 'impolite: the polite offer was never applied');
  assert.deepEqual(link.a.pc.signalingHistory.slice(0, 4), ['stable', 'have-local-offer', 'stable', 'have-remote-offer'],
    'polite: its offer rolled back, then the other one applied');
  assert.equal(descriptions(link.toB, 'answer').length, 1, 'polite: answered');

  await link.settle();
  assertConnected(link.a, 'polite');
  assertConnected(link.b, 'impolite');
  assert.equal(descriptions(link.sent.b, 'answer').length, 1, 'impolite: answered only the renegotiation that followed');
  assert.deepEqual(warnings, [], 'no error surfaced on either side');
});

test('ignored offer: the impolite side keeps its own offer, answers nothing, and keeps the candidates that came with it', async (t) => {
  const warnings = watchWarnings(t);
  const link = pair({ a: '5', b: '6', aOffers: true, bOffers: true });
  t.after(() => link.close());
  await link.run();
  // b is impolite ('5' < '6'): hand it a's offer and the candidate gathered for it, nothing else.
  const ownOffer = link.b.pc.localDescription;
  assert.equal(link.toB.length, 2, 'the polite offer and its candidate');
  await link.deliverToB();
  await link.run();
  assert.equal(link.b.pc.signalingState, 'have-local-offer');
  assert.equal(link.b.pc.localDescription, ownOffer, 'its own offer stands');
  assert.equal(link.b.pc.remoteDescription, null);
  assert.equal(descriptions(link.toA, 'answer').length, 0, 'no answer to an ignored offer');
  assert.equal(link.b.pendingCandidates.length, 1, 'the candidate is kept, not thrown away or added');
  assert.deepEqual(warnings, [], 'and no error');

  // The answer that follows reuses the ICE credentials of that offer: the candidate is good for it.
  await link.settle();
  assertConnected(link.b, 'impolite');
  assert.equal(link.b.pc.remoteCandidates.length, 1, 'the kept candidate was added after the answer');
  assert.deepEqual(warnings, []);
});

test('candidates before the remote description: queued, then added once the offer is applied', async (t) => {
  const warnings = watchWarnings(t);
  const link = pair({ a: '1', b: '2', aOffers: false, bOffers: true });
  t.after(() => link.close());
  await link.run();
  const [offer, candidate] = link.toA.splice(0);
  assert.equal(offer.description.type, 'offer');
  assert.ok(candidate.candidate, 'the newcomer trickled a candidate');
  // The candidate overtakes the offer.
  link.a.handle(candidate);
  await link.run();
  assert.equal(link.a.pc.remoteDescription, null);
  assert.deepEqual(link.a.pendingCandidates, [candidate.candidate], 'queued while there is no remote description');
  link.a.handle(offer);
  await link.settle();
  assertConnected(link.a, 'answerer');
  assert.deepEqual(link.a.pc.remoteCandidates, [candidate.candidate], 'added after the offer');
  assert.deepEqual(warnings, []);
});

test('candidates in order but while the offer is still being applied: none is lost', async (t) => {
  const warnings = watchWarnings(t);
  const link = pair({ a: '1', b: '2', aOffers: false, bOffers: true });
  t.after(() => link.close());
  await link.run();
  // Both at once, as two WebSocket messages back to back: setRemoteDescription is still running
  // when the candidate comes in.
  for (const data of link.toA.splice(0)) link.a.handle(data);
  await link.settle();
  assertConnected(link.a, 'answerer');
  assertConnected(link.b, 'newcomer');
  assert.equal(link.a.pc.remoteCandidates.length, 1);
  assert.deepEqual(warnings, []);
});

test('ICE restart: on failed only the impolite side restarts, with new credentials on both sides', async (t) => {
  const warnings = watchWarnings(t);
  const link = pair({ a: '1', b: '2', aOffers: false, bOffers: true });
  t.after(() => link.close());
  await link.settle();
  assertConnected(link.a, 'polite');
  assertConnected(link.b, 'impolite');
  const before = { a: link.a.pc.ufrag, b: link.b.pc.ufrag };
  const offersBefore = { a: descriptions(link.sent.a, 'offer').length, b: descriptions(link.sent.b, 'offer').length };

  link.a.pc.setConnectionState('failed');
  link.b.pc.setConnectionState('failed');
  await link.settle();
  assert.equal(descriptions(link.sent.b, 'offer').length, offersBefore.b + 1, 'the impolite side sent one restart offer');
  assert.equal(descriptions(link.sent.a, 'offer').length, offersBefore.a, 'the polite side did not');
  assert.notEqual(link.b.pc.ufrag, before.b, 'new ICE credentials on the offering side');
  assert.notEqual(link.a.pc.ufrag, before.a, 'and on the answering side');
  assertConnected(link.a, 'polite, after the restart');
  assertConnected(link.b, 'impolite, after the restart');
  assert.deepEqual(warnings, []);
});

test('mesh: one link per remote id; reset replaces it, drop closes it', () => {
  const made = [];
  const mesh = new Mesh((id, initiator) => {
    const link = { id, initiator, closed: false, close() { this.closed = true; } };
    made.push(link);
    return /** @type {any} */ (link);
  });
  const first = mesh.ensure('7', true);
  assert.equal(mesh.ensure('7', false), first, 'never two links to one id');
  const fresh = mesh.reset('7', false);
  assert.notEqual(fresh, first);
  assert.equal(first.closed, true, 'the old one is closed');
  mesh.ensure('8', false);
  mesh.drop('7');
  assert.deepEqual(mesh.ids(), ['8']);
  mesh.closeAll();
  assert.deepEqual(mesh.ids(), []);
  assert.ok(made.every((l) => l.closed));
});

const { linkSample } = await import('../../../assets/js/peers.js');

test('peers: a peer payload (video-wanted) is an event for the app, not a description, and breaks nothing', async (t) => {
  const warnings = watchWarnings(t);
  const link = new PeerLink({ id: '2', selfId: '1', iceServers: [], send: () => {}, media: fakeMedia(), initiator: true });
  const got = [];
  link.addEventListener('peer-msg', (e) => got.push(e.detail));
  await link.handle({ kind: 'video-wanted', wanted: 'none' });
  await link.handle({ kind: 'video-paused', paused: true });
  await link.handle({ kind: 'something-newer' });
  assert.deepEqual(got, [{ kind: 'video-wanted', wanted: 'none' }, { kind: 'video-paused', paused: true }]);
  assert.equal(link.pc.signalingState, 'stable');
  assert.deepEqual(warnings, []);
  link.close();
});

test('peers: a stats report flattens into one adapt.js sample, from the selected pair', () => {
  const report = new Map([
    ['T', { type: 'transport', selectedCandidatePairId: 'P2' }],
    ['P1', { type: 'candidate-pair', id: 'P1', nominated: true, state: 'succeeded', currentRoundTripTime: 9, availableOutgoingBitrate: 1 }],
    ['P2', { type: 'candidate-pair', id: 'P2', nominated: true, state: 'succeeded', currentRoundTripTime: 0.05, availableOutgoingBitrate: 400_000 }],
    ['OV', { type: 'outbound-rtp', kind: 'video', bytesSent: 1000, qualityLimitationReason: 'bandwidth' }],
    ['OA', { type: 'outbound-rtp', kind: 'audio', bytesSent: 500 }],
    ['RV', { type: 'remote-inbound-rtp', kind: 'video', fractionLost: 0.04 }],
    ['RA', { type: 'remote-inbound-rtp', kind: 'audio', fractionLost: 0.06 }],
    ['IA', { type: 'inbound-rtp', kind: 'audio', packetsReceived: 90, packetsLost: 10, concealedSamples: 480, totalSamplesReceived: 48000 }],
    ['IV', { type: 'inbound-rtp', kind: 'video', packetsReceived: 200, packetsLost: -1, framesDecoded: 30 }],
  ]);
  const s = linkSample(/** @type {any} */ (report));
  assert.equal(s.rtt, 0.05);
  assert.equal(s.available, 400_000);
  assert.equal(s.limitation, 'bandwidth');
  assert.equal(s.videoBytesSent, 1000);
  assert.equal(s.outLoss, 0.04);
  assert.equal(s.outAudioLoss, 0.06);
  assert.equal(s.inPacketsReceived, 290);
  assert.equal(s.inPacketsLost, 10, 'a negative packetsLost (duplicates) counts as none');
  assert.equal(s.concealed, 480);
  assert.equal(s.samplesReceived, 48000);
  assert.equal(s.inFramesDecoded, 30);
});
