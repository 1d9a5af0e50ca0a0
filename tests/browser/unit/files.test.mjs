// files.js over a pair of in-process channels that behave like RTCDataChannels (ordered,
// reliable, a bufferedAmount that drains asynchronously with `bufferedamountlow`): the framing,
// the blocks and their digests, accept / decline / cancel either side, the pace figures, and that
// neither side holds more than its window whatever the file's size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import {
  BLOCK_BYTES, CHUNK_BYTES, FileLink, HIGH_WATER, Pace, WINDOW_BLOCKS, cleanName, decodeChunk,
  encodeChunk, fileDigest, formatBytes, memorySink, parseControl, ranges, sha256Hex,
} from '../../../assets/js/files.js';

/** One end of a channel pair: what send() puts in, the other end's `message` gets out. */
class FakeChannel extends EventTarget {
  constructor() {
    super();
    this.readyState = 'open';
    this.bufferedAmount = 0;
    this.bufferedAmountLowThreshold = 0;
    this.peer = null;
    /** The most this end's buffer ever held. */
    this.maxBuffered = 0;
  }

  send(data) {
    if (this.readyState !== 'open') throw new Error('InvalidStateError');
    const size = typeof data === 'string' ? data.length : data.byteLength;
    this.bufferedAmount += size;
    this.maxBuffered = Math.max(this.maxBuffered, this.bufferedAmount);
    // A copy, as the browser's structured clone of an ArrayBuffer gives.
    const copy = typeof data === 'string' ? data : data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
    setImmediate(() => {
      const before = this.bufferedAmount;
      this.bufferedAmount -= size;
      if (before > this.bufferedAmountLowThreshold && this.bufferedAmount <= this.bufferedAmountLowThreshold) {
        this.dispatchEvent(new Event('bufferedamountlow'));
      }
      if (this.peer.readyState === 'open') this.peer.dispatchEvent(Object.assign(new Event('message'), { data: copy }));
    });
  }

  close() {
    for (const end of [this, this.peer]) {
      if (end.readyState === 'closed') continue;
      end.readyState = 'closed';
      setImmediate(() => end.dispatchEvent(new Event('close')));
    }
  }
}

function pair() {
  const a = new FakeChannel();
  const b = new FakeChannel();
  a.peer = b;
  b.peer = a;
  let id = 0;
  const nextId = () => ++id;
  return { a, b, ada: new FileLink({ peer: 'bo', channel: a, nextId }), bo: new FileLink({ peer: 'ada', channel: b, nextId }) };
}

/** A sink that records what was written and how much it held at most at once. */
function recordingSink() {
  const parts = [];
  return {
    parts,
    aborted: false,
    closed: false,
    async write(bytes) { parts.push(Buffer.from(bytes)); },
    async close() { this.closed = true; return null; },
    async abort() { this.aborted = true; parts.length = 0; },
  };
}

const until = async (fn, what, ms = 10000) => {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
};

test('files: a chunk is the transfer id then the bytes, and anything shorter is not one', () => {
  const bytes = new Uint8Array([1, 2, 3]);
  const encoded = encodeChunk(0x01020304, bytes);
  assert.deepEqual([...encoded], [1, 2, 3, 4, 1, 2, 3]);
  const decoded = decodeChunk(encoded.buffer);
  assert.equal(decoded?.id, 0x01020304);
  assert.deepEqual([...(decoded?.bytes ?? [])], [1, 2, 3]);
  assert.equal(decodeChunk(new ArrayBuffer(3)), null);
  assert.equal(decodeChunk(/** @type {any} */ ('text')), null);
});

test('files: a file is cut into blocks of BLOCK_BYTES, the last one short, and an empty file into none', () => {
  assert.deepEqual(ranges(0), []);
  assert.deepEqual(ranges(10, 4), [[0, 4], [4, 8], [8, 10]]);
  assert.deepEqual(ranges(2 * BLOCK_BYTES), [[0, BLOCK_BYTES], [BLOCK_BYTES, 2 * BLOCK_BYTES]]);
  assert.ok(CHUNK_BYTES < BLOCK_BYTES && BLOCK_BYTES % CHUNK_BYTES === 0);
});

test('files: the digest is SHA-256, the file digest SHA-256 over the block digests', async () => {
  const bytes = new TextEncoder().encode('abc');
  assert.equal(await sha256Hex(bytes), createHash('sha256').update('abc').digest('hex'));
  const expected = createHash('sha256').update('x\ny').digest('hex');
  assert.equal(await fileDigest(['x', 'y']), expected);
});

