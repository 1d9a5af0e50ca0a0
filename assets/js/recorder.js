// Recording the meeting in this browser, with everyone's knowledge. Nothing goes to the server
// but the seat's `recording` flag (docs/PROTOCOL.md, `update`): the recorder asks, the server
// tells everyone and sends the recorder its own copy, and only then does the MediaRecorder start,
// so every page shows the banner before the first frame. The host can turn recording off for the
// room, which stops a recording under way.
//
// `RecordingFlow` is that protocol as a pure state machine (node tests drive it); `MeetingRecorder`
// is the browser part: the grid drawn on a canvas, everyone's audio mixed with Web Audio, one
// MediaRecorder, and its chunks written out as they come: to the person's file where the browser
// offers the save picker, else to the origin's private file system, else kept in memory up to
// MEMORY_LIMIT_MS.

/** Without a file to write to, a recording is kept in memory for at most this long. */
export const MEMORY_LIMIT_MS = 60 * 60 * 1000;
/**
 * From the server's go-ahead to the first frame. The go-ahead is queued to every socket of the
 * room at once, under the room lock; this second lets the pages whose copy is a moment behind
 * show the banner too before anything is recorded.
 */
export const LEAD_MS = 1000;
/** MediaRecorder hands over a chunk this often; each is written out at once. */
export const TIMESLICE_MS = 1000;
const VIDEO_BITS = 1_000_000;
const AUDIO_BITS = 64_000;
const WIDTH = 1280;
const HEIGHT = 720;
const FPS = 15;

/**
 * @typedef {'idle' | 'asking' | 'recording' | 'stopping'} RecordingPhase
 *   `asking`: `recording: true` sent, the server's copy not back yet; `stopping`: the recorder is
 *   writing out its last chunk.
 * @typedef {{ do: 'send', recording: boolean }
 *   | { do: 'start-recorder' }
 *   | { do: 'stop-recorder' }
 *   | { do: 'discard' }
 *   | { do: 'say', key: string }} RecordingStep
 *   `send`: tell the server; `start-recorder` / `stop-recorder`: the MediaRecorder; `discard`:
 *   give back the file chosen for a recording that never started; `say`: a message for the person.
 */

/** The recording protocol of this page, as data: events in, steps out. */
export class RecordingFlow {
  constructor() {
    /** @type {RecordingPhase} */
    this.phase = 'idle';
  }

  /** Whether the page records or is about to (the toolbar shows Stop recording). */
  get active() {
    return this.phase === 'asking' || this.phase === 'recording';
  }

  /**
   * The person pressed Start recording.
   * @param {boolean} allowed what the room said last (the server decides; this spares a refusal)
   * @returns {RecordingStep[]}
   */
  start(allowed) {
    if (this.phase !== 'idle') return [];
    if (!allowed) return [{ do: 'discard' }, { do: 'say', key: 'errRecordingOff' }];
    this.phase = 'asking';
    return [{ do: 'send', recording: true }];
  }

  /**
   * The server's word on this seat's `recording` (this seat's own `peer-updated`).
   * @param {boolean} recording
   * @returns {RecordingStep[]}
   */
  confirmed(recording) {
    switch (this.phase) {
      case 'asking':
        // A `false` here is the echo of an earlier stop, still on its way: wait for the answer.
        if (!recording) return [];
        this.phase = 'recording';
        return [{ do: 'start-recorder' }];
      case 'recording':
        if (recording) return [];
        // Not asked for by this page: the host turned recording off.
        this.phase = 'stopping';
        return [{ do: 'stop-recorder' }, { do: 'say', key: 'recordingStoppedByHost' }];
      default:
        // The server thinks this page records, and it does not: put that right.
        return recording ? [{ do: 'send', recording: false }] : [];
    }
  }

  /** The server refused `recording: true` (`recording_off`). @returns {RecordingStep[]} */
  refused() {
    if (this.phase === 'asking') {
      this.phase = 'idle';
      return [{ do: 'discard' }, { do: 'say', key: 'errRecordingOff' }];
    }
    if (this.phase === 'recording') {
      // Said again after a reconnect, and the host turned it off meanwhile.
      this.phase = 'stopping';
      return [{ do: 'stop-recorder' }, { do: 'say', key: 'recordingStoppedByHost' }];
    }
    return [];
  }

