// Self-check of the reference relay. It speaks raw Engine.IO v4 / Socket.io framing over `ws`
// exactly as the Rust load generator does (no socket.io-client), so a pass here means the Rust
// side and this server agree on the wire. Needs the server (PORT, default 3000) and its Redis
// (REDIS_URL) running. Prints `check: ok` and exits 0, or names the failed step and exits 1.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const WebSocket = require('ws'); // already installed as a dependency of socket.io's engine.io
const { createClient } = require('redis');

const PORT = Number(process.env.PORT || 3000);
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const ROOM = 'check';
const WAIT_MS = 3000;

let step = 'start';
const fail = (what) => { throw new Error(what); };
const assert = (cond, what) => { if (!cond) fail(what); };

// One participant's socket: `0{open}` -> send `40` -> `40{sid}`; `2` -> answer `3`;
// events are `42["msg",{...}]` both ways.
class Client {
  constructor(room = ROOM) {
    this.inbox = [];
    this.waiters = [];
    this.closed = false;
    this.ws = new WebSocket(`ws://127.0.0.1:${PORT}/socket.io/?EIO=4&transport=websocket&room=${room}`);
    this.ws.on('message', (buf) => this.onFrame(buf.toString()));
    this.ws.on('close', () => { this.closed = true; this.wake(); });
    this.ws.on('error', (e) => { this.error = e; });
    this.ready = new Promise((resolve, reject) => {
      this.onReady = resolve;
      setTimeout(() => reject(new Error('no socket.io CONNECT answer')), WAIT_MS).unref();
    });
  }
  onFrame(f) {
    if (f[0] === '0') { this.open = JSON.parse(f.slice(1)); this.ws.send('40'); }
    else if (f.startsWith('40')) { this.sid = JSON.parse(f.slice(2)).sid; this.onReady(); }
    else if (f === '2') this.ws.send('3');
    else if (f.startsWith('42')) {
      const [event, msg] = JSON.parse(f.slice(2));
      this.inbox.push(event === 'msg' ? msg : { type: `unexpected event ${event}` });
      this.wake();
    } else if (f === '41') this.nsDisconnected = true;
  }
  wake() { for (const w of this.waiters.splice(0)) w(); }
  send(msg) { this.ws.send('42' + JSON.stringify(['msg', msg])); }
  // The first message of this type (and matching pred), waiting up to WAIT_MS for it.
  async next(type, pred = () => true) {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const i = this.inbox.findIndex((m) => m.type === type && pred(m));
      if (i >= 0) return this.inbox.splice(i, 1)[0];
      const left = deadline - Date.now();
      if (left <= 0) fail(`no ${type} message (got: ${JSON.stringify(this.inbox)})`);
      await new Promise((r) => { this.waiters.push(r); setTimeout(r, left); });
    }
  }
  async closedSoon() {
    const deadline = Date.now() + WAIT_MS;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => { this.waiters.push(r); setTimeout(r, 50); });
    return this.closed;
  }
  close() { if (!this.closed) this.ws.close(); }
}

