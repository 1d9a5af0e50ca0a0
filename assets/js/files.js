// Files sent peer to peer over each link's data channel (peers.js makes it, negotiated, with the
// first offer). No DOM: the page (ui/files.js) shows transfers and asks where to write; this
// module moves bytes, keeps the pace and checks them. Node tests drive it over a pair of fake
// channels.
//
// On the channel, text messages are JSON control messages and binary messages are chunks:
//
//   sender → receiver   {"t":"offer","id":1,"name":"a.pdf","size":3145728,"type":"application/pdf"}
//   receiver → sender   {"t":"accept","id":1}  or  {"t":"decline","id":1}
//   sender → receiver   binary: 4-byte big-endian id, then up to CHUNK_BYTES of the file
//   sender → receiver   {"t":"block","id":1,"index":0,"sha256":"…"}   after each BLOCK_BYTES
//   receiver → sender   {"t":"ack","id":1,"index":0}                 once that block is written
//   sender → receiver   {"t":"end","id":1,"sha256":"…"}              the whole file's digest
//   receiver → sender   {"t":"done","id":1,"ok":true}
//   either side         {"t":"cancel","id":1} (sender) / {"t":"abort","id":1} (receiver)
//
// Ids are the sender's; messages from the sender name its outgoing transfers, messages from the
// receiver name the transfer it is receiving, so the two directions never mix up an id.
//
// Memory does not grow with the file: the sender reads one block at a time and keeps at most
// WINDOW_BLOCKS blocks unacknowledged, and the channel's buffer under HIGH_WATER
// (bufferedAmountLowThreshold wakes it); the receiver holds one block until it is checked and
// written. The file's digest is SHA-256 (crypto.subtle) over the concatenated SHA-256 digests of
// its blocks: each block is checked as it arrives, and the list of them at the end.

/** Bytes of file in one binary message: small enough for every browser's SCTP message limit. */
export const CHUNK_BYTES = 16 * 1024;
/** Bytes per checked block (read, hashed, acknowledged and written as one). */
export const BLOCK_BYTES = 1024 * 1024;
/** Blocks the sender may have in flight before the receiver acknowledges one. */
export const WINDOW_BLOCKS = 4;
/** The channel's buffer is filled up to this, then the sender waits for it to drain... */
export const HIGH_WATER = 1024 * 1024;
/** ...to this (bufferedAmountLowThreshold). */
export const LOW_WATER = 256 * 1024;
/**
 * Where the browser cannot stream to disk (no File System Access API: Firefox, Safari), a
 * received file is held in memory until saved; larger offers can only be declined.
 */
export const MEMORY_CAP_BYTES = 256 * 1024 * 1024;
/**
 * Over a TURN relay a file is paced to this many bytes a second (4 Mbit/s): the relay's
 * per-allocation budget (10 Mbit/s by default, both ways) must keep room for the call's audio
 * and video, which share the allocation. Directly, SCTP's own congestion control is the pace.
 */
export const RELAYED_BYTES_PER_SEC = 500_000;
/** The longest file name shown or kept. */
const MAX_NAME = 255;
const HEADER_BYTES = 4;

/**
 * A binary message: the transfer id, then the bytes.
 * @param {number} id
 * @param {Uint8Array} bytes
 */
export function encodeChunk(id, bytes) {
  const out = new Uint8Array(HEADER_BYTES + bytes.byteLength);
  new DataView(out.buffer).setUint32(0, id >>> 0);
  out.set(bytes, HEADER_BYTES);
  return out;
}

/**
 * @param {ArrayBuffer} data
 * @returns {{ id: number, bytes: Uint8Array } | null} null for a message too short to be one
 */
export function decodeChunk(data) {
  if (!(data instanceof ArrayBuffer) || data.byteLength < HEADER_BYTES) return null;
  return { id: new DataView(data).getUint32(0), bytes: new Uint8Array(data, HEADER_BYTES) };
}

/**
 * The blocks of a file of `size` bytes, each as [start, end), and each block's chunks likewise.
 * @param {number} size
 * @param {number} [block]
 * @returns {Array<[number, number]>}
 */
export function ranges(size, block = BLOCK_BYTES) {
  /** @type {Array<[number, number]>} */
  const out = [];
  for (let start = 0; start < size; start += block) out.push([start, Math.min(size, start + block)]);
  return out;
}

