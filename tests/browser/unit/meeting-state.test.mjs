// The meeting's rules without a page: meeting-state.js takes server messages and says, in
// notices, what the page must do. Each test names one rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { MeetingState, connectionOutcome, errorOutcome } from '../../../assets/js/meeting-state.js';
import { CloseCode, ErrorCode } from '../../../assets/js/protocol.js';

const peer = (id, extra = {}) => ({ id, name: `P${id}`, audio: true, video: true, screen: false, host: false, away: false, hand: false, ...extra });
const joined = (extra = {}) => ({
  type: 'joined', you: '7', token: 't'.repeat(32), host: false, peers: [], ice_servers: [], locked: false,
  password: false, chat: [], resumed: false, reconnected: false, ...extra,
});
const notLocal = { screen: false };
/** The notices of one type, or their types in order. */
const ofType = (notices, type) => notices.filter((n) => n.type === type);
const types = (notices) => notices.map((n) => n.type);
const announced = (notices) => ofType(notices, 'announce').map((n) => n.key);

/** A state that has joined seat 7 with `peers` in the room. */
function inRoom(peers = [peer('3'), peer('4')], extra = {}) {
  const state = new MeetingState();
  state.name = 'Ada';
  state.applyJoined(joined({ peers, ...extra }), notLocal);
  return state;
}

test('joined: the newcomer makes a fresh offering link to everyone already there', () => {
  const state = new MeetingState();
  const out = state.applyJoined(joined({ peers: [peer('3'), peer('4')], ice_servers: [{ urls: 'stun:x' }] }), notLocal);
  assert.equal(state.joined, true);
  assert.equal(state.selfId, '7');
  assert.deepEqual(state.iceServers, [{ urls: 'stun:x' }]);
  assert.deepEqual(ofType(out, 'connect'), [
    { type: 'connect', id: '3', initiator: true, fresh: true },
    { type: 'connect', id: '4', initiator: true, fresh: true },
  ]);
  assert.deepEqual([...state.peers.keys()], ['3', '4']);
  assert.equal(state.alone, false);
});

test('joined: a new seat (not resumed) forgets every seat of before, and links start afresh', () => {
  const state = inRoom([peer('3'), peer('4')]);
  const out = state.applyJoined(joined({ you: '9', peers: [peer('4')], resumed: false }), notLocal);
  assert.deepEqual(ofType(out, 'peer-gone').map((n) => n.id), ['3', '4'], 'all old seats go, even one still listed');
  assert.deepEqual(ofType(out, 'connect'), [{ type: 'connect', id: '4', initiator: true, fresh: true }]);
  assert.deepEqual([...state.peers.keys()], ['4']);
});

test('joined: a resumed seat keeps its links and drops only the seats that left meanwhile', () => {
  const state = inRoom([peer('3'), peer('4')]);
  const out = state.applyJoined(joined({ peers: [peer('4'), peer('5')], resumed: true, reconnected: true }), notLocal);
  assert.deepEqual(ofType(out, 'peer-gone').map((n) => n.id), ['3']);
  assert.deepEqual(ofType(out, 'connect'), [
    { type: 'connect', id: '4', initiator: true, fresh: false },
    { type: 'connect', id: '5', initiator: true, fresh: true },
  ]);
  assert.deepEqual(ofType(out, 'toast'), [{ type: 'toast', key: 'reconnected' }]);
});

test('joined: chat history replaces the log for a new seat, and is not shown twice on a resume', () => {
  const history = [{ from: '3', name: 'P3', text: 'hi', ts: 1 }, { from: '7', name: 'Ada', text: 'mine', ts: 2 }];
  const state = new MeetingState();
  const first = state.applyJoined(joined({ chat: history }), notLocal);
  assert.deepEqual(types(first).filter((t) => t.startsWith('chat')), ['chat-reset', 'chat-line', 'chat-line']);
  assert.deepEqual(ofType(first, 'chat-line').map((n) => n.mine), [false, true]);
  assert.deepEqual(ofType(first, 'unread'), [], 'history is not unread');
  assert.deepEqual(announced(first), [], 'nor read out');
  const resumed = state.applyJoined(joined({ chat: history, resumed: true }), notLocal);
  assert.deepEqual(ofType(resumed, 'chat-line'), []);
  assert.equal(state.chat.length, 2);
});