test('files: control messages are checked; names lose paths and control characters', () => {
  assert.deepEqual(parseControl('{"t":"offer","id":1,"name":"../../etc/passwd","size":5,"type":"text/plain"}'),
    { t: 'offer', id: 1, name: 'passwd', size: 5, type: 'text/plain' });
  assert.equal(parseControl('{"t":"offer","id":1,"name":"a","size":-1}'), null);
  assert.equal(parseControl('{"t":"offer","id":-1,"name":"a","size":1}'), null);
  assert.equal(parseControl('{"t":"nope","id":1}'), null);
  assert.equal(parseControl('not json'), null);
  assert.deepEqual(parseControl('{"t":"done","id":2,"ok":"yes"}'), { t: 'done', id: 2, ok: false });
  assert.equal(cleanName('a\u202eexe.txt\u0000'), 'aexe.txt');
  assert.equal(cleanName('C:\\Users\\x\\report.pdf'), 'report.pdf');
  assert.equal(cleanName('   '), 'file');
});

test('files: pace gives speed and time left from the last seconds', () => {
  const pace = new Pace(3000);
  assert.equal(pace.rate, null);
  pace.add(0, 0);
  pace.add(1000, 1_000_000);
  pace.add(2000, 2_000_000);
  assert.equal(pace.rate, 1_000_000);
  assert.equal(pace.secondsLeft(5_000_000), 3);
  // Old samples fall out of the window: a slower second counts.
  pace.add(6000, 2_500_000);
  assert.ok(/** @type {number} */ (pace.rate) < 1_000_000);
  assert.equal(formatBytes(3_145_728), '3.1 MB');
  assert.equal(formatBytes(999), '999 B');
  assert.equal(formatBytes(3_145_728, 'ru'), '3,1 МБ');
});

test('files: an accepted file arrives byte-identical, with progress on both sides, in bounded memory', async () => {
  const { a, ada, bo } = pair();
  const data = randomBytes(12 * BLOCK_BYTES + 12345);
  const sink = recordingSink();
  let offered = null;
  bo.addEventListener('offer', (e) => { offered = e.detail.transfer; });
  const out = ada.offer(new Blob([data]), 'data.bin');
  assert.equal(out.state, 'offered');
  await until(() => offered, 'offer');
  assert.deepEqual({ name: offered.name, size: offered.size, state: offered.state }, { name: 'data.bin', size: data.length, state: 'offered' });
  let inProgress = 0;
  offered.addEventListener('change', () => { if (offered.bytes > 0 && offered.bytes < offered.size) inProgress += 1; });
  bo.accept(offered, sink);
  await until(() => out.state === 'done' && offered.state === 'done', `done (${out.state}/${offered.state})`);
  assert.ok(sink.closed);
  assert.equal(createHash('sha256').update(Buffer.concat(sink.parts)).digest('hex'), createHash('sha256').update(data).digest('hex'));
  assert.equal(out.bytes, data.length);
  assert.ok(inProgress > 10, 'the receiver saw progress as it came');
  // The sender's buffer stayed near the high water, not near the file's size.
  assert.ok(a.maxBuffered <= HIGH_WATER + CHUNK_BYTES + 1024, `max buffered ${a.maxBuffered}`);
  assert.ok(WINDOW_BLOCKS * BLOCK_BYTES < data.length, 'the file is bigger than the window');
});

test('files: the sender waits for acknowledgements: never more than the window of blocks ahead', async () => {
  const { b, ada, bo } = pair();
  const data = randomBytes(10 * BLOCK_BYTES);
  // A receiver whose disk is slow: each write takes a while.
  let written = 0;
  let maxAhead = 0;
  const sink = {
    async write(bytes) { await new Promise((r) => setTimeout(r, 5)); written += bytes.byteLength; },
    async close() { return null; },
    async abort() {},
  };
  let offered = null;
  bo.addEventListener('offer', (e) => { offered = e.detail.transfer; });
  const out = ada.offer(new Blob([data]), 'slow.bin');
  await until(() => offered, 'offer');
  offered.addEventListener('change', () => { maxAhead = Math.max(maxAhead, offered.bytes - written); });
  bo.accept(offered, sink);
  await until(() => out.state === 'done', 'done');
  assert.ok(maxAhead <= (WINDOW_BLOCKS + 1) * BLOCK_BYTES, `received ahead of written: ${maxAhead}`);
  assert.equal(written, data.length);
  assert.equal(b.readyState, 'open');
});

test('files: decline writes nothing and tells the sender', async () => {
  const { ada, bo } = pair();
  let offered = null;
  bo.addEventListener('offer', (e) => { offered = e.detail.transfer; });
  const out = ada.offer(new Blob([randomBytes(1000)]), 'no.bin');
  await until(() => offered, 'offer');
  bo.decline(offered);
  await until(() => out.state === 'declined', 'declined');
  assert.equal(offered.state, 'declined');
});

