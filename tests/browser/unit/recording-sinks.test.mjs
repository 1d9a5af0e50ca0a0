// Where a recording's chunks go (recorder.js): the person's picked file first, else a file of the
// origin's private file system (OPFS), else memory; and the OPFS file's life: chunks written in
// order, the finished File given at close, the file removed once it is let go of or aborted, and
// what earlier tabs left removed at the next start, but never a file another tab still holds.
// The directory and the Web Locks are fakes with the browser's shape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RECORDINGS_DIR, browserStorageSink, chooseRecordingSink } from '../../../assets/js/recorder.js';

const quiet = () => {
  const warn = console.warn;
  console.warn = () => {};
  return () => { console.warn = warn; };
};

/** A FileSystemDirectoryHandle of files kept as arrays of chunks. */
function fakeDir({ writable = true } = {}) {
  /** @type {Map<string, { chunks: any[], open: boolean }>} */
  const files = new Map();
  return {
    files,
    async getFileHandle(name, { create = false } = {}) {
      if (!files.has(name)) {
        if (!create) throw Object.assign(new Error(name), { name: 'NotFoundError' });
        files.set(name, { chunks: [], open: false });
      }
      const file = files.get(name);
      const handle = {
        getFile: async () => new Blob(file.chunks, { type: 'video/webm' }),
      };
      if (writable) {
        handle.createWritable = async () => {
          file.open = true;
          file.chunks = [];
          return {
            // Each write settles a moment later, as a real one does.
            write: (chunk) => new Promise((resolve) => setTimeout(() => { file.chunks.push(chunk); resolve(); }, 1)),
            close: async () => { file.open = false; },
            abort: async () => { file.open = false; file.chunks = []; },
          };
        };
      }
      return handle;
    },
    async removeEntry(name) {
      if (!files.delete(name)) throw Object.assign(new Error(name), { name: 'NotFoundError' });
    },
    async *keys() {
      yield* [...files.keys()];
    },
  };
}

/** `navigator.storage` whose private file system root holds `dir` as RECORDINGS_DIR. */
function fakeStorage(dir) {
  return {
    getDirectory: async () => ({
      getDirectoryHandle: async (name, { create = false } = {}) => {
        assert.equal(name, RECORDINGS_DIR);
        assert.ok(create);
        return dir;
      },
    }),
  };
}