test('joined: after a reconnect, a raised hand and a screen share are told again', () => {
  const state = inRoom();
  state.toggleHand();
  const out = state.applyJoined(joined({ resumed: true }), { screen: true });
  assert.deepEqual(ofType(out, 'send-update'), [{ type: 'send-update', state: { screen: true, hand: true } }]);
  assert.deepEqual(ofType(new MeetingState().applyJoined(joined(), notLocal), 'send-update'), [], 'nothing to tell');
});

test('host: the first seat is told it is host; every tile is redrawn for the Remove buttons', () => {
  const state = new MeetingState();
  const out = state.applyJoined(joined({ host: true, peers: [peer('3')] }), notLocal);
  assert.equal(state.host, true);
  assert.deepEqual(announced(out), ['youAreHost']);
  assert.deepEqual(ofType(out, 'host'), [{ type: 'host', host: true }]);
  assert.ok(types(out).includes('self'));
});

test('host: passing to this seat announces it once; losing it (not_host) says nothing', () => {
  const state = inRoom([peer('3', { host: true })]);
  const gained = state.apply({ type: 'peer-updated', peer: peer('7', { host: true }) });
  assert.deepEqual(announced(gained), ['youAreHost']);
  assert.deepEqual(ofType(gained, 'peer').map((n) => n.peer.id), ['3'], 'the others\' tiles get Remove buttons');
  const again = state.apply({ type: 'peer-updated', peer: peer('7', { host: true }) });
  assert.deepEqual(announced(again), [], 'already host');
  const lost = state.loseHost();
  assert.equal(state.host, false);
  assert.deepEqual(ofType(lost, 'host'), [{ type: 'host', host: false }]);
  assert.deepEqual(announced(lost), []);
});

test('peers: a joiner gets a waiting link and an announcement; a leaver is named as they go', () => {
  const state = inRoom([]);
  assert.equal(state.alone, true);
  const came = state.apply({ type: 'peer-joined', peer: peer('9', { name: 'Cy' }) });
  assert.deepEqual(types(came), ['peer', 'connect', 'announce']);
  assert.deepEqual(ofType(came, 'connect'), [{ type: 'connect', id: '9', initiator: false, fresh: false }]);
  assert.deepEqual(ofType(came, 'announce'), [{ type: 'announce', key: 'joined', vars: { name: 'Cy' } }]);
  const went = state.apply({ type: 'peer-left', id: '9' });
  assert.deepEqual(went, [{ type: 'peer-gone', id: '9' }, { type: 'announce', key: 'left', vars: { name: 'Cy' } }]);
  assert.equal(state.alone, true);
});

test('peers: a rejoined seat keeps its tile; with reset its link is made fresh, without it kept', () => {
  const state = inRoom([peer('3')]);
  const reset = state.apply({ type: 'peer-rejoined', peer: peer('3'), reset: true });
  assert.deepEqual(reset, [{ type: 'peer', peer: peer('3') }, { type: 'connect', id: '3', initiator: false, fresh: true }]);
  const kept = state.apply({ type: 'peer-rejoined', peer: peer('3'), reset: false });
  assert.deepEqual(kept, [{ type: 'peer', peer: peer('3') }]);
  assert.deepEqual(ofType(reset, 'peer-gone'), [], 'never a leave');
});

