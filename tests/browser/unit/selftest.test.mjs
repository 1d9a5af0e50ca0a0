// The connection check's verdicts: what each gathering outcome tells the user.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classify } from '../../../assets/js/selftest-verdicts.js';

const SERVERS = [
  { urls: 'stun:meet.example.org:3478' },
  { urls: ['turn:meet.example.org:3478?transport=udp', 'turn:meet.example.org:3478?transport=tcp'], username: 'u', credential: 'p' },
];

test('everything gathered: all ok, with the public address', () => {
  const v = classify(SERVERS, {
    candidates: [
      { type: 'host', address: '192.168.1.5' },
      { type: 'srflx', address: '203.0.113.7' },
      { type: 'relay', address: '198.51.100.1', relayProtocol: 'udp' },
      { type: 'relay', address: '198.51.100.1', relayProtocol: 'tcp' },
    ],
    errors: [],
  });
  assert.equal(v.stun[0], 'ok');
  assert.match(v.stun[1], /203\.0\.113\.7/);
  assert.equal(v['relay-udp'][0], 'ok');
  assert.equal(v['relay-tcp'][0], 'ok');
});

test('UDP blocked: STUN and the UDP relay say which port to open, TCP still works', () => {
  const v = classify(SERVERS, {
    candidates: [{ type: 'host' }, { type: 'relay', relayProtocol: 'tcp', address: '198.51.100.1' }],
    errors: [{ url: 'stun:meet.example.org:3478', code: 701 }],
  });
  assert.deepEqual(v.stun[0], 'fail');
  assert.match(v.stun[1], /UDP 3478/);
  assert.equal(v['relay-udp'][0], 'fail');
  assert.match(v['relay-udp'][1], /UDP port 3478/);
  assert.equal(v['relay-tcp'][0], 'ok');
});

test('a server without a relay says how the operator can add one', () => {
  const v = classify([], { candidates: [{ type: 'host' }], errors: [] });
  assert.equal(v.stun[0], 'warn');
  assert.equal(v['relay-udp'][0], 'fail');
  assert.match(v['relay-udp'][1], /--stun-listen/);
});

test('no srflx and no error: reached directly, not a failure', () => {
  const v = classify(SERVERS, { candidates: [{ type: 'host' }], errors: [] });
  assert.equal(v.stun[0], 'ok');
  assert.match(v.stun[1], /no address translation/);
});
