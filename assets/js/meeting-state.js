// What this page knows about the meeting, as plain data: who is in the room, this seat, the host
// flag, the room's lock and password, raised hands, the active speaker, the chat log and unread
// count. Server messages go in; out come notices saying what changed, in the order the page
// should act on them (like rooms.rs returns what to send). No DOM, no sockets, no WebRTC: the page
// (app.js) turns notices into tiles, links and announcements, and node tests import this as is.

import { EnergyLevel, pickSpeaker } from './audio-level.js';
import { CloseCode, ErrorCode, parseRoomPayload } from './protocol.js';

/**
 * @typedef {import('./protocol.js').Peer} Peer
 * @typedef {import('./protocol.js').ChatLine} ChatLine
 * @typedef {import('./protocol.js').MediaState} MediaState
 * @typedef {import('./protocol.js').KnockInfo} KnockInfo
 * @typedef {{ key: string, vars?: Record<string, string | number> }} Words a message key of i18n.js
 *
 * @typedef {{ type: 'peer', peer: Peer }
 *   | { type: 'peer-gone', id: string }
 *   | { type: 'connect', id: string, initiator: boolean, fresh: boolean }
 *   | { type: 'host', host: boolean }
 *   | { type: 'room', locked: boolean, password: boolean, ask: boolean, recordingAllowed: boolean }
 *   | { type: 'knock', knock: KnockInfo, alert: boolean }
 *   | { type: 'knock-gone', id: string }
 *   | { type: 'knocks-clear' }
 *   | { type: 'reaction', id: string, emoji: string }
 *   | { type: 'self' }
 *   | { type: 'self-recording', recording: boolean }
 *   | { type: 'chat-reset' }
 *   | { type: 'chat-line', line: ChatLine, mine: boolean }
 *   | { type: 'unread', count: number }
 *   | { type: 'announce' } & Words
 *   | { type: 'toast' } & Words
 *   | { type: 'recorders' }
 *   | { type: 'send-update', state: MediaState }} Notice
 *   - `peer`: show this remote seat's tile as given (with a Remove button when `host` is set).
 *   - `peer-gone`: the seat is gone: close its link, remove its tile.
 *   - `connect`: make the link to `id` (`fresh`: replace any link there is; else keep it).
 *   - `host`: this seat became host or stopped being it.
 *   - `self`: this seat's own tile changed (host, hand, recording).
 *   - `self-recording`: the server's word on whether this seat records (recorder.js's flow).
 *   - `recorders`: who records changed (see `recorders()`).
 *   - `send-update`: tell the others this state (a hand raised or lowered; screen and hand
 *     again after a join).
 *   - `knock`: show (host) that someone waits, with Admit and Deny; `alert`: newly, so a page
 *     that is not focused plays a sound and shows a toast. `knock-gone`, `knocks-clear`: off.
 *   - `reaction`: float `emoji` over the tile `id` ('self' for this seat's own).
 *
 * @typedef {{ type: 'joined', you: string, token: string, host: boolean, peers: Peer[],
 *             ice_servers?: RTCIceServer[], locked: boolean, password: boolean, ask?: boolean,
 *             recording_allowed?: boolean, chat?: ChatLine[], knocks?: KnockInfo[], resumed: boolean,
 *             reconnected: boolean }} Joined
 */

export class MeetingState {
  constructor() {
    /** The name this page joins with. */
    this.name = '';
    /** This seat's id, from the last `joined`. */
    this.selfId = '';
    this.joined = false;
    /** Join was pressed and no seat has been given or refused yet. */
    this.waitingForSeat = false;
    /** Left or ended for good: later socket states change nothing. */
    this.ended = false;
    this.host = false;
    this.hand = false;
    this.room = { locked: false, password: false, ask: false, recordingAllowed: true };
    /** Whether the server says this seat records. */
    this.recording = false;
    /** Knocking at the door (the room asks to join): waiting for the host. */
    this.knocking = false;
    /** @type {Map<string, string>} who waits to be let in (the host's list), id → name */
    this.knocks = new Map();
    /** @type {Map<string, Peer>} everyone else in the room, by seat id */
    this.peers = new Map();
    /** @type {RTCIceServer[]} */
    this.iceServers = [];
    /** @type {ChatLine[]} oldest first */
    this.chat = [];
    this.chatOpen = false;
    this.unread = 0;
    /** @type {string | null} the seat highlighted as speaking */
    this.speaker = null;
    /** @type {Map<string, EnergyLevel>} */
    this.levels = new Map();
  }