test('hands: a hand going up is announced once, not again on other updates or when it goes down', () => {
  const state = inRoom([peer('3', { name: 'Bo' })]);
  const up = state.apply({ type: 'peer-updated', peer: peer('3', { name: 'Bo', hand: true }) });
  assert.deepEqual(ofType(up, 'announce'), [{ type: 'announce', key: 'handRaised', vars: { name: 'Bo' } }]);
  assert.deepEqual(announced(state.apply({ type: 'peer-updated', peer: peer('3', { name: 'Bo', hand: true, audio: false }) })), []);
  assert.deepEqual(announced(state.apply({ type: 'peer-updated', peer: peer('3', { name: 'Bo', hand: false }) })), []);
  // My own hand: sent, and shown on my tile.
  assert.deepEqual(state.toggleHand(), [{ type: 'send-update', state: { hand: true } }, { type: 'self' }]);
  assert.equal(state.selfView({ audio: true, video: false, screen: false }).hand, true);
  assert.deepEqual(state.toggleHand()[0], { type: 'send-update', state: { hand: false } });
});

test('chat: others\' messages count as unread while the panel is closed; opening it reads them; mine never count', () => {
  const state = inRoom();
  const line = (from, text) => ({ type: 'chat', from, name: `P${from}`, text, ts: 5 });
  const first = state.apply(line('3', 'hello'));
  assert.deepEqual(types(first), ['chat-line', 'unread', 'announce']);
  assert.deepEqual(ofType(first, 'unread'), [{ type: 'unread', count: 1 }]);
  assert.deepEqual(ofType(first, 'announce'), [{ type: 'announce', key: 'chatFrom', vars: { name: 'P3', text: 'hello' } }]);
  assert.deepEqual(ofType(state.apply(line('4', 'again')), 'unread'), [{ type: 'unread', count: 2 }]);
  const mine = state.apply(line('7', 'me'));
  assert.deepEqual(types(mine), ['chat-line'], 'mine: shown, not counted or read out');
  assert.equal(ofType(mine, 'chat-line')[0].mine, true);
  assert.deepEqual(state.setChatOpen(true), [{ type: 'unread', count: 0 }]);
  assert.deepEqual(types(state.apply(line('3', 'open now'))), ['chat-line', 'announce'], 'open panel: nothing unread');
  assert.deepEqual(state.setChatOpen(false), []);
  assert.equal(state.chat.length, 4);
});

test('room: lock, password and recording allowed follow room-updated', () => {
  const state = inRoom();
  assert.deepEqual(state.room, { locked: false, password: false, ask: false, recordingAllowed: true });
  assert.deepEqual(state.apply({ type: 'room-updated', locked: true, password: false, recording_allowed: true }), [{ type: 'room', locked: true, password: false, ask: false, recordingAllowed: true }]);
  state.apply({ type: 'room-updated', locked: true, password: true, recording_allowed: false });
  assert.deepEqual(state.room, { locked: true, password: true, ask: false, recordingAllowed: false });
  // A server from before recording existed says nothing: allowed.
  state.apply({ type: 'room-updated', locked: false, password: false });
  assert.equal(state.room.recordingAllowed, true);
});

test('recording: who records is known from peers, late joiners included, and this seat from its own update', () => {
  const state = inRoom([{ ...peer('3'), recording: true }, peer('4')]);
  assert.deepEqual(state.recorders(), ['P3']);
  const out = state.apply({ type: 'peer-updated', peer: { ...peer('4'), recording: true } });
  assert.ok(out.some((n) => n.type === 'recorders'));
  assert.ok(out.some((n) => n.type === 'announce' && n.key === 'isRecording'));
  assert.deepEqual(state.recorders(), ['P3', 'P4']);
  const self = state.apply({ type: 'peer-updated', peer: { id: state.selfId, name: 'Ada', audio: true, video: true, screen: false, host: false, away: false, hand: false, recording: true } });
  assert.deepEqual(self.filter((n) => n.type === 'self-recording'), [{ type: 'self-recording', recording: true }]);
  assert.equal(state.recording, true);
  assert.equal(state.selfView({ audio: true, video: true, screen: false }).recording, true);
  assert.ok(state.apply({ type: 'peer-left', id: '3' }).some((n) => n.type === 'recorders'));
  assert.deepEqual(state.recorders(), ['P4']);
  assert.deepEqual(errorOutcome(ErrorCode.RECORDING_OFF, true), { do: 'recording-refused', key: 'errRecordingOff' });
});