const joinMsg = (name, client, extra = {}) => ({ type: 'join', name, client, audio: true, video: true, ...extra });
async function joined(name, client, extra) {
  const c = new Client();
  await c.ready;
  c.send(joinMsg(name, client, extra));
  c.joined = await c.next('joined');
  return c;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const redis = createClient({ url: REDIS_URL });
const clients = [];
const seatsKey = `room:${ROOM}:seats`;
const hostKey = `room:${ROOM}:host`;

async function main() {
  step = 'redis connect';
  await redis.connect();
  await redis.del([seatsKey, hostKey, `room:${ROOM}:chat`, `room:${ROOM}:chat_bytes`]);

  step = 'engine.io open packet';
  const a = await joined('Ada', 'client-aaaa');
  clients.push(a);
  assert(a.open.pingInterval === 5000 && a.open.pingTimeout === 10000, `heartbeat ${JSON.stringify(a.open)}`);
  assert(a.open.maxPayload === 1048576 && a.open.upgrades.length === 0, `open ${JSON.stringify(a.open)}`);

  step = 'first join';
  const A = a.joined;
  assert(A.room === ROOM && A.host === true && A.resumed === false && A.peers.length === 0, JSON.stringify(A));
  assert(/^[0-9a-f]{32}$/.test(A.token) && Array.isArray(A.chat) && A.locked === false && A.password === false, JSON.stringify(A));

  step = 'second join sees the first';
  const b = await joined('Bo', 'client-bbbb');
  clients.push(b);
  const B = b.joined;
  assert(B.host === false && B.peers.length === 1 && B.peers[0].id === A.you && B.peers[0].name === 'Ada', JSON.stringify(B));
  assert(B.peers[0].host === true && B.peers[0].away === false && B.peers[0].hand === false, JSON.stringify(B.peers[0]));
  const pj = await a.next('peer-joined');
  assert(pj.peer.id === B.you && pj.peer.name === 'Bo', JSON.stringify(pj));

  step = 'second join on a joined socket';
  b.send(joinMsg('Bo', 'client-bbbb'));
  assert((await b.next('error')).code === 'bad_request', 'code');

  step = 'signal both ways';
  a.send({ type: 'signal', to: B.you, data: { description: { type: 'offer', sdp: 'v=0' } } });
  let s = await b.next('signal');
  assert(s.from === A.you && s.data.description.type === 'offer', JSON.stringify(s));
  b.send({ type: 'signal', to: A.you, data: { candidate: { candidate: 'candidate:1', sdpMid: '0' } } });
  s = await a.next('signal');
  assert(s.from === B.you && s.data.candidate.sdpMid === '0', JSON.stringify(s));
  a.send({ type: 'signal', to: 'nobody', data: 1 }); // dropped silently: no error comes back

  step = 'update';
  b.send({ type: 'update', audio: false, hand: true });
  const pu = await a.next('peer-updated');
  assert(pu.peer.id === B.you && pu.peer.audio === false && pu.peer.hand === true && pu.peer.video === true, JSON.stringify(pu));

  step = 'chat';
  a.send({ type: 'chat', text: 'hello <b>there</b>' });
  for (const c of [a, b]) {
    const m = await c.next('chat');
    assert(m.from === A.you && m.name === 'Ada' && m.text === 'hello <b>there</b>' && Number.isInteger(m.ts), JSON.stringify(m));
  }
  assert(!a.inbox.some((m) => m.type === 'error'), `unexpected error ${JSON.stringify(a.inbox)}`);

  step = 'room_full for the seventh';
  for (const n of ['Cy', 'Di', 'Ed', 'Fa']) {
    const c = await joined(n, `client-${n}${n}${n}`);
    clients.push(c);
    await a.next('peer-joined', (m) => m.peer.id === c.joined.you);
  }
  const g = new Client();
  clients.push(g);
  await g.ready;
  g.send(joinMsg('Gus', 'client-gggg'));
  const full = await g.next('error');
  assert(full.code === 'room_full', JSON.stringify(full));
  assert(await g.closedSoon(), 'the seventh socket was not closed');

  step = 'resume with client and token';
  const b2 = await joined('Bo', 'client-bbbb', { token: B.token, resume: true });
  clients.push(b2);
  assert(b2.joined.you === B.you && b2.joined.resumed === true && b2.joined.token === B.token, JSON.stringify(b2.joined));
  assert(b2.joined.peers.length === 5 && b2.joined.chat.some((m) => m.text === 'hello <b>there</b>'), JSON.stringify(b2.joined));
  const rep = await b.next('error');
  assert(rep.code === 'replaced', JSON.stringify(rep));
  assert(await b.closedSoon(), 'the replaced socket was not closed');
  const rj = await a.next('peer-rejoined');
  assert(rj.peer.id === B.you && rj.reset === false && rj.peer.hand === true, JSON.stringify(rj));
  assert(!a.inbox.some((m) => m.type === 'peer-left' || m.type === 'peer-joined'), `takeover leaked: ${JSON.stringify(a.inbox)}`);

  step = 'wrong token gets a new seat';
  // (room is full, so a wrong token is refused rather than taking B's seat)
  const w = new Client();
  clients.push(w);
  await w.ready;
  w.send(joinMsg('Bo', 'client-bbbb', { token: '0'.repeat(32) }));
  assert((await w.next('error')).code === 'room_full', 'a wrong token took a seat');

  step = 'redis seat list while full';
  const ids = clients.filter((c) => c.joined && !c.closed).map((c) => c.joined.you).sort();
  let stored = await redis.hGetAll(seatsKey);
  assert(JSON.stringify(Object.keys(stored).sort()) === JSON.stringify(ids), `redis ${Object.keys(stored)} vs ${ids}`);
  const bSeat = JSON.parse(stored[B.you]);
  assert(bSeat.client === 'client-bbbb' && bSeat.token === B.token && bSeat.hand === true, JSON.stringify(bSeat));
  assert((await redis.get(hostKey)) === A.you, 'host key is not the first joiner');
  const ttl = await redis.ttl(seatsKey);
  assert(ttl > 86000 && ttl <= 86400, `seats TTL ${ttl}`);
  assert((await redis.lLen(`room:${ROOM}:chat`)) === 1, 'chat list');

  step = 'leave';
  a.send({ type: 'leave' });
  const pl = await b2.next('peer-left');
  assert(pl.id === A.you, JSON.stringify(pl));
  const hp = await b2.next('peer-updated', (m) => m.peer.host);
  assert(hp.peer.id === B.you, `host passed to ${hp.peer.id}, not the longest-present ${B.you}`);
  assert(await a.closedSoon(), 'the leaving socket was not closed');

  step = 'redis seat list after leave';
  stored = await redis.hGetAll(seatsKey);
  assert(!(A.you in stored) && Object.keys(stored).length === 5, `redis ${Object.keys(stored)}`);
  assert((await redis.get(hostKey)) === B.you, 'host key did not pass');

  step = 'bad room name';
  const bad = new Client('no_such%20room');
  clients.push(bad);
  await bad.ready;
  assert((await bad.next('error')).code === 'bad_request', 'code');
  assert(await bad.closedSoon(), 'bad room socket was not closed');

  step = 'disconnect frees the seats';
  for (const c of clients) c.close();
  let left = -1;
  for (let i = 0; i < 40 && left !== 0; i++) { await sleep(50); left = await redis.hLen(seatsKey); }
  assert(left === 0, `${left} seats left in redis after every socket closed`);
  assert((await redis.get(hostKey)) === null, 'host key left behind in an empty room');
}

main().then(
  () => { console.log('check: ok'); },
  (e) => { console.log(`check: FAILED at "${step}": ${e.message}`); process.exitCode = 1; },
).finally(async () => {
  for (const c of clients) c.close();
  await redis.quit().catch(() => {});
});