/** @param {ArrayBuffer | Uint8Array} bytes */
export async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', /** @type {BufferSource} */ (bytes)));
  return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * The file's digest from its blocks' digests, in order (see the header).
 * @param {string[]} blockDigests hex
 */
export async function fileDigest(blockDigests) {
  return sha256Hex(new TextEncoder().encode(blockDigests.join('\n')));
}

/**
 * A control message as received, checked; null for anything malformed or unknown (ignored).
 * @param {string} text
 * @returns {{ t: string, id: number, [field: string]: any } | null}
 */
export function parseControl(text) {
  let msg;
  try {
    msg = JSON.parse(text);
  } catch {
    return null;
  }
  if (!msg || typeof msg !== 'object' || !Number.isInteger(msg.id) || msg.id < 0 || msg.id > 0xffffffff) return null;
  switch (msg.t) {
    case 'offer':
      if (typeof msg.name !== 'string' || !Number.isSafeInteger(msg.size) || msg.size < 0) return null;
      return { t: 'offer', id: msg.id, name: cleanName(msg.name), size: msg.size, type: typeof msg.type === 'string' ? msg.type.slice(0, 100) : '' };
    case 'block':
      if (!Number.isInteger(msg.index) || typeof msg.sha256 !== 'string') return null;
      return { t: 'block', id: msg.id, index: msg.index, sha256: msg.sha256 };
    case 'end':
      return typeof msg.sha256 === 'string' ? { t: 'end', id: msg.id, sha256: msg.sha256 } : null;
    case 'ack':
      return Number.isInteger(msg.index) ? { t: 'ack', id: msg.id, index: msg.index } : null;
    case 'done':
      return { t: 'done', id: msg.id, ok: msg.ok === true };
    case 'accept':
    case 'decline':
    case 'cancel':
    case 'abort':
      return { t: msg.t, id: msg.id };
    default:
      return null;
  }
}

/**
 * A file name that is safe to show and to suggest for saving: no path, no control characters.
 * @param {string} name
 */
export function cleanName(name) {
  const base = String(name).split(/[\\/]/).pop() ?? '';
  // eslint-disable-next-line no-control-regex
  const clean = base.replace(/[\u0000-\u001f\u007f\u202a-\u202e\u2066-\u2069]/g, '').trim().slice(0, MAX_NAME);
  return clean || 'file';
}

/**
 * Speed and time left from the bytes done over time: an average over the last few seconds, so
 * the figures settle rather than jump with every chunk.
 */
export class Pace {
  /** @param {number} [windowMs] */
  constructor(windowMs = 3000) {
    this.windowMs = windowMs;
    /** @type {Array<[number, number]>} [time, bytes] */
    this.samples = [];
  }

  /** @param {number} now ms @param {number} bytes done so far */
  add(now, bytes) {
    this.samples.push([now, bytes]);
    while (this.samples.length > 2 && now - this.samples[1][0] > this.windowMs) this.samples.shift();
  }

  /** Bytes a second, or null before there is enough to say. */
  get rate() {
    if (this.samples.length < 2) return null;
    const [t0, b0] = this.samples[0];
    const [t1, b1] = this.samples[this.samples.length - 1];
    return t1 > t0 ? ((b1 - b0) * 1000) / (t1 - t0) : null;
  }

  /** Seconds until `total`, or null. @param {number} total */
  secondsLeft(total) {
    const rate = this.rate;
    const done = this.samples.at(-1)?.[1] ?? 0;
    return rate && rate > 0 ? Math.max(0, (total - done) / rate) : null;
  }
}

/**
 * `1.5 MB`-style sizes (powers of 1000, as file managers show them), in the page's language.
 * @param {number} bytes
 * @param {string} [lang]
 */
