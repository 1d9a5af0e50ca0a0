// The signaling socket: wire messages of docs/PROTOCOL.md, reconnect with backoff, resume with
// the seat token. Knows nothing of the DOM or of WebRTC.
//
// Every message the client sends is built here (`ClientMsg`), and every code the server sends is
// a constant here (`ErrorCode`, `CloseCode`): the rest of the client names them, never spells
// them, and unit/protocol-doc.test.mjs checks them against docs/PROTOCOL.md's tables.

import { backoffDelay } from './backoff.js';

/**
 * @typedef {{ id: string, name: string, audio: boolean, video: boolean, screen: boolean,
 *             host: boolean, away: boolean, hand: boolean, recording?: boolean }} Peer
 * @typedef {{ from: string, name: string, text: string, ts: number }} ChatLine
 * @typedef {{ audio?: boolean, video?: boolean, screen?: boolean, hand?: boolean, recording?: boolean }} MediaState
 * @typedef {{ name: string, client: string, password?: string, audio: boolean, video: boolean }} JoinFields
 * @typedef {{ id: string, name: string }} KnockInfo someone waiting to be let in, as the host sees it
 */

/** The `code` of a server `error` message (docs/PROTOCOL.md, "error"; src/signaling/protocol.rs `ErrorCode`). */
export const ErrorCode = Object.freeze({
  BAD_REQUEST: 'bad_request',
  ROOM_FULL: 'room_full',
  BAD_PASSWORD: 'bad_password',
  TOO_LARGE: 'too_large',
  SERVER_BUSY: 'server_busy',
  REPLACED: 'replaced',
  REMOVED: 'removed',
  LOCKED: 'locked',
  NOT_HOST: 'not_host',
  RATE_LIMITED: 'rate_limited',
  SLOW_DOWN: 'slow_down',
  TOO_MANY_ROOMS: 'too_many_rooms',
  DENIED: 'denied',
  NO_FREE_SEAT: 'no_free_seat',
  RECORDING_OFF: 'recording_off',
});

/** WebSocket close codes the server sends (docs/PROTOCOL.md, "Close codes"; src/signaling/protocol.rs `close`). */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  POLICY: 1008,
  TOO_LARGE: 1009,
  REPLACED: 4000,
  ROOM_FULL: 4001,
  BAD_PASSWORD: 4002,
  SERVER_BUSY: 4003,
  REMOVED: 4004,
  LOCKED: 4005,
  RATE_LIMITED: 4006,
  TOO_MANY_ROOMS: 4007,
  DENIED: 4008,
});

/** The code a browser reports when a socket is lost without a close frame (never sent by the server). */
export const ABNORMAL_CLOSE = 1006;

/**
 * Close codes after which reconnecting cannot help: the table's "no", and `4002`, which waits for
 * the user to type the password.
 */
/** @type {ReadonlySet<number>} */
export const FINAL_CLOSE_CODES = new Set([
  CloseCode.NORMAL, CloseCode.POLICY, CloseCode.REPLACED, CloseCode.ROOM_FULL,
  CloseCode.BAD_PASSWORD, CloseCode.REMOVED, CloseCode.LOCKED, CloseCode.TOO_MANY_ROOMS,
  CloseCode.DENIED,
]);

/** @param {number} code */
export function shouldReconnect(code) {
  return !FINAL_CLOSE_CODES.has(code);
}

/** The client → server messages of docs/PROTOCOL.md, as plain objects ready for JSON. */
export const ClientMsg = {
  /** @param {JoinFields & { token?: string | null, resume?: boolean }} fields */
  join({ token, resume, ...fields }) {
    /** @type {Record<string, unknown>} */
    const msg = { ...fields, type: 'join' };
    if (token) msg.token = token;
    if (resume !== undefined) msg.resume = resume;
    return msg;
  },
  /** @param {string} to @param {unknown} data */
  signal: (to, data) => ({ type: 'signal', to, data }),
  /** @param {MediaState} state */
  update: (state) => ({ type: 'update', ...state }),
  /** @param {string} text */
  chat: (text) => ({ type: 'chat', text }),
  /** @param {boolean} locked */
  lock: (locked) => ({ type: 'lock', locked }),
  /** @param {string} password '' clears it */
  setPassword: (password) => ({ type: 'set-password', password }),
  /** @param {string} id */
  remove: (id) => ({ type: 'remove', id }),
  /** Host only: "Ask to join". @param {boolean} on */
  askToJoin: (on) => ({ type: 'ask-to-join', on }),
  /** Host only: let a knock in. @param {string} id */
  admit: (id) => ({ type: 'admit', id }),
  /** Host only: turn a knock away. @param {string} id */
  deny: (id) => ({ type: 'deny', id }),
  /** Opaque data for everyone in the room (RoomPayload). @param {unknown} data */
  roomMessage: (data) => ({ type: 'room-message', data }),
  /** Host only: whether anyone may record (false also stops every recording). @param {boolean} allowed */
  allowRecording: (allowed) => ({ type: 'allow-recording', allowed }),
  leave: () => ({ type: 'leave' }),
};

