// The safety code: what both sides of a link compute from its two fingerprints, the room's code
// from everyone's, and what this browser remembers of whom it verified.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { VerifiedPeers, fingerprintOf, pairCode, roomCode } from '../../../assets/js/safety-code.js';
import { hasDataSection } from '../../../assets/js/peers.js';

const A = 'sha-256 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89';
const B = 'sha-256 10:32:54:76:98:BA:DC:FE:10:32:54:76:98:BA:DC:FE:10:32:54:76:98:BA:DC:FE:10:32:54:76:98:BA:DC:FE';
const C = 'sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF';

/** The derivation written out again with node's own hash, as a second opinion. */
function expected(label, fingerprints) {
  const digest = createHash('sha256').update([label, ...[...fingerprints].sort()].join('\n')).digest();
  const n = BigInt(`0x${digest.subarray(0, 10).toString('hex')}`) % 10n ** 20n;
  return n.toString().padStart(20, '0').replace(/(\d{5})(?=\d)/g, '$1 ');
}

test('safety code: the fingerprint is read from the SDP, algorithm lower-case, hex upper-case', () => {
  const sdp = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\na=group:BUNDLE 0 1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=fingerprint:SHA-256 ab:cd:ef\r\na=setup:actpass\r\n';
  assert.equal(fingerprintOf(sdp), 'sha-256 AB:CD:EF');
  assert.equal(fingerprintOf('v=0\r\n'), null);
  assert.equal(fingerprintOf(undefined), null);
});

test('safety code: both sides of a link get the same code, in four groups of five digits', async () => {
  const ada = await pairCode(A, B);
  const bo = await pairCode(B, A);
  assert.equal(ada, bo);
  assert.match(ada, /^\d{5} \d{5} \d{5} \d{5}$/);
  assert.equal(ada, expected('videomeet pair v1', [A, B]));
});

test('safety code: a swapped key gives another code on the side that received it', async () => {
  // Ada received the server's key instead of Bo's; Bo received the server's instead of Ada's.
  const ada = await pairCode(A, C);
  const bo = await pairCode(B, C);
  assert.notEqual(ada, bo);
  assert.notEqual(ada, await pairCode(A, B));
});

test('safety code: the room code is everyone\'s keys in any order, and never a pair\'s code', async () => {
  const one = await roomCode([A, B, C]);
  assert.equal(one, await roomCode([C, A, B]));
  assert.equal(one, await roomCode([C, A, B, A]), 'the same key twice counts once');
  assert.equal(one, expected('videomeet room v1', [A, B, C]));
  assert.notEqual(await roomCode([A, B]), await pairCode(A, B));
});

test('safety code: verified people are remembered per room by name and key; a new key is a change', () => {
  const map = new Map();
  const store = { getItem: (k) => map.get(k) ?? null, setItem: (k, v) => map.set(k, v) };
  const here = new VerifiedPeers(store, 'team');
  assert.equal(here.trust('Bo', B), 'unverified');
  here.mark('Bo', B);
  assert.equal(here.trust('Bo', B), 'verified');
  assert.equal(here.trust('Bo', C), 'changed');
  assert.equal(new VerifiedPeers(store, 'other').trust('Bo', B), 'unverified', 'another room knows nothing of it');
  assert.equal(new VerifiedPeers(store, 'team').trust('Bo', B), 'verified', 'kept for a later call');
  here.forget('Bo');
  assert.equal(here.trust('Bo', C), 'unverified');
  // Damaged or missing storage: nobody is verified, nothing throws.
  map.set('videomeet.verified.team', '{not json');
  assert.equal(here.trust('Bo', B), 'unverified');
  const none = new VerifiedPeers(undefined, 'team');
  none.mark('Bo', B);
  assert.equal(none.trust('Bo', B), 'unverified');
});

test('peers: an offer has a data section only when its side made the negotiated channel', () => {
  assert.equal(hasDataSection({ type: 'offer', sdp: 'v=0\r\nm=audio 9 UDP 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n' }), true);
  assert.equal(hasDataSection({ type: 'offer', sdp: 'v=0\r\nm=audio 9 UDP 0\r\n' }), false);
  assert.equal(hasDataSection(null), false);
});
