// The signaling socket without a browser: a fake WebSocket and a fake clock drive protocol.js.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Signaling } from '../../../assets/js/protocol.js';

class FakeSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    FakeSocket.all.push(this);
  }
  send(text) { this.sent.push(JSON.parse(text)); }
  close(code = 1000) { this.readyState = 3; this.onclose?.({ code, reason: '' }); }
  // Test side:
  open() { this.readyState = 1; this.onopen?.(); }
  receive(msg) { this.onmessage?.({ data: JSON.stringify(msg) }); }
  drop(code) { this.readyState = 3; this.onclose?.({ code, reason: '' }); }
}

function setup() {
  FakeSocket.all = [];
  const timers = [];
  const events = [];
  const signaling = new Signaling({
    url: 'ws://example.test/ws/room',
    join: () => ({ name: 'Ada', client: 'tab-123456', audio: false, video: true }),
    WebSocketImpl: FakeSocket,
    random: () => 0.5,
    setTimer: (fn, ms) => { timers.push({ fn, ms }); return timers.length; },
    clearTimer: () => {},
  });
  for (const type of ['joined', 'message', 'state', 'error']) {
    signaling.addEventListener(type, (e) => events.push({ ...e.detail, kind: type }));
  }
  return { signaling, timers, events, last: () => FakeSocket.all.at(-1) };
}

const joined = (extra = {}) => ({ type: 'joined', you: '7', token: 'a'.repeat(32), host: true, room: 'room', peers: [], ice_servers: [], locked: false, password: false, resumed: false, chat: [], ...extra });

test('signaling: join is the first message, and nothing else goes out before joined', () => {
  const { signaling, last } = setup();
  signaling.start();
  assert.equal(signaling.update({ audio: true }), false, 'not sent before the socket is open');
  last().open();
  assert.deepEqual(last().sent, [{ type: 'join', name: 'Ada', client: 'tab-123456', audio: false, video: true, resume: false }]);
  assert.equal(signaling.signal('3', { candidate: null }), false, 'not sent before joined');
  last().receive(joined());
  assert.equal(signaling.signal('3', { description: { type: 'offer', sdp: 'v=0' } }), true);
  assert.deepEqual(last().sent.at(-1), { type: 'signal', to: '3', data: { description: { type: 'offer', sdp: 'v=0' } } });
});

test('signaling: a lost socket reconnects with backoff and resumes the seat with its token', () => {
  const { signaling, timers, events, last } = setup();
  signaling.start();
  last().open();
  last().receive(joined());
  last().drop(1006);
  assert.equal(timers.length, 1);
  assert.equal(timers[0].ms, 500, 'first retry after about 0.5 s');
  assert.ok(events.some((e) => e.kind === 'state' && e.state === 'reconnecting'));
  timers[0].fn();
  last().drop(1001);
  assert.equal(timers[1].ms, 1000, 'then longer');
  timers[1].fn();
  last().open();
  assert.deepEqual(last().sent[0], {
    type: 'join', name: 'Ada', client: 'tab-123456', audio: false, video: true, token: 'a'.repeat(32), resume: true,
  });
  last().receive(joined({ resumed: true }));
  const again = events.filter((e) => e.kind === 'joined').at(-1);
  assert.equal(again.reconnected, true);
  assert.equal(again.resumed, true);
  // A fresh backoff after a successful join.
  last().drop(1006);
  assert.equal(timers.at(-1).ms, 500);
});

test('signaling: replaced, full, removed and a normal close are final', () => {
  for (const code of [1000, 4000, 4001, 4004, 4005]) {
    const { signaling, timers, events, last } = setup();
    signaling.start();
    last().open();
    last().receive(joined());
    last().drop(code);
    assert.equal(timers.length, 0, `${code}: no retry`);
    assert.deepEqual(events.at(-1), { kind: 'state', state: 'ended', code, reason: '' });
  }
});

test('signaling: server errors and other messages reach their listeners; leave says goodbye', () => {
  const { signaling, events, last } = setup();
  signaling.start();
  last().open();
  last().receive({ type: 'error', code: 'room_full', message: 'full' });
  assert.deepEqual(events.at(-1), { kind: 'error', type: 'error', code: 'room_full', message: 'full' });
  last().receive(joined());
  last().receive({ type: 'peer-joined', peer: { id: '9', name: 'Cy' } });
  assert.equal(events.at(-1).kind, 'message');
  assert.equal(events.at(-1).peer.id, '9');
  last().receive('not an object');
  const socket = last();
  signaling.leave();
  assert.deepEqual(socket.sent.at(-1), { type: 'leave' });
  assert.equal(socket.readyState, 3);
});

test('signaling: chat and the host controls go out as their wire messages, only once joined', () => {
  const { signaling, last } = setup();
  signaling.start();
  last().open();
  assert.equal(signaling.lock(true), false, 'nothing before joined');
  last().receive(joined());
  assert.equal(signaling.chat('hi'), true);
  signaling.lock(true);
  signaling.setPassword('open sesame');
  signaling.setPassword('');
  signaling.remove('9');
  assert.deepEqual(last().sent.slice(1), [
    { type: 'chat', text: 'hi' },
    { type: 'lock', locked: true },
    { type: 'set-password', password: 'open sesame' },
    { type: 'set-password', password: '' },
    { type: 'remove', id: '9' },
  ]);
});
