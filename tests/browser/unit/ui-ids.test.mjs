// Who may touch which element of the room page: every id in room.html is looked up by exactly one
// ui/ module, and app.js (the wiring) looks up none. Read from the sources, so a lookup added in
// the wrong place fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';

const assets = new URL('../../../assets/', import.meta.url);
const read = (path) => readFileSync(new URL(path, assets), 'utf8');

/** Ids the page's elements have, less the icon sprite's symbols (referenced by href, not looked up). */
const pageIds = [...read('room.html').matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]).filter((id) => !id.startsWith('i-'));

/** Ids the page itself refers to (labels, headings of regions): these need no owner in code. */
const referencedByPage = new Set([...read('room.html').matchAll(/\s(?:for|aria-labelledby|aria-controls|aria-describedby)="([^"]+)"/g)].map((m) => m[1]));

/** Every id each ui/ module looks up, by module. */
const owners = new Map();
for (const file of readdirSync(new URL('js/ui/', assets))) {
  const source = read(`js/ui/${file}`);
  for (const [, id] of source.matchAll(/(?:byId|getElementById)\('([\w-]+)'/g)) {
    owners.set(id, [...(owners.get(id) ?? []), file]);
  }
}

test('ui ids: every element of the room page has exactly one owning ui/ module', () => {
  assert.ok(pageIds.length > 40, `parsed ${pageIds.length} ids`);
  for (const id of pageIds) {
    const count = owners.get(id)?.length ?? 0;
    const ok = count === 1 || (count === 0 && referencedByPage.has(id));
    assert.ok(ok, `#${id}: owned by ${JSON.stringify(owners.get(id) ?? [])}`);
  }
  for (const id of owners.keys()) assert.ok(pageIds.includes(id), `#${id} is looked up but not on the page`);
});

test('ui ids: the wiring and the pure modules look up no element', () => {
  for (const file of ['app.js', 'meeting-state.js', 'protocol.js', 'peers.js', 'adapt.js']) {
    const source = read(`js/${file}`);
    assert.doesNotMatch(source, /getElementById|querySelector|byId\(|\$\(/, `${file} looks up elements`);
  }
});

test('ui ids: the DOM-free modules import nothing from ui/ and never name the document', () => {
  for (const file of ['meeting-state.js', 'protocol.js', 'peers.js', 'adapt.js']) {
    const source = read(`js/${file}`);
    assert.doesNotMatch(source, /from '\.\/ui\//, `${file} imports ui/`);
    assert.doesNotMatch(source, /\bdocument\b|\bwindow\b/, `${file} names the DOM`);
  }
});

test('ui ids: the Audio only toggle belongs to the toolbar and is a pressed-state button', () => {
  assert.deepEqual(owners.get('audio-only'), ['controls.js']);
  assert.match(read('room.html'), /id="audio-only"[^>]*aria-pressed="false"/);
  assert.match(read('js/ui/controls.js'), /setAttribute\('aria-pressed'/);
});
