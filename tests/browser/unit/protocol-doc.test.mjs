// The client's wire constants against docs/PROTOCOL.md's tables, parsed from the doc itself: a
// code added, renamed or renumbered on one side and not the other fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { CloseCode, ErrorCode, FINAL_CLOSE_CODES } from '../../../assets/js/protocol.js';

const doc = readFileSync(new URL('../../../docs/PROTOCOL.md', import.meta.url), 'utf8');

/** The rows of the first table after `heading`, as arrays of cell text. */
function table(heading) {
  const at = doc.indexOf(heading);
  assert.notEqual(at, -1, `docs/PROTOCOL.md has no "${heading}"`);
  const rows = [];
  for (const line of doc.slice(at).split('\n').slice(1)) {
    if (!line.startsWith('|')) {
      if (rows.length > 0) break;
      continue;
    }
    rows.push(line.slice(1, -1).split('|').map((cell) => cell.trim()));
  }
  // Drop the header and the |---| line.
  return rows.slice(2);
}

const unquote = (cell) => /^`([^`]+)`/.exec(cell)?.[1];
/** `ROOM_FULL` for `room_full`: the constant's name for a wire code. */
const constName = (code) => code.toUpperCase();

test('protocol doc: ErrorCode is exactly the error table, name for name', () => {
  const documented = table('### `error`').map((row) => unquote(row[0]));
  assert.ok(documented.length >= 10, `parsed ${documented.length} error codes`);
  assert.deepEqual([...Object.values(ErrorCode)].sort(), [...documented].sort());
  for (const code of documented) assert.equal(ErrorCode[constName(code)], code, code);
});

test('protocol doc: CloseCode is exactly the close-code table', () => {
  const documented = table('## Close codes').map((row) => Number(unquote(row[0])));
  assert.ok(documented.length >= 10, `parsed ${documented.length} close codes`);
  assert.deepEqual([...Object.values(CloseCode)].sort(), [...documented].sort());
});

test('protocol doc: an error that closes the socket closes it with the CloseCode of the same name', () => {
  for (const [cell, , socket] of table('### `error`')) {
    const code = unquote(cell);
    const closed = /closed, `(\d+)`/.exec(socket);
    if (!closed) {
      assert.match(socket, /stays open/, `${code}: either closed with a code or stays open`);
      continue;
    }
    assert.equal(CloseCode[constName(code)], Number(closed[1]), code);
  }
});

test('protocol doc: the client reconnects after exactly the close codes the table says "yes" to', () => {
  for (const [cell, , reconnect] of table('## Close codes')) {
    const code = Number(unquote(cell));
    // "ask for the password, then yes" waits for the user: final for the socket.
    const final = !reconnect.startsWith('yes');
    assert.equal(FINAL_CLOSE_CODES.has(code), final, `${code}: "${reconnect}"`);
  }
});

import { ClientMsg } from '../../../assets/js/protocol.js';

/** Builds a message of `type` from a documented example's fields, through ClientMsg only. */
const build = {
  join: ({ type, ...fields }) => ClientMsg.join(fields),
  signal: ({ to, data }) => ClientMsg.signal(to, data),
  update: ({ type, ...state }) => ClientMsg.update(state),
  chat: ({ text }) => ClientMsg.chat(text),
  'set-password': ({ password }) => ClientMsg.setPassword(password),
  lock: ({ locked }) => ClientMsg.lock(locked),
  remove: ({ id }) => ClientMsg.remove(id),
  'ask-to-join': ({ on }) => ClientMsg.askToJoin(on),
  admit: ({ id }) => ClientMsg.admit(id),
  deny: ({ id }) => ClientMsg.deny(id),
  'room-message': ({ data }) => ClientMsg.roomMessage(data),
  'allow-recording': ({ allowed }) => ClientMsg.allowRecording(allowed),
  leave: () => ClientMsg.leave(),
};

test('protocol doc: every documented client message is built by ClientMsg, field for field', () => {
  const section = doc.slice(doc.indexOf('## Client → server'), doc.indexOf('## Server → client'));
  const examples = section.split('\n').filter((line) => line.startsWith('{"type":')).map((line) => JSON.parse(line));
  const types = new Set(examples.map((m) => m.type));
  assert.deepEqual([...types].sort(), Object.keys(build).sort(), 'one builder per documented message');
  assert.equal(Object.keys(ClientMsg).length, types.size, 'and no builder for an undocumented one');
  for (const example of examples) assert.deepEqual(build[example.type](example), example, example.type);
});

import { PeerMsg, parsePeerMsg } from '../../../assets/js/protocol.js';

test('protocol doc: every documented peer payload is built by PeerMsg and read back by parsePeerMsg', () => {
  const at = doc.indexOf('#### Peer payloads');
  assert.notEqual(at, -1, 'docs/PROTOCOL.md documents the peer payloads');
  const section = doc.slice(at, doc.indexOf('\n### ', at));
  const payloads = section.split('\n').filter((line) => line.startsWith('{"type":"signal"')).map((line) => JSON.parse(line).data);
  assert.equal(payloads.length, Object.keys(PeerMsg).length, 'one example per builder');
  const built = [PeerMsg.videoWanted('none'), PeerMsg.videoPaused(true)];
  assert.deepEqual(payloads, built);
  for (const payload of payloads) assert.deepEqual(parsePeerMsg(payload), payload);
  // The table names every kind.
  for (const payload of payloads) assert.match(section, new RegExp(`\\| \`${payload.kind}\` \\|`));
  // What is not a known peer payload is left to WebRTC, or ignored.
  assert.equal(parsePeerMsg({ description: { type: 'offer', sdp: '' } }), null);
  assert.equal(parsePeerMsg({ kind: 'video-wanted', wanted: 'all' }), null);
  assert.equal(parsePeerMsg({ kind: 'future-thing' }), null);
});

import { REACTIONS, RoomPayload, parseRoomPayload } from '../../../assets/js/protocol.js';

test('protocol doc: every documented room-message payload is built by RoomPayload and read back', () => {
  const at = doc.indexOf('#### Room message payloads');
  assert.notEqual(at, -1, 'docs/PROTOCOL.md documents the room-message payloads');
  const section = doc.slice(at, doc.indexOf('\n### ', at));
  const payloads = section.split('\n').filter((line) => line.startsWith('{"type":"room-message"')).map((line) => JSON.parse(line).data);
  assert.equal(payloads.length, Object.keys(RoomPayload).length, 'one example per builder');
  assert.deepEqual(payloads, [RoomPayload.reaction('👍')]);
  for (const payload of payloads) assert.deepEqual(parseRoomPayload(payload), payload);
  for (const payload of payloads) assert.match(section, new RegExp(`\\| \`${payload.kind}\` \\|`));
  // The table lists exactly the reactions the client offers.
  for (const emoji of REACTIONS) assert.ok(section.includes(emoji), emoji);
  assert.equal(parseRoomPayload({ kind: 'reaction', emoji: '<b>' }), null, 'only the offered emoji');
  assert.equal(parseRoomPayload({ kind: 'future-thing' }), null);
});
