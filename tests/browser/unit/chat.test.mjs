// Chat in node: the 2 KiB bound, and messages rendered strictly as text. A tiny fake DOM records
// every way content can enter it; markup-parsing entry points throw, so a change to innerHTML or
// insertAdjacentHTML in the chat panel fails here before it reaches a browser.
import { test } from 'node:test';
import assert from 'node:assert/strict';

class FakeNode {
  constructor(tag) {
    this.tag = tag;
    this.children = [];
    this.className = '';
    this.text = '';
  }
  set textContent(value) { this.text = String(value); this.children = []; }
  get textContent() { return this.text + this.children.map((c) => (typeof c === 'string' ? c : c.textContent)).join(''); }
  set innerHTML(_) { throw new Error('chat must not parse markup (innerHTML)'); }
  insertAdjacentHTML() { throw new Error('chat must not parse markup (insertAdjacentHTML)'); }
  append(...nodes) { this.children.push(...nodes); }
  replaceChildren() { this.children = []; this.text = ''; }
  /** Every element in this subtree, depth first. */
  all() { return [this, ...this.children.flatMap((c) => (typeof c === 'string' ? [] : c.all()))]; }
}
globalThis.document = { createElement: (tag) => new FakeNode(tag) };

const { ChatPanel, prepareChat, MAX_CHAT_BYTES } = await import('../../../assets/js/ui/chat.js');

test('chat: an HTML payload is shown as the same text and creates no elements of its own', () => {
  const log = new FakeNode('ol');
  const panel = new ChatPanel(log);
  const payload = '<img src=x onerror="window.pwned=1"><script>alert(1)</script> & &amp;';
  panel.add({ from: '1', name: '<b>Eve</b>', text: payload, ts: Date.UTC(2026, 0, 1, 12, 30) }, false);

  assert.equal(log.children.length, 1, 'one line in the log');
  const tags = log.all().map((n) => n.tag).sort();
  assert.deepEqual(tags, ['div', 'li', 'ol', 'p', 'strong', 'time'].sort(), 'only the panel\'s own elements');
  const text = log.all().find((n) => n.className === 'chat-text');
  assert.equal(text.textContent, payload, 'message text is verbatim');
  const name = log.all().find((n) => n.tag === 'strong');
  assert.equal(name.textContent, '<b>Eve</b>', 'sender name is verbatim text too');
});

test('chat: own messages are marked, and clear empties the log', () => {
  const log = new FakeNode('ol');
  const panel = new ChatPanel(log);
  panel.add({ from: '1', name: 'Ada', text: 'hi', ts: 0 }, true);
  assert.equal(log.children[0].className, 'chat-line mine');
  panel.clear();
  assert.equal(log.children.length, 0);
});

test('chat: messages are trimmed, empty ones dropped, and the 2 KiB bound counts bytes not characters', () => {
  assert.equal(MAX_CHAT_BYTES, 2048);
  assert.equal(prepareChat('  hello \n'), 'hello');
  assert.equal(prepareChat('   '), null);
  assert.equal(prepareChat(undefined), null);
  assert.equal(prepareChat('a'.repeat(2048)), 'a'.repeat(2048));
  assert.equal(prepareChat('a'.repeat(2049)), null);
  // Cyrillic is two bytes a letter: 1024 fit, 1025 do not.
  assert.equal(prepareChat('я'.repeat(1024)), 'я'.repeat(1024));
  assert.equal(prepareChat('я'.repeat(1025)), null);
});

const { checkChat, chatBytes } = await import('../../../assets/js/chat-rules.js');
const { chatStatus } = await import('../../../assets/js/ui/chat.js');
const { translator } = await import('../../../assets/js/i18n.js');

test('chat rules: over the byte limit says by how much; 1,100 Cyrillic letters are 2,200 bytes', () => {
  const long = 'я'.repeat(1100);
  assert.equal(chatBytes(long), 2200);
  assert.deepEqual(checkChat(long), { ok: false, reason: 'tooLong', bytes: 2200, over: 152 });
  const ru = chatStatus(translator('ru'), long);
  assert.equal(ru.over, true);
  assert.match(ru.count, /2200 из 2048 байт/);
  assert.match(ru.why, /на 152 байт длиннее/);
  const en = chatStatus(translator('en'), long);
  assert.match(en.why, /152 bytes over the limit of 2048/);
  // Short messages show no counter; from half the limit they do.
  assert.equal(chatStatus(translator('en'), 'hi').count, null);
  assert.match(chatStatus(translator('en'), 'a'.repeat(1500)).count, /1500 of 2048 bytes/);
});

test('chat rules: the format characters real text has are taken, the unsafe ones named', () => {
  for (const text of ['שלום\u200F!', '\u200Eabc', 'ا\u061C1', '👩\u200D💻', 'क्\u200Cष', '\u2067ש\u2069 ok', 'soft\u00ADhyphen', '❤\uFE0F', 'line\nand\ttab']) {
    assert.equal(checkChat(text).ok, true, JSON.stringify(text));
  }
  assert.deepEqual(checkChat('abc\u202Efdp.exe'), { ok: false, reason: 'unsafe', bytes: 13, char: 'U+202E' });
  for (const text of ['\u202Dx', 'a\u0007b', 'a\u009Bb', '\uFFF9x\uFFFB']) assert.equal(checkChat(text).reason, 'unsafe', JSON.stringify(text));
  assert.match(chatStatus(translator('ru'), 'abc\u202Efdp').why, /U\+202E/);
});
