// The signaling socket: wire messages of docs/PROTOCOL.md, reconnect with backoff, resume with
// the seat token. Knows nothing of the DOM or of WebRTC.

import { backoffDelay, shouldReconnect } from './backoff.js';

/**
 * @typedef {{ id: string, name: string, audio: boolean, video: boolean, screen: boolean,
 *             host: boolean, away: boolean, hand: boolean }} Peer
 */

/**
 * Events (dispatched as CustomEvent with `detail`):
 * - `joined` {you, token, host, peers, ice_servers, locked, password, chat, resumed, reconnected}
 *   (`resumed`: the server gave this socket its old seat back; `reconnected`: this page had
 *   joined before on an earlier socket)
 * - `message` any other server message
 * - `state` {state: 'connecting' | 'open' | 'reconnecting' | 'ended', code?, reason?}
 * - `error` {code, message} from the server
 */
export class Signaling extends EventTarget {
  /**
   * @param {{ url: string, join: () => object, WebSocketImpl?: typeof WebSocket,
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
    /** The seat token from the last `joined`; sent back to resume the seat. */
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
      this.#scheduleReconnect(1006, String(err));
      return;
    }
    this.ws = ws;
    // Handlers are attached before anything can await, so no event is missed.
    ws.onopen = () => {
      const join = { ...this.buildJoin(), type: 'join' };
      if (this.token) join.token = this.token;
      // A resume keeps the peer connections of this page alive.
      join.resume = this.hasJoined;
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
    return this.send({ type: 'signal', to, data });
  }

  /** @param {{audio?: boolean, video?: boolean, screen?: boolean, hand?: boolean}} state */
  update(state) {
    return this.send({ type: 'update', ...state });
  }

  /** Leaves the room for good: the seat is freed at once. */
  leave() {
    this.stopped = true;
    if (this.timer) this.clearTimer(this.timer);
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState === 1) {
      ws.send(JSON.stringify({ type: 'leave' }));
      ws.close(1000, 'left');
    } else if (ws) {
      ws.close();
    }
  }

  /** Closes the socket as if the network dropped, to reconnect at once (used when the page comes back online). */
  reconnectNow() {
    if (this.stopped) return;
    if (this.timer) {
      this.clearTimer(this.timer);
      this.timer = null;
      this.#connect();
    }
  }
}