  /** The person pressed Stop recording. @returns {RecordingStep[]} */
  stop() {
    if (this.phase === 'asking') {
      this.phase = 'idle';
      return [{ do: 'send', recording: false }, { do: 'discard' }];
    }
    if (this.phase !== 'recording') return [];
    this.phase = 'stopping';
    return [{ do: 'stop-recorder' }, { do: 'send', recording: false }];
  }

  /**
   * The recorder stopped by itself (an error, the memory limit): the others must stop seeing it.
   * @param {string} key what to tell the person
   * @returns {RecordingStep[]}
   */
  failed(key) {
    if (this.phase !== 'recording') return [];
    this.phase = 'stopping';
    return [{ do: 'stop-recorder' }, { do: 'send', recording: false }, { do: 'say', key }];
  }

  /** The last chunk is written: the file is ready. @returns {RecordingStep[]} */
  finished() {
    if (this.phase === 'stopping') this.phase = 'idle';
    return [];
  }

  /**
   * A new socket took the seat back (resume): say again that this page records, which also
   * learns whether the host turned recording off meanwhile.
   * @returns {RecordingStep[]}
   */
  reconnected() {
    return this.active ? [{ do: 'send', recording: true }] : [];
  }

  /** The page leaves the meeting: keep what was recorded. @returns {RecordingStep[]} */
  leave() {
    const was = this.phase;
    this.phase = was === 'recording' || was === 'stopping' ? 'stopping' : 'idle';
    if (was === 'recording') return [{ do: 'stop-recorder' }];
    if (was === 'asking') return [{ do: 'discard' }];
    return [];
  }
}

/**
 * Where chunks go, and what becomes of the finished file.
 * @typedef {'file' | 'browser' | 'memory'} RecordingStore
 *   `file`: the person's own file, chosen in the save picker; `browser`: a file of the origin's
 *   private file system, offered for saving at the end; `memory`: Blobs, for MEMORY_LIMIT_MS.
 * @typedef {{ write: (chunk: Blob) => Promise<void>, close: () => Promise<Blob | null>,
 *             abort: () => Promise<void>, dispose: () => Promise<void>,
 *             stored: RecordingStore }} RecordingSink
 *   `close` gives the file to offer (null when it is in the person's file already); `abort`
 *   drops a recording that will not be offered; `dispose` lets go of what `close` gave, once it
 *   is no longer on offer.
 */

/** The directory of the origin's private file system that recordings are written to. */
export const RECORDINGS_DIR = 'recordings';

/** @param {any} writable a FileSystemWritableFileStream @returns {RecordingSink} */
export function fileSink(writable) {
  return {
    stored: 'file',
    write: (chunk) => writable.write(chunk),
    close: async () => { await writable.close(); return null; },
    abort: () => writable.abort().catch(() => {}),
    dispose: async () => {},
  };
}

/** @returns {RecordingSink} */
export function memoryRecordingSink(type = 'video/webm') {
  /** @type {Blob[]} */
  let parts = [];
  return {
    stored: 'memory',
    write: async (chunk) => { parts.push(chunk); },
    close: async () => new Blob(parts, { type }),
    abort: async () => { parts = []; },
    dispose: async () => { parts = []; },
  };
}

/**
 * Where a new recording goes, best first: the file the person chose in the save picker (where
 * it was offered), else the browser's private file system, else memory.
 * @param {any | null} writable the picked file's FileSystemWritableFileStream
 * @param {{ storage?: any, locks?: any }} browser `navigator`
 * @returns {Promise<RecordingSink>}
 */
export async function chooseRecordingSink(writable, { storage, locks } = {}) {
  if (writable) return fileSink(writable);
  return (await browserStorageSink(storage, locks)) ?? memoryRecordingSink();
}

/** A name no other recording of this origin has. */
export function recordingFileName(now = Date.now()) {
  return `${now}-${Math.random().toString(36).slice(2, 10)}.webm`;
}