export function formatBytes(bytes, lang = 'en') {
  const units = lang === 'ru' ? ['Б', 'КБ', 'МБ', 'ГБ'] : ['B', 'kB', 'MB', 'GB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toLocaleString(lang, { maximumFractionDigits: digits, minimumFractionDigits: digits })} ${units[unit]}`;
}

/**
 * Where a received file goes: written block by block, closed when whole, aborted otherwise.
 * @typedef {{ write: (bytes: Uint8Array) => Promise<void>, close: () => Promise<Blob | null>,
 *             abort: () => Promise<void> }} Sink
 *   `close` resolves with the file for a sink that kept it in memory (to be saved), else null.
 */

/** A sink in memory, as Blob parts (the browser may keep large Blobs on disk). @returns {Sink} */
export function memorySink(type = '') {
  /** @type {Blob[]} */
  let parts = [];
  return {
    write: async (bytes) => { parts.push(new Blob([/** @type {BlobPart} */ (bytes)])); },
    close: async () => new Blob(parts, { type }),
    abort: async () => { parts = []; },
  };
}

/**
 * A sink on a FileSystemWritableFileStream (showSaveFilePicker's): the bytes go to disk as they
 * come, and the file appears under its name only when closed (abort leaves nothing).
 * @param {any} writable
 * @returns {Sink}
 */
export function streamSink(writable) {
  return {
    write: (bytes) => writable.write(bytes),
    close: async () => { await writable.close(); return null; },
    abort: () => writable.abort().catch(() => {}),
  };
}

/**
 * @typedef {'offered' | 'waiting' | 'sending' | 'receiving' | 'checking' | 'done'
 *   | 'declined' | 'cancelled' | 'failed' | 'peer-left'} TransferState
 *   `offered`: the receiver has not answered yet (on its side: it is asked); `waiting`: the
 *   receiver accepted and is choosing where to save; `checking`: all bytes moved, the digest is
 *   being compared; then one of the ends.
 * @typedef {'cancelled-here' | 'cancelled-there' | 'corrupt' | 'channel' | 'write' | null} EndReason
 */

const FINAL = new Set(['done', 'declined', 'cancelled', 'failed', 'peer-left']);

/**
 * One file to one peer or from one peer.
 * Events: `change` (state or progress moved; see the fields).
 */
export class Transfer extends EventTarget {
  /**
   * @param {{ id: number, peer: string, direction: 'out' | 'in', name: string, size: number,
   *           type: string }} fields
   */
  constructor({ id, peer, direction, name, size, type }) {
    super();
    this.id = id;
    this.peer = peer;
    this.direction = direction;
    this.name = name;
    this.size = size;
    this.type = type;
    /** @type {TransferState} */
    this.state = 'offered';
    /** @type {EndReason} */
    this.reason = null;
    /** Bytes through: handed to the channel and drained from its buffer (out), or received (in). */
    this.bytes = 0;
    this.pace = new Pace();
    /** The received file when it was kept in memory (to be saved by the page). @type {Blob | null} */
    this.blob = null;
  }

  get final() {
    return FINAL.has(this.state);
  }

  /** @param {TransferState} state @param {EndReason} [reason] */
  set(state, reason = null) {
    if (this.final) return;
    this.state = state;
    if (reason) this.reason = reason;
    this.#changed();
  }

  /** @param {number} bytes @param {number} now */
  progress(bytes, now) {
    this.bytes = bytes;
    this.pace.add(now, bytes);
    this.#changed();
  }

  #changed() {
    this.dispatchEvent(new CustomEvent('change'));
  }
}

/**
 * The file transfers over one link's data channel, both ways.
 * Events: `offer` {transfer} (a peer offers a file: the page asks the person), `transfer`
 * {transfer} (a transfer of ours began).
 */
