// Room names: what the start page accepts, what "Create a room" makes, what the room page reads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';

import { ROOM_NAME, normalizeRoomName, randomRoomName, roomFromPath } from '../../../assets/js/room-name.js';

test('room names: trimmed and lower-cased, else refused', () => {
  assert.equal(normalizeRoomName('  Team-Standup '), 'team-standup');
  assert.equal(normalizeRoomName('280D-ED66-9442'), '280d-ed66-9442');
  assert.equal(normalizeRoomName('a'.repeat(64)), 'a'.repeat(64));
  for (const bad of ['', '   ', 'a'.repeat(65), 'team standup', 'café', 'a/b', '../x', '<b>', 'a_b', null, undefined]) {
    assert.equal(normalizeRoomName(bad), null, String(bad));
  }
});

test('a created room name is 12 hex digits in three groups of four, from the CSPRNG', () => {
  const fill = (bytes) => webcrypto.getRandomValues(bytes);
  const seen = new Set();
  for (let i = 0; i < 200; i++) {
    const name = randomRoomName(fill);
    assert.match(name, /^[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}$/);
    assert.ok(ROOM_NAME.test(name));
    seen.add(name);
  }
  assert.equal(seen.size, 200, 'no repeats in 200 draws of 48 bits');
  assert.equal(randomRoomName((b) => b.fill(0xab)), 'abab-abab-abab');
  assert.equal(randomRoomName((b) => b.fill(0)), '0000-0000-0000');
});

test('the room page reads its room from the path', () => {
  assert.equal(roomFromPath('/r/team-standup'), 'team-standup');
  assert.equal(roomFromPath('/r/Team-Standup/'), 'team-standup');
  assert.equal(roomFromPath('/r/%41bc'), 'abc');
  assert.equal(roomFromPath('/r/'), null);
  assert.equal(roomFromPath('/r/a/b'), null);
  assert.equal(roomFromPath('/r/%E0%A4%A'), null, 'bad escapes are refused, not thrown');
  assert.equal(roomFromPath('/'), null);
});