/**
 * The Web Lock of a file of RECORDINGS_DIR. By the name up to its first dot, so that the swap
 * file Chromium writes beside it until close (`<name>.crswap`) is held with it.
 * @param {string} name
 */
const lockName = (name) => `videomeet-recording/${name.split('.')[0]}`;

/**
 * A file of the origin's private file system (OPFS), so that an hour's chunks go to disk as
 * they come and the finished File is disk-backed too. Null where this page cannot write one:
 * no OPFS (Firefox's private windows), or no createWritable on the main thread (Safari).
 * Each file is held under a Web Lock by its page while it is written or offered: the lock goes
 * with the page, however it ends, so what a closed or crashed tab left is told apart from what
 * another tab still uses, and removed here.
 * @param {any} storage `navigator.storage`
 * @param {any} locks `navigator.locks`
 * @returns {Promise<RecordingSink | null>}
 */
export async function browserStorageSink(storage, locks, name = recordingFileName()) {
  if (typeof storage?.getDirectory !== 'function' || typeof locks?.request !== 'function') return null;
  let dir;
  try {
    const root = await storage.getDirectory();
    dir = await root.getDirectoryHandle(RECORDINGS_DIR, { create: true });
  } catch (err) {
    console.warn('no private file system to record to', err);
    return null;
  }
  await removeLeftovers(dir, locks);
  const release = await hold(locks, lockName(name));
  try {
    const handle = await dir.getFileHandle(name, { create: true });
    if (typeof handle.createWritable !== 'function') throw new Error('createWritable is not available here');
    return opfsSink(dir, name, handle, await handle.createWritable(), release);
  } catch (err) {
    console.warn('cannot write to the private file system', err);
    await dir.removeEntry(name).catch(() => {});
    release();
    return null;
  }
}

/**
 * Takes the Web Lock `name`, and keeps it until the function it resolves with is called.
 * @param {any} locks
 * @param {string} name
 * @returns {Promise<() => void>}
 */
function hold(locks, name) {
  return new Promise((granted) => {
    locks.request(name, () => new Promise((release) => granted(() => release(undefined))))
      .catch(() => granted(() => {}));
  });
}

/**
 * Removes the recordings no page holds any more.
 * @param {any} dir RECORDINGS_DIR
 * @param {any} locks
 */
export async function removeLeftovers(dir, locks) {
  const names = [];
  try {
    for await (const name of dir.keys()) names.push(name);
  } catch (err) {
    console.warn('cannot list earlier recordings', err);
    return;
  }
  for (const name of names) {
    await locks.request(lockName(name), { ifAvailable: true }, async (/** @type {unknown} */ lock) => {
      if (lock) await dir.removeEntry(name).catch(() => {});
    }).catch(() => {});
  }
}

/**
 * @param {any} dir RECORDINGS_DIR
 * @param {string} name
 * @param {any} handle its FileSystemFileHandle
 * @param {any} writable
 * @param {() => void} release its Web Lock
 * @returns {RecordingSink}
 */
export function opfsSink(dir, name, handle, writable, release) {
  let removed = false;
  const remove = async () => {
    if (removed) return;
    removed = true;
    // Released even if the file stays (open in a download, on Windows): the next recording's
    // clean-up takes it then.
    await dir.removeEntry(name).catch((/** @type {unknown} */ err) => console.warn('recording file not removed', err));
    release();
  };
  return {
    stored: 'browser',
    write: (chunk) => writable.write(chunk),
    close: async () => {
      try {
        await writable.close();
      } catch (err) {
        await remove();
        throw err;
      }
      return handle.getFile();
    },
    abort: async () => {
      await writable.abort().catch(() => {});
      await remove();
    },
    dispose: remove,
  };
}

/**
 * One tile to draw and hear.
 * @typedef {{ id: string, name: string, video: HTMLVideoElement, showsVideo: boolean,
 *             audio: MediaStreamTrack[] }} RecordingSource
 */

/** The MIME type this browser records in, WebM first. */
export function recordingType() {
  const MR = globalThis.MediaRecorder;
  if (!MR) return null;
  for (const type of ['video/webm;codecs=vp8,opus', 'video/webm;codecs=vp9,opus', 'video/webm', 'video/mp4']) {
    if (MR.isTypeSupported(type)) return type;
  }
  return '';
}

