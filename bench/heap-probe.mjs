// Heap per participant, from the server's own counted heap (/metrics videomeet_heap_bytes):
// N sockets join rooms of 6, then (with `work`) every newcomer sends each peer a 4 KiB offer and
// ten 200 B candidates. Prints the heap per participant after joining and after the work.
// With KEEP=1 it keeps the sockets open afterwards (for heaptrack: kill the server meanwhile).
//   node bench/heap-probe.mjs PORT N [join|work] SERVER_PID
// Uses the `ws` package that `npm ci` installs in bench/socketio-relay.
import { createRequire } from 'module';
const require = createRequire(new URL('./socketio-relay/package.json', import.meta.url));
const WebSocket = require('ws');
const [port, n, phase] = [process.argv[2], +process.argv[3], process.argv[4] || 'join'];
const metrics = async () => {
  const t = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Object.fromEntries(t.split('\n').filter(l => l.startsWith('videomeet_heap_bytes') || l.startsWith('videomeet_open')).map(l => l.split(' ')));
};
import * as require_fs from 'fs';
const rss = () => {
  const pid = process.argv[5];
  const s = require_fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return s.match(/VmRSS:\s+(\d+)/)[1] + ' kB RSS, anon ' + s.match(/RssAnon:\s+(\d+)/)[1];
};
const before = await metrics();
console.log('before', before, rss());
const socks = [];
let joined = 0;
for (let i = 0; i < n; i++) {
  const room = 'probe-' + Math.floor(i / 6);
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/${room}`, { localAddress: `127.2.${Math.floor(i / 250)}.${i % 250 + 1}` });
  ws.on('open', () => ws.send(JSON.stringify({ type: 'join', name: 'p' + i, client: 'probe' + String(i).padStart(8, '0'), audio: true, video: true })));
  ws.on('message', (m) => { const v = JSON.parse(m); if (v.type === 'joined') { joined++; ws.me = v; } });
  socks.push(ws);
  if (i % 50 == 49) await new Promise(r => setTimeout(r, 20));
}
while (joined < n) await new Promise(r => setTimeout(r, 50));
await new Promise(r => setTimeout(r, 1500));
const a = await metrics();
console.log('joined', a, rss(), 'heap per participant', ((a.videomeet_heap_bytes - before.videomeet_heap_bytes) / n).toFixed(0));
if (phase === 'work') {
  const sdp = 'a'.repeat(4096), cand = 'c'.repeat(200);
  for (const ws of socks) for (const p of ws.me.peers) {
    ws.send(JSON.stringify({ type: 'signal', to: p.id, data: { description: { type: 'offer', sdp } } }));
    for (let k = 0; k < 10; k++) ws.send(JSON.stringify({ type: 'signal', to: p.id, data: { candidate: { candidate: cand } } }));
  }
  await new Promise(r => setTimeout(r, 3000));
  const b = await metrics();
  console.log('after work', b, rss(), 'heap per participant', ((b.videomeet_heap_bytes - before.videomeet_heap_bytes) / n).toFixed(0));
}
if (process.env.KEEP) { await new Promise(r => setTimeout(r, 600000)); }
for (const ws of socks) ws.close();
await new Promise(r => setTimeout(r, 1500));
console.log('closed', await metrics(), rss());
process.exit(0);
