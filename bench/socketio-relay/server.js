// Reference signaling relay: VideoMeet's protocol (docs/PROTOCOL.md, a subset) served the way the
// app VideoMeet replaces served its own: Node + Socket.io, room state in Redis with a 24 h TTL,
// offer/answer/ICE relayed socket to socket. It exists only so the benchmark (bench/loadgen) can
// run the identical workload against both servers. See README.md for the wire contract.
'use strict';

const http = require('node:http');
const crypto = require('node:crypto');
const { Server } = require('socket.io');
const { createClient } = require('redis');

const PORT = Number(process.env.PORT || 3000);
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

const SEATS_PER_ROOM = 6;
const TTL_SECS = 86400; // the old app's 24 h room TTL, refreshed on every write
const CHAT_TEXT_MAX = 2048; // bytes per chat message
const CHAT_KEEP = 16 * 1024; // bytes of chat text kept per room for late joiners
const JOIN_TIMEOUT_MS = 10_000;
const ROOM_RE = /^[a-z0-9-]{1,64}$/;
const CLIENT_RE = /^[A-Za-z0-9_-]{8,64}$/;
// Control characters and bidi overrides, refused in names (as VideoMeet does).
const BAD_NAME_RE = /[\p{Cc}\u202A-\u202E\u2066-\u2069]/u;
// Control characters but newline and tab, refused in chat.
const BAD_CHAT_RE = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/;

// Redis keys of one room. Redis is the source of truth for who sits in it.
const keys = (room) => ({
  seats: `room:${room}:seats`, // hash: seat id -> seat JSON (with client and token)
  host: `room:${room}:host`, // string: the host's seat id
  chat: `room:${room}:chat`, // list of chat JSON, oldest first, trimmed to CHAT_KEEP bytes of text
  chatBytes: `room:${room}:chat_bytes`, // bytes of text in that list, so trimming needs no LRANGE
});

// The small in-memory map the old app kept: seat id -> { room, socketId }. Signals use it to find
// the target socket without a Redis round trip; the socket side lives in socket.data.seat.
const live = new Map();
// Seat ids start at a random point so an id from before a restart is not reused soon.
let nextSeat = crypto.randomInt(1000, 1_000_000);

const redis = createClient({ url: REDIS_URL });
redis.on('error', (e) => console.error('redis:', e.message));

const httpServer = http.createServer((req, res) => { res.writeHead(404).end(); });
const io = new Server(httpServer, {
  transports: ['websocket'],
  pingInterval: 5000, // VideoMeet's heartbeat: ping every 5 s,
  pingTimeout: 10000, // drop after 10 s without an answer
  maxHttpBufferSize: 1048576, // VideoMeet's 1 MiB message cap
  perMessageDeflate: false,
  httpCompression: false,
});

const send = (target, msg) => target.emit('msg', msg);
const fail = (socket, code, message, close = false) => {
  send(socket, { type: 'error', code, message });
  if (close) socket.disconnect(true); // disconnect(true) flushes the error first, then closes
};
const peerOf = (seat, hostId) => ({
  id: seat.id, name: seat.name, audio: seat.audio, video: seat.video, screen: seat.screen,
  host: seat.id === hostId, away: false, hand: seat.hand,
});
const bySince = (a, b) => a.since - b.since || Number(a.id) - Number(b.id);
// Refresh the TTL of every key of the room on activity, in the same MULTI as the write.
const touch = (m, k) => { for (const key of Object.values(k)) m.expire(key, TTL_SECS); return m; };

// Room state is read, decided on and written in several Redis round trips, so two joins racing
// for the sixth seat could both win. One promise chain per room runs its state changes one at a
// time (this is one process; the old app had no such guard, but a benchmark must not over-fill).
const chains = new Map();
function serially(room, socket, task) {
  const next = (chains.get(room) || Promise.resolve()).then(task).catch((e) => {
    console.error('room', room, e);
    if (socket.connected) fail(socket, 'server_busy', 'Room state is unavailable.');
  });
  chains.set(room, next);
  next.then(() => { if (chains.get(room) === next) chains.delete(room); });
}