/**
 * Cells of a `count`-tile grid in a WIDTH x HEIGHT frame.
 * @param {number} count
 * @returns {Array<{ x: number, y: number, w: number, h: number }>}
 */
export function layout(count, width = WIDTH, height = HEIGHT) {
  const cols = Math.ceil(Math.sqrt(Math.max(1, count)));
  const rows = Math.ceil(Math.max(1, count) / cols);
  const w = width / cols;
  const h = height / rows;
  const cells = [];
  for (let i = 0; i < count; i++) {
    const row = Math.floor(i / cols);
    // The last row's tiles are centred.
    const inRow = row === rows - 1 ? count - row * cols : cols;
    const offset = (width - inRow * w) / 2;
    cells.push({ x: offset + (i % cols) * w, y: row * h, w, h });
  }
  return cells;
}

/**
 * The meeting as one video: the tiles on a canvas, everyone's audio mixed, one MediaRecorder.
 * Events: `error` {key} (it stopped by itself: the memory limit, or the recorder failed).
 */
export class MeetingRecorder extends EventTarget {
  /**
   * @param {{ sources: () => RecordingSource[], sink: RecordingSink, now?: () => number }} options
   *   `sources` is asked on every frame, so people who come and go are drawn and heard.
   */
  constructor({ sources, sink, now = () => Date.now() }) {
    super();
    this.sources = sources;
    this.sink = sink;
    this.now = now;
    this.canvas = document.createElement('canvas');
    this.canvas.width = WIDTH;
    this.canvas.height = HEIGHT;
    const ctx = this.canvas.getContext('2d');
    if (!ctx) throw new Error('no 2d canvas');
    this.ctx = ctx;
    this.audio = new AudioContext();
    this.mix = this.audio.createMediaStreamDestination();
    /** Audio nodes by track id. @type {Map<string, MediaStreamAudioSourceNode>} */
    this.inputs = new Map();
    /** Chunks are written one after another, as they come. */
    this.writing = Promise.resolve();
    this.startedAt = 0;
    /** @type {MediaRecorder | null} */
    this.recorder = null;
    this.timer = 0;
    /** @type {ReturnType<typeof setTimeout> | 0} */
    this.leadTimer = 0;
    this.bytes = 0;
  }

  /** Starts drawing now, and recording after `lead` ms (LEAD_MS). */
  start(lead = LEAD_MS) {
    const type = recordingType();
    if (type === null) throw new Error('MediaRecorder is not available');
    this.audio.resume().catch(() => {});
    this.#draw();
    // A timer, not requestAnimationFrame: frames keep coming while the tab is in the background.
    this.timer = setInterval(() => this.#draw(), 1000 / FPS);
    this.leadTimer = setTimeout(() => {
      this.leadTimer = 0;
      try {
        this.#record(type);
      } catch (err) {
        console.warn('recorder did not start', err);
        this.#fail('recordingFailed');
      }
    }, lead);
  }

  /** @param {string} type */
  #record(type) {
    const video = this.canvas.captureStream(FPS).getVideoTracks()[0];
    const stream = new MediaStream([video, ...this.mix.stream.getAudioTracks()]);
    const recorder = new MediaRecorder(stream, {
      ...(type ? { mimeType: type } : {}),
      videoBitsPerSecond: VIDEO_BITS,
      audioBitsPerSecond: AUDIO_BITS,
    });
    this.recorder = recorder;
    this.type = recorder.mimeType || type || 'video/webm';
    recorder.ondataavailable = (event) => {
      if (!event.data.size) return;
      this.bytes += event.data.size;
      this.writing = this.writing
        .then(() => this.sink.write(event.data))
        .catch((err) => {
          console.warn('recording write failed', err);
          this.#fail('recordingWriteFailed');
        });
      if (this.sink.stored === 'memory' && this.now() - this.startedAt >= MEMORY_LIMIT_MS) this.#fail('recordingMemoryLimit');
    };
    recorder.onerror = () => this.#fail('recordingFailed');
    this.startedAt = this.now();
    recorder.start(TIMESLICE_MS);
  }