test('files: cancel from either side ends both, and the receiver\'s partial file is discarded', async () => {
  for (const who of ['sender', 'receiver']) {
    const { ada, bo } = pair();
    const sink = recordingSink();
    let offered = null;
    bo.addEventListener('offer', (e) => { offered = e.detail.transfer; });
    const out = ada.offer(new Blob([randomBytes(20 * BLOCK_BYTES)]), 'big.bin');
    await until(() => offered, 'offer');
    bo.accept(offered, sink);
    await until(() => offered.bytes > BLOCK_BYTES, 'some bytes');
    if (who === 'sender') ada.cancel(out);
    else bo.cancel(offered);
    await until(() => out.state === 'cancelled' && offered.state === 'cancelled', `${who}: both cancelled (${out.state}/${offered.state})`);
    assert.equal(out.reason, who === 'sender' ? 'cancelled-here' : 'cancelled-there');
    assert.equal(offered.reason, who === 'sender' ? 'cancelled-there' : 'cancelled-here');
    assert.ok(sink.aborted && !sink.closed, `${who}: nothing kept`);
  }
});

test('files: a channel that closes mid-file ends the transfer on both sides as the peer leaving', async () => {
  const { a, ada, bo } = pair();
  const sink = recordingSink();
  let offered = null;
  bo.addEventListener('offer', (e) => { offered = e.detail.transfer; });
  const out = ada.offer(new Blob([randomBytes(20 * BLOCK_BYTES)]), 'big.bin');
  await until(() => offered, 'offer');
  bo.accept(offered, sink);
  await until(() => offered.bytes > BLOCK_BYTES, 'some bytes');
  a.close();
  await until(() => out.state === 'peer-left' && offered.state === 'peer-left', 'peer-left');
  assert.ok(sink.aborted);
});

test('files: a block that does not match its digest fails the transfer; nothing is kept', async () => {
  const { a, ada, bo } = pair();
  // Flip one byte of the third chunk on the wire.
  const send = a.send.bind(a);
  let chunks = 0;
  a.send = (data) => {
    if (typeof data !== 'string' && ++chunks === 3) {
      const copy = new Uint8Array(data);
      copy[10] ^= 0xff;
      return send(copy);
    }
    return send(data);
  };
  const sink = recordingSink();
  let offered = null;
  bo.addEventListener('offer', (e) => { offered = e.detail.transfer; });
  const out = ada.offer(new Blob([randomBytes(2 * BLOCK_BYTES)]), 'x.bin');
  await until(() => offered, 'offer');
  bo.accept(offered, sink);
  await until(() => offered.final && out.final, 'ended');
  assert.deepEqual([offered.state, offered.reason], ['failed', 'corrupt']);
  assert.equal(out.state, 'cancelled');
  assert.ok(sink.aborted && sink.parts.length === 0);
});

test('files: the memory sink gives the file back whole; an empty file arrives too', async () => {
  const { ada, bo } = pair();
  let offered = null;
  bo.addEventListener('offer', (e) => { offered = e.detail.transfer; });
  const out = ada.offer(new Blob([]), 'empty.txt');
  await until(() => offered, 'offer');
  bo.accept(offered, memorySink('text/plain'));
  await until(() => out.state === 'done' && offered.state === 'done', 'done');
  assert.equal(offered.blob?.size, 0);
});

test('files: a paced link sends no faster than its pace, and arrives whole', async () => {
  const a = new FakeChannel();
  const b = new FakeChannel();
  a.peer = b;
  b.peer = a;
  let id = 0;
  const nextId = () => ++id;
  const rate = 2 * 1024 * 1024;
  const ada = new FileLink({ peer: 'bo', channel: a, nextId, pace: () => rate });
  const bo = new FileLink({ peer: 'ada', channel: b, nextId });
  const data = randomBytes(BLOCK_BYTES);
  const sink = recordingSink();
  let offered = null;
  bo.addEventListener('offer', (e) => { offered = e.detail.transfer; });
  const out = ada.offer(new Blob([data]), 'paced.bin');
  await until(() => offered, 'offer');
  const t0 = Date.now();
  bo.accept(offered, sink);
  await until(() => out.state === 'done', 'done');
  const seconds = (Date.now() - t0) / 1000;
  // 1 MiB at 2 MiB/s, less the quarter second of burst: at least 0.2 s.
  assert.ok(seconds >= 0.2, `took ${seconds} s`);
  assert.equal(Buffer.concat(sink.parts).equals(data), true);
});