test('active speaker: the loudest remote seat, and nobody once they leave', () => {
  const state = inRoom([peer('3'), peer('4')]);
  const loud = (energy, duration) => ({ energy, duration });
  state.hear(new Map([['3', loud(0, 0)], ['4', loud(0, 0)]]));
  // 0.25 s: seat 4 at RMS 0.3, seat 3 quiet.
  assert.equal(state.hear(new Map([['3', loud(0.00001, 0.25)], ['4', loud(0.0225, 0.25)]])), '4');
  assert.equal(state.speaker, '4');
  state.apply({ type: 'peer-left', id: '4' });
  assert.equal(state.speaker, null, 'a seat that left stops speaking');
  assert.equal(state.levels.has('4'), false);
});

test('self view: my name, host flag and media as the page shows them', () => {
  const state = inRoom([], { host: true });
  assert.deepEqual(state.selfView({ audio: true, video: false, screen: true }), {
    name: 'Ada', audio: true, video: false, screen: true, hand: false, host: true, recording: false, self: true,
  });
});

test('errors: each server error code leads to its one outcome, joined or in the lobby', () => {
  const cases = [
    [ErrorCode.BAD_PASSWORD, false, { do: 'ask-password', key: 'errBadPassword' }],
    [ErrorCode.BAD_PASSWORD, true, { do: 'ask-password', key: 'errBadPassword' }],
    [ErrorCode.SERVER_BUSY, true, { do: 'banner', key: 'errServerBusy' }],
    [ErrorCode.SERVER_BUSY, false, { do: 'join-error', key: 'errServerBusy' }],
    [ErrorCode.RATE_LIMITED, true, { do: 'banner', key: 'errRateLimited' }],
    [ErrorCode.RATE_LIMITED, false, { do: 'join-error', key: 'errRateLimited' }],
    [ErrorCode.NOT_HOST, true, { do: 'not-host' }],
    [ErrorCode.ROOM_FULL, false, { do: 'lobby', key: 'errRoomFull' }],
    [ErrorCode.LOCKED, false, { do: 'lobby', key: 'errLocked' }],
    [ErrorCode.REPLACED, true, { do: 'end', key: 'errReplaced' }],
    [ErrorCode.REMOVED, true, { do: 'end', key: 'errRemoved' }],
    [ErrorCode.TOO_MANY_ROOMS, false, { do: 'lobby', key: 'errTooManyRooms' }],
    // Issue 16: a refusal is shown to the person, never only logged.
    [ErrorCode.BAD_REQUEST, true, { do: 'refused', key: 'errBadRequest' }],
    [ErrorCode.SLOW_DOWN, true, { do: 'toast', key: 'errSlowDown' }],
    [ErrorCode.NO_FREE_SEAT, true, { do: 'toast', key: 'errNoFreeSeat' }],
    [ErrorCode.DENIED, false, { do: 'lobby', key: 'errDenied' }],
    [ErrorCode.TOO_LARGE, true, { do: 'log' }],
    ['some_new_code', true, { do: 'log' }],
  ];
  for (const [code, joinedNow, outcome] of cases) {
    assert.deepEqual(errorOutcome(code, joinedNow), outcome, `${code}, ${joinedNow ? 'joined' : 'lobby'}`);
  }
});

test('connection: reconnecting shows a banner in the meeting, and "cannot reach" in the lobby unless the error said why', () => {
  const lobbyState = new MeetingState();
  lobbyState.waitingForSeat = true;
  const inMeeting = inRoom();
  assert.deepEqual(connectionOutcome({ state: 'reconnecting', code: 1006 }, inMeeting), { do: 'banner', key: 'reconnectingBanner' });
  assert.deepEqual(connectionOutcome({ state: 'reconnecting', code: 1006 }, lobbyState), { do: 'join-error', key: 'cannotReach' });
  assert.deepEqual(connectionOutcome({ state: 'reconnecting', code: CloseCode.SERVER_BUSY }, lobbyState), { do: 'none' });
  assert.deepEqual(connectionOutcome({ state: 'reconnecting', code: CloseCode.RATE_LIMITED }, lobbyState), { do: 'none' });
  assert.deepEqual(connectionOutcome({ state: 'open' }, inMeeting), { do: 'clear' });
});