export class FileLink extends EventTarget {
  /**
   * @param {{ peer: string, channel: RTCDataChannel, now?: () => number, nextId: () => number,
   *           pace?: () => number | null }} options
   *   `nextId` gives ids unique among this page's outgoing transfers; `pace` the most bytes a
   *   second to send now (null: as fast as the channel goes), asked as the file goes.
   */
  constructor({ peer, channel, now = () => Date.now(), nextId, pace = () => null }) {
    super();
    this.peer = peer;
    this.pace = pace;
    this.channel = channel;
    this.now = now;
    this.nextId = nextId;
    /** @type {Map<number, { transfer: Transfer, file: Blob, acked: number, wake: (() => void) | null }>} */
    this.outgoing = new Map();
    /** @type {Map<number, { transfer: Transfer, sink: Sink | null, block: Uint8Array | null, filled: number, digests: string[], received: number }>} */
    this.incoming = new Map();
    /** Control and chunk messages are handled one after another (checks and writes await). */
    this.queue = Promise.resolve();
    this.closed = false;
    channel.bufferedAmountLowThreshold = LOW_WATER;
    channel.addEventListener('message', (event) => {
      const data = /** @type {MessageEvent} */ (event).data;
      this.queue = this.queue.then(() => this.#receive(data)).catch((err) => console.warn('file channel', this.peer, err));
    });
    channel.addEventListener('close', () => this.end('peer-left'));
  }

  get open() {
    return this.channel.readyState === 'open';
  }

  /** @param {object} msg */
  #control(msg) {
    if (this.channel.readyState !== 'open') return false;
    try {
      this.channel.send(JSON.stringify(msg));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Offers a file to the peer; resolves with its transfer (already under way: it moves when the
   * peer accepts).
   * @param {File | Blob} file
   * @param {string} [name]
   */
  offer(file, name) {
    const transfer = new Transfer({
      id: this.nextId(),
      peer: this.peer,
      direction: 'out',
      name: cleanName(name ?? /** @type {File} */ (file).name ?? 'file'),
      size: file.size,
      type: file.type ?? '',
    });
    this.outgoing.set(transfer.id, { transfer, file, acked: -1, wake: null });
    if (!this.#control({ t: 'offer', id: transfer.id, name: transfer.name, size: transfer.size, type: transfer.type })) {
      transfer.set('failed', 'channel');
    }
    this.dispatchEvent(new CustomEvent('transfer', { detail: { transfer } }));
    return transfer;
  }

  /**
   * The person accepted an offered file: `sink` is where it goes (chosen by the page).
   * @param {Transfer} transfer
   * @param {Sink} sink
   */
  accept(transfer, sink) {
    const entry = this.incoming.get(transfer.id);
    if (!entry || transfer.final) {
      sink.abort();
      return;
    }
    entry.sink = sink;
    transfer.set('receiving');
    transfer.progress(0, this.now());
    this.#control({ t: 'accept', id: transfer.id });
  }

  /** The person is choosing where to save (the sender sees the offer still pending). @param {Transfer} transfer */
  choosing(transfer) {
    transfer.set('waiting');
  }

  /** @param {Transfer} transfer */
  decline(transfer) {
    if (transfer.final) return;
    this.incoming.delete(transfer.id);
    transfer.set('declined');
    this.#control({ t: 'decline', id: transfer.id });
  }

  /** Cancels a transfer of either direction, telling the peer. @param {Transfer} transfer */
  cancel(transfer) {
    if (transfer.final) return;
    if (transfer.direction === 'out') {
      this.#control({ t: 'cancel', id: transfer.id });
      this.#endOutgoing(transfer.id, 'cancelled', 'cancelled-here');
    } else {
      this.#control({ t: 'abort', id: transfer.id });
      this.#endIncoming(transfer.id, 'cancelled', 'cancelled-here');
    }
  }

  /**
   * Ends every transfer of this link: the peer left or the channel closed.
   * @param {'peer-left'} state
   */
  end(state) {
    if (this.closed) return;
    this.closed = true;
    for (const id of [...this.outgoing.keys()]) this.#endOutgoing(id, state, 'channel');
    for (const id of [...this.incoming.keys()]) this.#endIncoming(id, state, 'channel');
  }

  /** @param {number} id @param {TransferState} state @param {EndReason} reason */
  #endOutgoing(id, state, reason) {
    const entry = this.outgoing.get(id);
    if (!entry) return;
    this.outgoing.delete(id);
    entry.transfer.set(state, reason);
    entry.wake?.();
  }

  /** @param {number} id @param {TransferState} state @param {EndReason} reason */
  #endIncoming(id, state, reason) {
    const entry = this.incoming.get(id);
    if (!entry) return;
    this.incoming.delete(id);
    entry.block = null;
    entry.sink?.abort();
    entry.transfer.set(state, reason);
  }