io.on('connection', (socket) => {
  const room = String(socket.handshake.query.room || '').toLowerCase();
  if (!ROOM_RE.test(room)) return fail(socket, 'bad_request', 'Room names are 1-64 of a-z, 0-9 and -.', true);
  socket.data.seat = null; // { room, id } once joined
  const timer = setTimeout(() => { if (!socket.data.seat) socket.disconnect(true); }, JOIN_TIMEOUT_MS);

  socket.on('msg', (msg) => {
    if (!msg || typeof msg !== 'object' || typeof msg.type !== 'string') {
      return fail(socket, 'bad_request', 'A message is one JSON object with a string type.');
    }
    if (msg.type === 'signal') return relaySignal(socket, msg); // hot path: no Redis, no queue
    const handler = { join, update, chat, leave }[msg.type];
    if (!handler) return fail(socket, 'bad_request', `Unknown message type ${msg.type}.`);
    if (msg.type === 'join') {
      if (socket.data.joining) return fail(socket, 'bad_request', 'Already joined.');
      socket.data.joining = true;
    }
    // Checks that depend on the seat run inside the chain, after any join queued before them.
    serially(room, socket, () => handler(socket, room, msg));
  });

  socket.on('disconnect', () => {
    clearTimeout(timer);
    // No seat grace in this reference: a lost socket frees its seat at once. The check runs in
    // the chain, so a takeover queued earlier (which clears data.seat) makes this a no-op.
    serially(room, socket, () => socket.data.seat && freeSeat(socket, room));
  });
});

// signal: straight from socket to socket, as the old app relayed offer/answer/ICE.
function relaySignal(socket, msg) {
  const me = socket.data.seat;
  if (!me) return fail(socket, 'bad_request', 'Join first.');
  if (typeof msg.to !== 'string' || !('data' in msg)) return fail(socket, 'bad_request', 'signal needs to and data.');
  const target = live.get(msg.to);
  if (!target || target.room !== me.room) return; // the peer may just have left: drop silently
  io.to(target.socketId).emit('msg', { type: 'signal', from: me.id, data: msg.data });
}

async function join(socket, room, msg) {
  if (!socket.connected) return;
  const name = typeof msg.name === 'string' ? msg.name.trim() : '';
  const bad =
    ([...name].length < 1 || [...name].length > 64 || BAD_NAME_RE.test(name)) ? 'name' :
    (typeof msg.client !== 'string' || !CLIENT_RE.test(msg.client)) ? 'client' :
    (msg.token !== undefined && typeof msg.token !== 'string') ? 'token' :
    (typeof msg.audio !== 'boolean' || typeof msg.video !== 'boolean') ? 'audio/video' :
    (msg.resume !== undefined && typeof msg.resume !== 'boolean') ? 'resume' : null;
  if (bad) return fail(socket, 'bad_request', `Bad join field: ${bad}.`, true);

  const k = keys(room);
  const stored = Object.values(await redis.hGetAll(k.seats)).map((s) => JSON.parse(s));
  // Seats no socket of this process holds are left from an earlier process (a restart against
  // the same Redis); drop them, or they would fill the room until the TTL.
  const isLive = (s) => live.get(s.id)?.room === room;
  const orphans = stored.filter((s) => !isLive(s)).map((s) => s.id);
  const seats = stored.filter(isLive);

  const same = (a, b) => a.length === b.length && crypto.timingSafeEqual(Buffer.from(a), Buffer.from(b));
  const old = typeof msg.token === 'string' &&
    seats.find((s) => s.client === msg.client && same(s.token, msg.token));
  if (!old && seats.length >= SEATS_PER_ROOM) {
    return fail(socket, 'room_full', `This room already has ${SEATS_PER_ROOM} people.`, true);
  }

  const seat = old
    ? { ...old, name, audio: msg.audio, video: msg.video, screen: msg.resume ? old.screen : false }
    : { id: String(nextSeat++), name, client: msg.client, token: crypto.randomBytes(16).toString('hex'),
        audio: msg.audio, video: msg.video, screen: false, hand: false, since: Date.now() };

  if (old) {
    // One identity, one seat: the old socket loses it before it can free it on disconnect.
    const prev = io.sockets.sockets.get(live.get(old.id).socketId);
    if (prev) {
      prev.data.seat = null;
      fail(prev, 'replaced', 'This seat was taken over by another connection.', true);
    }
  }

  const m = redis.multi();
  if (orphans.length) m.hDel(k.seats, orphans);
  m.hSet(k.seats, seat.id, JSON.stringify(seat));
  if (seats.length === 0) m.set(k.host, seat.id); // first seat of a room is the host
  touch(m, k);
  // joined reads the room back from Redis, after the write, like the old app's room:joined.
  m.hGetAll(k.seats).get(k.host).lRange(k.chat, 0, -1);
  const replies = await m.exec();
  const [all, hostId, chat] = replies.slice(-3);

  // If the socket went while we waited on Redis, its disconnect task is queued behind this one
  // and frees the seat, so there is nothing to undo here.
  live.set(seat.id, { room, socketId: socket.id });
  socket.data.seat = { room, id: seat.id };
  socket.join(room);

  const peers = Object.values(all).map((s) => JSON.parse(s)).filter((s) => s.id !== seat.id).sort(bySince);
  const me = peerOf(seat, hostId);
  // The others hear of the newcomer before the newcomer gets joined, so its offers never arrive
  // at a peer that has not heard of it yet.
  if (old) socket.to(room).emit('msg', { type: 'peer-rejoined', peer: me, reset: !msg.resume });
  else socket.to(room).emit('msg', { type: 'peer-joined', peer: me });
  send(socket, {
    type: 'joined', you: seat.id, token: seat.token, host: seat.id === hostId, room,
    peers: peers.map((s) => peerOf(s, hostId)), ice_servers: [], locked: false, password: false,
    resumed: Boolean(old), chat: chat.map((c) => JSON.parse(c)),
  });
}