test('connection: ended ends a meeting once; before a seat it goes back to the lobby with the code', () => {
  const inMeeting = inRoom();
  assert.deepEqual(connectionOutcome({ state: 'ended', code: 1000 }, inMeeting), { do: 'end', key: 'leftTitle' });
  inMeeting.end();
  assert.deepEqual(connectionOutcome({ state: 'ended', code: 1000 }, inMeeting), { do: 'none' }, 'already over');
  const waiting = new MeetingState();
  waiting.waitingForSeat = true;
  assert.deepEqual(connectionOutcome({ state: 'ended', code: CloseCode.POLICY }, waiting),
    { do: 'lobby', key: 'errGeneric', vars: { message: '1008' } });
  waiting.leaveSeat();
  assert.deepEqual(connectionOutcome({ state: 'ended', code: CloseCode.POLICY }, waiting), { do: 'none' }, 'already back in the lobby');
});

test('knocks: a host is shown the knocks left waiting, alerted only for new ones, and loses them with host', () => {
  const state = inRoom([peer('3')], { host: true, knocks: [{ id: '12', name: 'Cy' }] });
  assert.deepEqual([...state.knocks], [['12', 'Cy']]);
  let out = state.apply({ type: 'knock', id: '12', name: 'Cy' });
  assert.deepEqual(ofType(out, 'knock'), [{ type: 'knock', knock: { id: '12', name: 'Cy' }, alert: false }], 'a reconnecting knock is no news');
  out = state.apply({ type: 'knock', id: '13', name: 'Di' });
  assert.deepEqual(ofType(out, 'knock'), [{ type: 'knock', knock: { id: '13', name: 'Di' }, alert: true }]);
  assert.deepEqual(announced(out), ['knockFrom']);
  assert.deepEqual(state.apply({ type: 'knock-gone', id: '12' }), [{ type: 'knock-gone', id: '12' }]);
  out = state.apply({ type: 'peer-updated', peer: { ...peer('7'), host: false } });
  assert.ok(types(out).includes('knocks-clear'));
  assert.equal(state.knocks.size, 0);
  assert.deepEqual(state.apply({ type: 'knock', id: '14', name: 'Ed' }), [], 'a guest is shown no knocks');
});

test('room messages: a reaction floats over its sender\'s tile, mine over my own; unknown kinds are ignored', () => {
  const state = inRoom([peer('3')]);
  let out = state.apply({ type: 'room-message', from: '3', data: { kind: 'reaction', emoji: '🎉' } });
  assert.deepEqual(ofType(out, 'reaction'), [{ type: 'reaction', id: '3', emoji: '🎉' }]);
  assert.deepEqual(ofType(out, 'announce'), [{ type: 'announce', key: 'reacted', vars: { name: 'P3', emoji: '🎉' } }]);
  out = state.apply({ type: 'room-message', from: '7', data: { kind: 'reaction', emoji: '👍' } });
  assert.deepEqual(ofType(out, 'reaction'), [{ type: 'reaction', id: 'self', emoji: '👍' }]);
  assert.deepEqual(state.apply({ type: 'room-message', from: '3', data: { kind: 'future', x: 1 } }), []);
  assert.deepEqual(state.apply({ type: 'room-message', from: '3', data: { kind: 'reaction', emoji: '<img>' } }), []);
  assert.deepEqual(state.apply({ type: 'room-message', from: '99', data: { kind: 'reaction', emoji: '👍' } }), [], 'not in the room');
});

test('room: "Ask to join" is part of the room state', () => {
  const state = inRoom([], { ask: true });
  assert.deepEqual(state.room, { locked: false, password: false, ask: true, recordingAllowed: true });
  const out = state.apply({ type: 'room-updated', locked: false, password: false, ask: false });
  assert.deepEqual(out, [{ type: 'room', locked: false, password: false, ask: false, recordingAllowed: true }]);
});