/** The reactions a page offers and accepts (docs/PROTOCOL.md, "Room message payloads"). */
export const REACTIONS = Object.freeze(['👍', '👏', '😂', '❤️', '🎉', '😮']);

/**
 * Payloads of `room-message` (a client convention; the server relays them unread to the room).
 */
export const RoomPayload = {
  /** @param {string} emoji one of REACTIONS */
  reaction: (emoji) => ({ kind: 'reaction', emoji }),
};

/**
 * A room-message payload of RoomPayload's kinds, checked; null for anything else (a kind this
 * client does not know is ignored).
 * @param {unknown} data
 * @returns {{ kind: 'reaction', emoji: string } | null}
 */
export function parseRoomPayload(data) {
  if (!data || typeof data !== 'object') return null;
  const d = /** @type {Record<string, unknown>} */ (data);
  if (d.kind === 'reaction' && typeof d.emoji === 'string' && REACTIONS.includes(d.emoji)) {
    return { kind: 'reaction', emoji: d.emoji };
  }
  return null;
}

/**
 * Payloads of `signal` that are a client convention, not WebRTC (docs/PROTOCOL.md, "Peer
 * payloads"): the server relays them as opaque `data`. Descriptions and candidates are the others.
 */
export const PeerMsg = {
  /**
   * What video I want from you: `full`, `low` (my page is hidden, your tile is off screen, or my
   * link must choose the speaker), `none` (audio-only mode).
   * @param {'full' | 'low' | 'none'} wanted
   */
  videoWanted: (wanted) => ({ kind: 'video-wanted', wanted }),
  /** I paused (or resumed) my video to you because our link cannot carry it. @param {boolean} paused */
  videoPaused: (paused) => ({ kind: 'video-paused', paused }),
};

/**
 * A peer payload of PeerMsg's kinds, checked; null for anything else (descriptions, candidates,
 * or a kind this client does not know, which is ignored rather than an error).
 * @param {unknown} data
 * @returns {{ kind: 'video-wanted', wanted: 'full' | 'low' | 'none' } | { kind: 'video-paused', paused: boolean } | null}
 */
export function parsePeerMsg(data) {
  if (!data || typeof data !== 'object') return null;
  const d = /** @type {Record<string, unknown>} */ (data);
  if (d.kind === 'video-wanted' && (d.wanted === 'full' || d.wanted === 'low' || d.wanted === 'none')) {
    return { kind: 'video-wanted', wanted: d.wanted };
  }
  if (d.kind === 'video-paused' && typeof d.paused === 'boolean') return { kind: 'video-paused', paused: d.paused };
  return null;
}

/**
 * Events (dispatched as CustomEvent with `detail`):
 * - `joined` {you, token, host, peers, ice_servers, locked, password, chat, resumed, reconnected}
 *   (`resumed`: the server gave this socket its old seat back; `reconnected`: this page had
 *   joined before on an earlier socket)
 * - `knocking` {id, token}: the room asks to join; this socket waits for the host
 * - `message` any other server message
 * - `state` {state: 'connecting' | 'open' | 'reconnecting' | 'ended', code?, reason?}
 * - `error` {code, message} from the server
 */
export class Signaling extends EventTarget {
  /**
   * @param {{ url: string, join: () => JoinFields, WebSocketImpl?: typeof WebSocket,
   *           random?: () => number, setTimer?: typeof setTimeout, clearTimer?: typeof clearTimeout }} options
   *   `join` builds the join message each time (it may change between attempts).
   */
  constructor({ url, join, WebSocketImpl = globalThis.WebSocket, random = Math.random,
    setTimer = globalThis.setTimeout.bind(globalThis), clearTimer = globalThis.clearTimeout.bind(globalThis) }) {
    super();
    this.url = url;
    this.buildJoin = join;
    this.WebSocketImpl = WebSocketImpl;
    this.random = random;
    this.setTimer = setTimer;
    this.clearTimer = clearTimer;
    /** @type {WebSocket | null} */
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = false;
    this.hasJoined = false;
    /** The seat token from the last `joined`; sent back to resume the seat. @type {string | null} */
    this.token = null;
  }