/** `navigator.locks`, for the requests recorder.js makes; `held` is every lock taken now. */
function fakeLocks() {
  const held = new Set();
  return {
    held,
    async request(name, options, callback) {
      if (typeof options === 'function') [options, callback] = [{}, options];
      if (held.has(name)) {
        if (options.ifAvailable) return callback(null);
        throw new Error(`${name} is held: the fake does not queue`);
      }
      held.add(name);
      try {
        return await callback({ name });
      } finally {
        held.delete(name);
      }
    },
  };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

test('recording sinks: the picked file first, else the private file system, else memory', async () => {
  const restore = quiet();
  try {
    const picked = { write: async () => {}, close: async () => {}, abort: async () => {} };
    const dir = fakeDir();
    const navigator = { storage: fakeStorage(dir), locks: fakeLocks() };
    assert.equal((await chooseRecordingSink(picked, navigator)).stored, 'file', 'the person chose where');
    assert.equal(dir.files.size, 0, 'nothing made in the private file system then');
    assert.equal((await chooseRecordingSink(null, navigator)).stored, 'browser');
    assert.equal((await chooseRecordingSink(null, {})).stored, 'memory', 'no OPFS at all');
    const denied = { getDirectory: async () => { throw Object.assign(new Error('private window'), { name: 'SecurityError' }); } };
    assert.equal((await chooseRecordingSink(null, { storage: denied, locks: fakeLocks() })).stored, 'memory', 'OPFS refused');
    assert.equal((await chooseRecordingSink(null, { storage: fakeStorage(fakeDir()) })).stored, 'memory', 'no Web Locks');
  } finally {
    restore();
  }
});

test('recording sinks: where the main thread cannot write OPFS (Safari), memory, and the empty file is not left', async () => {
  const restore = quiet();
  try {
    const dir = fakeDir({ writable: false });
    const locks = fakeLocks();
    assert.equal(await browserStorageSink(fakeStorage(dir), locks, 'a.webm'), null);
    assert.equal((await chooseRecordingSink(null, { storage: fakeStorage(dir), locks })).stored, 'memory');
    assert.deepEqual([...dir.files.keys()], []);
    assert.equal(locks.held.size, 0, 'no lock kept');
  } finally {
    restore();
  }
});

test('recording sinks: OPFS: chunks in the order they came, the finished File at close, removed once let go of', async () => {
  const dir = fakeDir();
  const locks = fakeLocks();
  const sink = await browserStorageSink(fakeStorage(dir), locks, 'a.webm');
  assert.ok(sink);
  assert.equal(sink.stored, 'browser');
  assert.ok(dir.files.get('a.webm').open, 'written as it records');
  assert.equal(locks.held.size, 1, 'held by this page');
  // Chained as MeetingRecorder chains them: each write after the one before.
  let writing = Promise.resolve();
  for (const part of ['one ', 'two ', 'three']) writing = writing.then(() => sink.write(new Blob([part])));
  await writing;
  const file = await sink.close();
  assert.ok(file instanceof Blob);
  assert.equal(await file.text(), 'one two three');
  assert.equal(file.type, 'video/webm');
  assert.ok(dir.files.has('a.webm'), 'kept while it is offered');
  assert.equal(locks.held.size, 1, 'still held while offered');
  await sink.dispose();
  assert.ok(!dir.files.has('a.webm'), 'removed once let go of');
  assert.equal(locks.held.size, 0);
  await sink.dispose();
});

test('recording sinks: OPFS: a recording aborted (refused, or stopped before its first frame) leaves no file', async () => {
  const dir = fakeDir();
  const locks = fakeLocks();
  const sink = await browserStorageSink(fakeStorage(dir), locks, 'a.webm');
  await sink.write(new Blob(['x']));
  await sink.abort();
  assert.deepEqual([...dir.files.keys()], []);
  assert.equal(locks.held.size, 0);
});

test('recording sinks: OPFS: a close that fails removes the file, and says so', async () => {
  const dir = fakeDir();
  const locks = fakeLocks();
  const original = dir.getFileHandle;
  dir.getFileHandle = async (...args) => {
    const handle = await original.apply(dir, args);
    const create = handle.createWritable;
    handle.createWritable = async () => ({ ...(await create()), close: async () => { throw new Error('disk full'); } });
    return handle;
  };
  const sink = await browserStorageSink(fakeStorage(dir), locks, 'a.webm');
  const restore = quiet();
  try {
    await assert.rejects(sink.close(), /disk full/);
  } finally {
    restore();
  }
  assert.deepEqual([...dir.files.keys()], []);
  assert.equal(locks.held.size, 0);
});

test('recording sinks: OPFS: what closed or crashed tabs left goes at the next start; files other tabs hold stay', async () => {
  const dir = fakeDir();
  const locks = fakeLocks();
  dir.files.set('crashed.webm', { chunks: ['old'], open: false });
  dir.files.set('crashed.webm.crswap', { chunks: ['old'], open: false });
  dir.files.set('other-tab.webm', { chunks: [], open: false });
  // Chromium writes to a swap file beside the file until close.
  dir.files.set('other-tab.webm.crswap', { chunks: ['theirs'], open: true });
  // Another tab records, or offers its file: it holds the lock of that name.
  let releaseOther;
  const other = locks.request('videomeet-recording/other-tab', () => new Promise((r) => { releaseOther = r; }));
  await settle();
  // And this page still offers its previous recording.
  const previous = await browserStorageSink(fakeStorage(dir), locks, 'previous.webm');
  await previous.close();

  const sink = await browserStorageSink(fakeStorage(dir), locks, 'next.webm');
  assert.ok(sink);
  assert.deepEqual([...dir.files.keys()].sort(), ['next.webm', 'other-tab.webm', 'other-tab.webm.crswap', 'previous.webm']);
  await previous.dispose();
  assert.deepEqual([...dir.files.keys()].sort(), ['next.webm', 'other-tab.webm', 'other-tab.webm.crswap']);

  // The other tab closes without letting go of its file: the lock goes with it.
  releaseOther();
  await other;
  await sink.abort();
  const third = await browserStorageSink(fakeStorage(dir), locks, 'third.webm');
  assert.deepEqual([...dir.files.keys()], ['third.webm']);
  await third.abort();
});