  /** @param {unknown} data */
  async #receive(data) {
    if (this.closed) return;
    if (data instanceof ArrayBuffer) {
      this.#chunk(data);
      return;
    }
    if (typeof data !== 'string') return;
    const msg = parseControl(data);
    if (!msg) return;
    switch (msg.t) {
      case 'offer': {
        if (this.incoming.has(msg.id)) return;
        const transfer = new Transfer({ id: msg.id, peer: this.peer, direction: 'in', name: msg.name, size: msg.size, type: msg.type });
        this.incoming.set(msg.id, { transfer, sink: null, block: null, filled: 0, digests: [], received: 0 });
        this.dispatchEvent(new CustomEvent('offer', { detail: { transfer } }));
        break;
      }
      case 'block':
        await this.#block(msg.id, msg.index, msg.sha256);
        break;
      case 'end':
        await this.#finish(msg.id, msg.sha256);
        break;
      case 'cancel':
        this.#endIncoming(msg.id, 'cancelled', 'cancelled-there');
        break;
      case 'accept': {
        const entry = this.outgoing.get(msg.id);
        if (entry && entry.transfer.state === 'offered') this.#send(entry);
        break;
      }
      case 'decline':
        this.#endOutgoing(msg.id, 'declined', null);
        break;
      case 'abort':
        this.#endOutgoing(msg.id, 'cancelled', 'cancelled-there');
        break;
      case 'ack': {
        const entry = this.outgoing.get(msg.id);
        if (!entry) break;
        entry.acked = Math.max(entry.acked, msg.index);
        entry.wake?.();
        break;
      }
      case 'done': {
        const entry = this.outgoing.get(msg.id);
        if (!entry) break;
        entry.transfer.progress(entry.transfer.size, this.now());
        this.#endOutgoing(msg.id, msg.ok ? 'done' : 'failed', msg.ok ? null : 'corrupt');
        break;
      }
      default:
        break;
    }
  }

  /** @param {ArrayBuffer} data */
  #chunk(data) {
    const chunk = decodeChunk(data);
    if (!chunk) return;
    const entry = this.incoming.get(chunk.id);
    if (!entry || !entry.sink || entry.transfer.state !== 'receiving') return;
    const blockSize = Math.min(BLOCK_BYTES, entry.transfer.size - entry.digests.length * BLOCK_BYTES);
    entry.block ??= new Uint8Array(Math.max(0, blockSize));
    if (entry.filled + chunk.bytes.byteLength > entry.block.byteLength) {
      // More than the offer said: not the file that was offered.
      this.#control({ t: 'abort', id: chunk.id });
      this.#endIncoming(chunk.id, 'failed', 'corrupt');
      return;
    }
    entry.block.set(chunk.bytes, entry.filled);
    entry.filled += chunk.bytes.byteLength;
    entry.received += chunk.bytes.byteLength;
    entry.transfer.progress(entry.received, this.now());
  }

  /** A block is complete: check it, write it, acknowledge it. @param {number} id @param {number} index @param {string} digest */
  async #block(id, index, digest) {
    const entry = this.incoming.get(id);
    if (!entry || !entry.sink || !entry.block) return;
    const block = entry.block.subarray(0, entry.filled);
    const ok = index === entry.digests.length && entry.filled === entry.block.byteLength && (await sha256Hex(block)) === digest;
    if (!ok) {
      this.#control({ t: 'abort', id });
      this.#endIncoming(id, 'failed', 'corrupt');
      return;
    }
    try {
      await entry.sink.write(block);
    } catch (err) {
      console.warn('file write failed', err);
      this.#control({ t: 'abort', id });
      this.#endIncoming(id, 'failed', 'write');
      return;
    }
    if (!this.incoming.has(id)) return;
    entry.digests.push(digest);
    entry.block = null;
    entry.filled = 0;
    this.#control({ t: 'ack', id, index });
  }

  /** Every byte is there: compare the whole, then keep the file. @param {number} id @param {string} digest */
  async #finish(id, digest) {
    const entry = this.incoming.get(id);
    if (!entry || !entry.sink) return;
    const { transfer } = entry;
    transfer.set('checking');
    const whole = await fileDigest(entry.digests);
    if (entry.received !== transfer.size || whole !== digest) {
      this.#control({ t: 'done', id, ok: false });
      this.#endIncoming(id, 'failed', 'corrupt');
      return;
    }
    let blob;
    try {
      blob = await entry.sink.close();
    } catch (err) {
      console.warn('file close failed', err);
      this.#control({ t: 'abort', id });
      this.#endIncoming(id, 'failed', 'write');
      return;
    }
    this.incoming.delete(id);
    transfer.blob = blob;
    this.#control({ t: 'done', id, ok: true });
    transfer.set('done');
  }

  /**
   * Sends an accepted file: block by block, each read, hashed and cut into chunks, within the
   * window of unacknowledged blocks and the channel's high water.
   * @param {{ transfer: Transfer, file: Blob, acked: number, wake: (() => void) | null }} entry
   */
  async #send(entry) {
    const { transfer, file } = entry;
    const channel = this.channel;
    transfer.set('sending');
    transfer.progress(0, this.now());
    const alive = () => this.outgoing.get(transfer.id) === entry && channel.readyState === 'open';
    /** Resolves when the receiver acknowledged a block, the buffer drained, or the transfer ended. */
    const pause = () => new Promise((resolve) => {
      const done = () => {
        entry.wake = null;
        channel.removeEventListener('bufferedamountlow', done);
        clearTimeout(timer);
        resolve(undefined);
      };
      entry.wake = done;
      channel.addEventListener('bufferedamountlow', done);
      // The progress bar moves while the buffer drains, even without an event.
      const timer = setTimeout(done, 250);
    });
    const report = (handed) => transfer.progress(Math.max(0, handed - channel.bufferedAmount), this.now());
    /** @type {string[]} */
    const digests = [];
    let handed = 0;
    // A token bucket for `pace`: up to a quarter second of bytes at once.
    let tokens = 0;
    let filled = this.now();
    const paced = async (/** @type {number} */ bytes) => {
      const rate = this.pace();
      if (!rate) return;
      const now = this.now();
      tokens = Math.min(rate / 4, tokens + ((now - filled) * rate) / 1000);
      filled = now;
      tokens -= bytes;
      if (tokens < 0) await new Promise((resolve) => setTimeout(resolve, (-tokens * 1000) / rate));
    };
    try {
      const blocks = ranges(transfer.size);
      for (let index = 0; index < blocks.length; index++) {
        while (alive() && index - entry.acked > WINDOW_BLOCKS) {
          await pause();
          report(handed);
        }
        if (!alive()) return;
        const [start, end] = blocks[index];
        const block = new Uint8Array(await file.slice(start, end).arrayBuffer());
        const digest = await sha256Hex(block);
        for (let at = 0; at < block.byteLength; at += CHUNK_BYTES) {
          while (alive() && channel.bufferedAmount > HIGH_WATER) {
            await pause();
            report(handed);
          }
          if (!alive()) return;
          const piece = block.subarray(at, Math.min(block.byteLength, at + CHUNK_BYTES));
          await paced(piece.byteLength);
          if (!alive()) return;
          channel.send(encodeChunk(transfer.id, piece));
          handed += piece.byteLength;
        }
        report(handed);
        digests.push(digest);
        channel.send(JSON.stringify({ t: 'block', id: transfer.id, index, sha256: digest }));
      }
      if (!alive()) return;
      channel.send(JSON.stringify({ t: 'end', id: transfer.id, sha256: await fileDigest(digests) }));
      transfer.set('checking');
      while (alive() && channel.bufferedAmount > 0) {
        await pause();
        report(handed);
      }
    } catch (err) {
      console.warn('file send failed', err);
      if (alive()) this.#control({ t: 'cancel', id: transfer.id });
      this.#endOutgoing(transfer.id, 'failed', 'channel');
    }
  }
}