async function update(socket, room, msg) {
  const me = socket.data.seat;
  if (!me) return fail(socket, 'bad_request', 'Join first.');
  const fields = ['audio', 'video', 'screen', 'hand'].filter((f) => f in msg);
  if (fields.some((f) => typeof msg[f] !== 'boolean')) return fail(socket, 'bad_request', 'update fields are booleans.');
  const k = keys(room);
  const [raw, hostId] = await redis.multi().hGet(k.seats, me.id).get(k.host).exec();
  if (!raw || socket.data.seat !== me) return;
  const seat = JSON.parse(raw);
  for (const f of fields) seat[f] = msg[f];
  await touch(redis.multi().hSet(k.seats, me.id, JSON.stringify(seat)), k).exec();
  socket.to(room).emit('msg', { type: 'peer-updated', peer: peerOf(seat, hostId) });
}

async function chat(socket, room, msg) {
  const me = socket.data.seat;
  if (!me) return fail(socket, 'bad_request', 'Join first.');
  const text = msg.text;
  const size = typeof text === 'string' ? Buffer.byteLength(text) : 0;
  if (size < 1 || size > CHAT_TEXT_MAX || !text.trim() || BAD_CHAT_RE.test(text)) {
    return fail(socket, 'bad_request', 'Chat text is 1-2048 bytes, not blank, no control characters.');
  }
  const k = keys(room);
  const raw = await redis.hGet(k.seats, me.id);
  if (!raw) return;
  const line = { from: me.id, name: JSON.parse(raw).name, text, ts: Date.now() };
  const replies = await touch(redis.multi().rPush(k.chat, JSON.stringify(line)).incrBy(k.chatBytes, size), k).exec();
  // Trim the oldest lines until the room keeps at most CHAT_KEEP bytes of text.
  for (let over = Number(replies[1]) - CHAT_KEEP; over > 0;) {
    const oldest = await redis.lPop(k.chat);
    if (!oldest) break;
    const n = Buffer.byteLength(JSON.parse(oldest).text);
    await redis.decrBy(k.chatBytes, n);
    over -= n;
  }
  io.to(room).emit('msg', { type: 'chat', ...line }); // the sender included
}

async function leave(socket, room) {
  if (!socket.data.seat) return fail(socket, 'bad_request', 'Join first.');
  await freeSeat(socket, room);
  socket.disconnect(true);
}

// Frees the socket's seat: Redis first, then peer-left, then pass host if the host went.
async function freeSeat(socket, room) {
  const { id } = socket.data.seat;
  socket.data.seat = null;
  if (live.get(id)?.socketId === socket.id) live.delete(id);
  socket.leave(room);
  const k = keys(room);
  const [, hostId, rest] = await touch(redis.multi().hDel(k.seats, id).get(k.host).hGetAll(k.seats), k).exec();
  io.to(room).emit('msg', { type: 'peer-left', id });
  if (hostId !== id) return;
  const next = Object.values(rest).map((s) => JSON.parse(s)).filter((s) => live.get(s.id)?.room === room).sort(bySince)[0];
  if (!next) return void (await redis.del(k.host)); // empty room: the next joiner will be host
  await touch(redis.multi().set(k.host, next.id), k).exec();
  io.to(room).emit('msg', { type: 'peer-updated', peer: peerOf(next, next.id) });
}

async function main() {
  await redis.connect();
  await new Promise((resolve) => httpServer.listen(PORT, '127.0.0.1', resolve));
  console.log(`listening on 127.0.0.1:${PORT}`);
}

const stop = () => { io.close(); redis.quit().catch(() => {}).finally(() => process.exit(0)); };
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
main().catch((e) => { console.error(e); process.exit(1); });