  /** Opens the socket and joins. */
  start() {
    this.stopped = false;
    this.#connect();
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  #connect() {
    this.#emit('state', { state: this.hasJoined ? 'reconnecting' : 'connecting' });
    let ws;
    try {
      ws = new this.WebSocketImpl(this.url);
    } catch (err) {
      this.#scheduleReconnect(ABNORMAL_CLOSE, String(err));
      return;
    }
    this.ws = ws;
    // Handlers are attached before anything can await, so no event is missed.
    ws.onopen = () => {
      // A resume keeps the peer connections of this page alive.
      const join = ClientMsg.join({ ...this.buildJoin(), token: this.token, resume: this.hasJoined });
      ws.send(JSON.stringify(join));
    };
    ws.onmessage = (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      if (!msg || typeof msg.type !== 'string') return;
      if (msg.type === 'joined') {
        const reconnected = this.hasJoined;
        this.hasJoined = true;
        this.attempt = 0;
        this.token = msg.token;
        this.#emit('state', { state: 'open' });
        this.#emit('joined', { ...msg, resumed: Boolean(msg.resumed), reconnected });
      } else if (msg.type === 'knocking') {
        // The knock's token takes the knock (and, once admitted, the seat) back after a reconnect.
        this.token = msg.token;
        this.attempt = 0;
        this.#emit('knocking', msg);
      } else if (msg.type === 'admitted') {
        // Let in: the same socket joins again with the knock's token and gets `joined`.
        ws.send(JSON.stringify(ClientMsg.join({ ...this.buildJoin(), token: this.token, resume: false })));
      } else if (msg.type === 'error') {
        this.#emit('error', msg);
      } else {
        this.#emit('message', msg);
      }
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      if (shouldReconnect(event.code)) {
        this.#scheduleReconnect(event.code, event.reason);
      } else {
        this.stopped = true;
        this.#emit('state', { state: 'ended', code: event.code, reason: event.reason });
      }
    };
    ws.onerror = () => { /* onclose follows with the code */ };
  }

  #scheduleReconnect(code, reason) {
    const delay = backoffDelay(this.attempt++, this.random);
    this.#emit('state', { state: 'reconnecting', code, reason, delay });
    this.timer = this.setTimer(() => {
      this.timer = null;
      if (!this.stopped) this.#connect();
    }, delay);
  }

  /** Sends one message if the socket is open; returns whether it went. */
  send(msg) {
    if (this.ws && this.ws.readyState === 1 && this.hasJoined) {
      this.ws.send(JSON.stringify(msg));
      return true;
    }
    return false;
  }

  /** @param {string} to @param {unknown} data */
  signal(to, data) {
    return this.send(ClientMsg.signal(to, data));
  }

  /** @param {MediaState} state */
  update(state) {
    return this.send(ClientMsg.update(state));
  }

  /** @param {string} text already checked by prepareChat */
  chat(text) {
    return this.send(ClientMsg.chat(text));
  }

  /** Host only. @param {boolean} locked */
  lock(locked) {
    return this.send(ClientMsg.lock(locked));
  }

  /** Host only. @param {string} password '' clears it */
  setPassword(password) {
    return this.send(ClientMsg.setPassword(password));
  }

  /** Host only. @param {string} id */
  remove(id) {
    return this.send(ClientMsg.remove(id));
  }

  /** Host only. @param {boolean} on */
  askToJoin(on) {
    return this.send(ClientMsg.askToJoin(on));
  }

  /** Host only. @param {string} id */
  admit(id) {
    return this.send(ClientMsg.admit(id));
  }

  /** Host only. @param {string} id */
  deny(id) {
    return this.send(ClientMsg.deny(id));
  }

  /** @param {unknown} data a RoomPayload */
  roomMessage(data) {
    return this.send(ClientMsg.roomMessage(data));
  }

  /** Host only. @param {boolean} allowed */
  allowRecording(allowed) {
    return this.send(ClientMsg.allowRecording(allowed));
  }

  /** Leaves the room for good: the seat is freed at once. */
  leave() {
    this.stopped = true;
    if (this.timer) this.clearTimer(this.timer);
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState === 1) {
      ws.send(JSON.stringify(ClientMsg.leave()));
      ws.close(CloseCode.NORMAL, 'left');
    } else if (ws) {
      ws.close();
    }
  }

  /**
   * Cuts a pending reconnect delay short and connects at once (used when the page comes back
   * online); does nothing while a socket is open or connecting.
   */
  reconnectNow() {
    if (this.stopped) return;
    if (this.timer) {
      this.clearTimer(this.timer);
      this.timer = null;
      this.#connect();
    }
  }
}