/**
 * The file links of one meeting, by peer id: offers to one peer or to everyone, ends a peer's
 * transfers when it leaves. Events: `offer` {transfer, link} (a peer offers us a file),
 * `transfer` {transfer, link} (one of ours began).
 */
export class FileShare extends EventTarget {
  constructor() {
    super();
    /** @type {Map<string, FileLink>} */
    this.links = new Map();
    let id = 0;
    this.nextId = () => (id = (id + 1) >>> 0 || 1);
  }

  /**
   * A link's data channel exists (peers.js `channel` event): transfers can use it once open.
   * @param {string} peer
   * @param {RTCDataChannel} channel
   * @param {() => number | null} [pace] see FileLink
   */
  attach(peer, channel, pace) {
    this.links.get(peer)?.end('peer-left');
    const link = new FileLink({ peer, channel, nextId: this.nextId, pace });
    for (const type of ['offer', 'transfer']) {
      link.addEventListener(type, (e) => {
        const { transfer } = /** @type {CustomEvent} */ (e).detail;
        this.dispatchEvent(new CustomEvent(type, { detail: { transfer, link } }));
      });
    }
    this.links.set(peer, link);
  }

  /** The peer left (or its link was replaced): its transfers end. @param {string} peer */
  peerGone(peer) {
    this.links.get(peer)?.end('peer-left');
    this.links.delete(peer);
  }

  /**
   * Offers `file` to each of `peers` whose channel is open; returns the ids it could not reach.
   * @param {File} file
   * @param {string[]} peers
   */
  send(file, peers) {
    /** @type {string[]} */
    const unreachable = [];
    for (const peer of peers) {
      const link = this.links.get(peer);
      if (link?.open) link.offer(file);
      else unreachable.push(peer);
    }
    return unreachable;
  }

  /** Every transfer still moving, for the page's warning before it closes. */
  get busy() {
    for (const link of this.links.values()) {
      for (const { transfer } of [...link.outgoing.values(), ...link.incoming.values()]) {
        if (!transfer.final) return true;
      }
    }
    return false;
  }
}