  /**
   * The answer to our `join` (first, after a reconnect, or a new seat after a server restart).
   * @param {Joined} msg
   * @param {{ screen: boolean }} local what this page is sending now
   * @returns {Notice[]}
   */
  applyJoined(msg, local) {
    /** @type {Notice[]} */
    const out = [];
    if (!msg.resumed) {
      // A new seat: whatever links this page still has belong to seats that are gone; the
      // others start afresh too.
      for (const id of this.peers.keys()) this.#forget(id, out);
    }
    const wasJoined = this.joined;
    this.joined = true;
    this.waitingForSeat = false;
    this.knocking = false;
    this.selfId = msg.you;
    this.iceServers = Array.isArray(msg.ice_servers) ? msg.ice_servers : [];
    this.#setHost(Boolean(msg.host), out);
    out.push(this.#setRoom(msg));
    this.knocks.clear();
    out.push({ type: 'knocks-clear' });
    for (const knock of msg.knocks ?? []) {
      this.knocks.set(knock.id, knock.name);
      out.push({ type: 'knock', knock, alert: false });
    }
    if (!msg.resumed || !wasJoined) {
      // Chat history comes with every new seat; a resumed seat already has it on screen.
      this.chat = [];
      out.push({ type: 'chat-reset' });
      for (const line of msg.chat ?? []) this.#addChat(line, out, { history: true });
    }
    const present = new Set(msg.peers.map((p) => p.id));
    for (const id of [...this.peers.keys()]) {
      if (!present.has(id)) this.#forget(id, out);
    }
    for (const peer of msg.peers) {
      const known = this.peers.has(peer.id);
      this.#setPeer(peer, out);
      // The newcomer offers. On a resumed seat the links there are stay: the others kept theirs.
      out.push({ type: 'connect', id: peer.id, initiator: true, fresh: !(msg.resumed && known) });
      if (!(msg.resumed && known)) this.levels.delete(peer.id);
    }
    // Tell the others what changed while we were away.
    if (local.screen || this.hand) out.push({ type: 'send-update', state: { screen: local.screen, hand: this.hand } });
    if (msg.reconnected) out.push({ type: 'toast', key: 'reconnected' });
    return out;
  }

  /**
   * Any other server message but `signal` and `error` (those go to the links and to errorOutcome).
   * @param {any} msg a server message as parsed from JSON
   * @returns {Notice[]}
   */
  apply(msg) {
    /** @type {Notice[]} */
    const out = [];
    switch (msg.type) {
      case 'peer-joined':
        this.#setPeer(msg.peer, out);
        // They offer (they are the newcomer); this side waits with a link ready.
        out.push({ type: 'connect', id: msg.peer.id, initiator: false, fresh: false });
        out.push({ type: 'announce', key: 'joined', vars: { name: msg.peer.name } });
        break;
      case 'peer-left': {
        const name = this.peers.get(msg.id)?.name ?? '';
        this.#forget(msg.id, out);
        out.push({ type: 'announce', key: 'left', vars: { name } });
        break;
      }
      case 'peer-updated':
        if (msg.peer.id === this.selfId) {
          this.#setHost(Boolean(msg.peer.host), out);
          if ('recording' in msg.peer) {
            this.recording = Boolean(msg.peer.recording);
            out.push({ type: 'self-recording', recording: this.recording }, { type: 'recorders' });
          }
        } else {
          this.#setPeer(msg.peer, out);
        }
        break;
      case 'peer-rejoined':
        this.#setPeer(msg.peer, out);
        // Their page has no connection to us any more: a fresh one, and the tile stays.
        if (msg.reset) {
          this.levels.delete(msg.peer.id);
          out.push({ type: 'connect', id: msg.peer.id, initiator: false, fresh: true });
        }
        break;
      case 'chat':
        this.#addChat(msg, out, { history: false });
        break;
      case 'room-updated':
        out.push(this.#setRoom(msg));
        break;
      case 'knock': {
        if (!this.host) break;
        // The same knock again (its owner reconnected) is no news.
        const alert = !this.knocks.has(msg.id);
        this.knocks.set(msg.id, msg.name);
        out.push({ type: 'knock', knock: { id: msg.id, name: msg.name }, alert });
        if (alert) out.push({ type: 'announce', key: 'knockFrom', vars: { name: msg.name } });
        break;
      }
      case 'knock-gone':
        if (this.knocks.delete(msg.id)) out.push({ type: 'knock-gone', id: msg.id });
        break;
      case 'room-message': {
        const payload = parseRoomPayload(msg.data);
        if (payload?.kind !== 'reaction') break;
        const mine = msg.from === this.selfId;
        if (!mine && !this.peers.has(msg.from)) break;
        const name = mine ? this.name : this.peers.get(msg.from)?.name ?? '';
        out.push({ type: 'reaction', id: mine ? 'self' : msg.from, emoji: payload.emoji });
        out.push({ type: 'announce', key: mine ? 'reactedSelf' : 'reacted', vars: { name, emoji: payload.emoji } });
        break;
      }
      default:
        break;
    }
    return out;
  }

  /**
   * A host control was refused: the server says this seat is not the host (any more).
   * @returns {Notice[]}
   */
  loseHost() {
    /** @type {Notice[]} */
    const out = [];
    this.#setHost(false, out);
    return out;
  }

  /** Raises or lowers this seat's hand. @returns {Notice[]} */
  toggleHand() {
    this.hand = !this.hand;
    return [{ type: 'send-update', state: { hand: this.hand } }, { type: 'self' }];
  }

  /** The chat panel opened or closed; opening reads everything. @returns {Notice[]} */
  setChatOpen(open) {
    this.chatOpen = open;
    if (!open || this.unread === 0) return [];
    this.unread = 0;
    return [{ type: 'unread', count: 0 }];
  }

  /**
   * The audio counters of every remote seat (null where there are none yet), every 250 ms.
   * @param {Map<string, { energy: number, duration: number } | null>} samples
   * @returns {string | null} who is speaking now, or nobody
   */
  hear(samples) {
    const loudness = new Map();
    for (const [id, sample] of samples) {
      let level = this.levels.get(id);
      if (!level) {
        level = new EnergyLevel();
        this.levels.set(id, level);
      }
      loudness.set(id, level.update(sample));
    }
    this.speaker = pickSpeaker(loudness, this.speaker);
    return this.speaker;
  }

  /**
   * This seat's own tile.
   * @param {{ audio: boolean, video: boolean, screen: boolean }} local
   */
  selfView(local) {
    return { name: this.name, ...local, hand: this.hand, host: this.host, recording: this.recording, self: true };
  }

  /** The names of the others who record now, for the banner. */
  recorders() {
    return [...this.peers.values()].filter((p) => p.recording).map((p) => p.name);
  }

  /** The room asks to join: this page waits for the host (again, after a reconnect). */
  knock() {
    this.knocking = true;
  }

  /** Back in the lobby (a refused join): nothing of the old seat counts any more. */
  leaveSeat() {
    this.joined = false;
    this.waitingForSeat = false;
    this.knocking = false;
  }

  /** Left or removed for good. */
  end() {
    this.ended = true;
    this.joined = false;
  }

  get alone() {
    return this.peers.size === 0;
  }

  /** @param {Peer} peer @param {Notice[]} out */
  #setPeer(peer, out) {
    const before = this.peers.get(peer.id);
    this.peers.set(peer.id, peer);
    out.push({ type: 'peer', peer });
    if (Boolean(peer.recording) !== Boolean(before?.recording)) {
      out.push({ type: 'recorders' });
      if (peer.recording) out.push({ type: 'announce', key: 'isRecording', vars: { name: peer.name } });
    }
    if (peer.hand && !before?.hand) out.push({ type: 'announce', key: 'handRaised', vars: { name: peer.name } });
  }

  /** @param {string} id @param {Notice[]} out */
  #forget(id, out) {
    if (this.peers.get(id)?.recording) out.push({ type: 'recorders' });
    this.peers.delete(id);
    this.levels.delete(id);
    if (this.speaker === id) this.speaker = null;
    out.push({ type: 'peer-gone', id });
  }