  /** @param {string} key */
  #fail(key) {
    this.dispatchEvent(new CustomEvent('error', { detail: { key } }));
  }

  /** Seconds recorded so far. */
  get seconds() {
    return this.startedAt ? Math.floor((this.now() - this.startedAt) / 1000) : 0;
  }

  /**
   * Stops and writes out the last chunk; resolves with the file to offer for saving (null when
   * it went to the person's own file, or when nothing was recorded).
   * @returns {Promise<Blob | null>}
   */
  async stop() {
    clearInterval(this.timer);
    if (this.leadTimer) clearTimeout(this.leadTimer);
    const recorder = this.recorder;
    this.recorder = null;
    if (recorder && recorder.state !== 'inactive') {
      await new Promise((resolve) => {
        recorder.addEventListener('stop', resolve, { once: true });
        recorder.stop();
      });
    }
    for (const track of recorder?.stream.getTracks() ?? []) track.stop();
    for (const node of this.inputs.values()) node.disconnect();
    this.inputs.clear();
    this.audio.close().catch(() => {});
    await this.writing;
    if (this.bytes === 0) {
      // Stopped before the first frame: there is nothing to offer.
      await this.sink.abort();
      return null;
    }
    return this.sink.close();
  }

  /** Whether anything was recorded. */
  get recorded() {
    return this.bytes > 0;
  }

  /** Draws the tiles once, and follows who is heard. */
  #draw() {
    const sources = this.sources();
    this.#hear(sources);
    const { ctx } = this;
    ctx.fillStyle = '#0d111b';
    ctx.fillRect(0, 0, WIDTH, HEIGHT);
    const cells = layout(sources.length);
    sources.forEach((source, i) => {
      const { x, y, w, h } = cells[i];
      const pad = 4;
      ctx.fillStyle = '#1e2536';
      ctx.fillRect(x + pad, y + pad, w - 2 * pad, h - 2 * pad);
      const video = source.video;
      if (source.showsVideo && video.videoWidth > 0) {
        // Fitted whole (letterboxed), as the tile shows a shared screen.
        const scale = Math.min((w - 2 * pad) / video.videoWidth, (h - 2 * pad) / video.videoHeight);
        const vw = video.videoWidth * scale;
        const vh = video.videoHeight * scale;
        ctx.drawImage(video, x + (w - vw) / 2, y + (h - vh) / 2, vw, vh);
      } else {
        ctx.fillStyle = '#2b3449';
        ctx.beginPath();
        ctx.arc(x + w / 2, y + h / 2, Math.min(w, h) / 6, 0, 2 * Math.PI);
        ctx.fill();
        ctx.fillStyle = '#e7ebf3';
        ctx.font = `600 ${Math.round(Math.min(w, h) / 7)}px system-ui, sans-serif`;
        ctx.textAlign = 'center';
        ctx.textBaseline = 'middle';
        ctx.fillText((source.name.trim()[0] ?? '?').toUpperCase(), x + w / 2, y + h / 2);
      }
      ctx.font = '600 20px system-ui, sans-serif';
      ctx.textAlign = 'left';
      ctx.textBaseline = 'bottom';
      const label = source.name;
      const width = ctx.measureText(label).width;
      ctx.fillStyle = 'rgba(8, 11, 20, .7)';
      ctx.fillRect(x + 14, y + h - 46, width + 20, 32);
      ctx.fillStyle = '#ffffff';
      ctx.fillText(label, x + 24, y + h - 20);
    });
  }

  /** Connects every live audio track of the sources to the mix, and lets go of the others. @param {RecordingSource[]} sources */
  #hear(sources) {
    const live = new Map();
    for (const source of sources) {
      for (const track of source.audio) if (track.readyState === 'live') live.set(track.id, track);
    }
    for (const [id, node] of this.inputs) {
      if (!live.has(id)) {
        node.disconnect();
        this.inputs.delete(id);
      }
    }
    for (const [id, track] of live) {
      if (this.inputs.has(id)) continue;
      const node = this.audio.createMediaStreamSource(new MediaStream([track]));
      node.connect(this.mix);
      this.inputs.set(id, node);
    }
  }
}