  /** @param {boolean} host @param {Notice[]} out */
  #setHost(host, out) {
    if (host && this.joined && !this.host && this.selfId) out.push({ type: 'announce', key: 'youAreHost' });
    this.host = host;
    out.push({ type: 'host', host });
    if (!host && this.knocks.size > 0) {
      this.knocks.clear();
      out.push({ type: 'knocks-clear' });
    }
    // Every tile again: the Remove buttons come and go with host.
    for (const peer of this.peers.values()) out.push({ type: 'peer', peer });
    out.push({ type: 'self' });
  }

  /**
   * @param {{ locked?: boolean, password?: boolean, ask?: boolean, recording_allowed?: boolean }} info
   *   (a server without recording_allowed allows it)
   * @returns {Notice}
   */
  #setRoom({ locked, password, ask, recording_allowed }) {
    this.room = {
      locked: Boolean(locked), password: Boolean(password), ask: Boolean(ask), recordingAllowed: recording_allowed !== false,
    };
    return { type: 'room', ...this.room };
  }

  /** @param {ChatLine} line @param {Notice[]} out @param {{ history: boolean }} how */
  #addChat(line, out, { history }) {
    this.chat.push(line);
    const mine = line.from === this.selfId;
    out.push({ type: 'chat-line', line, mine });
    if (history || mine) return;
    if (!this.chatOpen) {
      this.unread += 1;
      out.push({ type: 'unread', count: this.unread });
    }
    out.push({ type: 'announce', key: 'chatFrom', vars: { name: line.name, text: line.text } });
  }
}

/**
 * What the page does with a server `error`.
 * @param {string} code
 * @param {boolean} joined
 * @returns {{ do: 'ask-password' | 'banner' | 'join-error' | 'not-host' | 'recording-refused' | 'end' | 'lobby' | 'toast' | 'refused' | 'log', key?: string }}
 *   `ask-password`: back to the lobby with the password field; `banner` / `join-error`: say why
 *   it takes a while (the socket retries by itself); `end`: the meeting is over for this page;
 *   `lobby`: the join was refused; `toast`: say it in passing; `refused`: the server refused
 *   what was just sent (the last chat message, if one is waiting: say so beside it, and give its
 *   text back); `recording-refused`: the host does not allow recording (the recorder's flow
 *   says it); `log`: nothing to show.
 */
export function errorOutcome(code, joined) {
  switch (code) {
    case ErrorCode.BAD_PASSWORD:
      return { do: 'ask-password', key: 'errBadPassword' };
    case ErrorCode.SERVER_BUSY:
      return { do: joined ? 'banner' : 'join-error', key: 'errServerBusy' };
    case ErrorCode.RATE_LIMITED:
      return { do: joined ? 'banner' : 'join-error', key: 'errRateLimited' };
    case ErrorCode.NOT_HOST:
      return { do: 'not-host' };
    case ErrorCode.BAD_REQUEST:
      return joined ? { do: 'refused', key: 'errBadRequest' } : { do: 'log' };
    case ErrorCode.SLOW_DOWN:
      return { do: 'toast', key: 'errSlowDown' };
    case ErrorCode.NO_FREE_SEAT:
      return { do: 'toast', key: 'errNoFreeSeat' };
    case ErrorCode.RECORDING_OFF:
      return { do: 'recording-refused', key: 'errRecordingOff' };
    case ErrorCode.ROOM_FULL:
    case ErrorCode.REPLACED:
    case ErrorCode.LOCKED:
    case ErrorCode.REMOVED:
    case ErrorCode.DENIED:
    case ErrorCode.TOO_MANY_ROOMS: {
      const key = FINAL_ERROR_KEYS[code];
      return { do: joined ? 'end' : 'lobby', key };
    }
    default:
      return { do: 'log' };
  }
}

/** The message keys of the errors that end a meeting or refuse a join. */
const FINAL_ERROR_KEYS = {
  [ErrorCode.ROOM_FULL]: 'errRoomFull',
  [ErrorCode.REPLACED]: 'errReplaced',
  [ErrorCode.LOCKED]: 'errLocked',
  [ErrorCode.REMOVED]: 'errRemoved',
  [ErrorCode.TOO_MANY_ROOMS]: 'errTooManyRooms',
  [ErrorCode.DENIED]: 'errDenied',
};

/**
 * What the page shows for a change of the socket's state.
 * @param {{ state: string, code?: number }} change
 * @param {MeetingState} meeting
 * @returns {{ do: 'banner' | 'join-error' | 'clear' | 'end' | 'lobby' | 'none', key?: string,
 *             vars?: Record<string, string> }}
 */
export function connectionOutcome({ state, code }, meeting) {
  if (state === 'reconnecting') {
    if (meeting.joined) return { do: 'banner', key: 'reconnectingBanner' };
    // Still in the lobby: the first join has not got through (server down or busy). Busy and
    // rate-limited sockets already said why with their error.
    if (!isExplainedRetry(code)) return { do: 'join-error', key: 'cannotReach' };
    return { do: 'none' };
  }
  if (state === 'open') return { do: 'clear' };
  if (state === 'ended') {
    if (meeting.joined && !meeting.ended) return { do: 'end', key: 'leftTitle' };
    // Closed for good before a seat was given, with no error message to explain it.
    if (!meeting.joined && meeting.waitingForSeat) return { do: 'lobby', key: 'errGeneric', vars: { message: String(code ?? '') } };
  }
  return { do: 'none' };
}

/** @param {number | undefined} code */
function isExplainedRetry(code) {
  return code === CloseCode.SERVER_BUSY || code === CloseCode.RATE_LIMITED;
}
