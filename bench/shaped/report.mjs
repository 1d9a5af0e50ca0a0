#!/usr/bin/env node
// Turns the JSON lines of `run.mjs --json` into the markdown tables of docs/BENCHMARKS.md:
// every figure as median (min–max) over the runs, adaptation on beside off, and the on/off
// ratio where a ratio means something; then the per-stream table (receiver x sender) of the
// median run with the adaptation on.
//
//   node bench/shaped/report.mjs /tmp/bench/poor-1m.jsonl
import { readFileSync } from 'node:fs';

const LABELS = {
  worstConcealPoor: 'audio concealment, worst stream to or from p0 (%)',
  worstConcealGood: 'audio concealment, worst stream between good peers (%)',
  goodFps: 'good ↔ good: received fps (median stream)',
  goodHeight: 'good ↔ good: received height (median stream)',
  baseWorstConceal: 'audio concealment before the link degraded, worst stream (%): the machine',
  baseGoodFps: 'good ↔ good before the link degraded: fps',
  baseGoodHeight: 'good ↔ good before the link degraded: height',
  fromPoorFps: 'p0 → others: received fps',
  fromPoorHeight: 'p0 → others: received height',
  toPoorFps: 'others → p0: received fps',
  toPoorHeight: 'others → p0: received height',
  freezesPoor: 'freezes on streams to or from p0 (count, all streams)',
  freezesGood: 'freezes between good peers (count, all streams)',
  uplinkKbps: "p0's uplink, RTP with headers (kbit/s, median second)",
  uplinkMaxKbps: "p0's uplink, highest second (kbit/s)",
  dropsPerSecond: "p0's uplink queue drops (packets/s, median second)",
  uplinkQueueDrops: "packets p0's uplink queue dropped (adapted window)",
  downlinkQueueDrops: "packets p0's downlink queue dropped (adapted window)",
  p0StepsUp: "times p0 stepped a video sender up (adapted window; probes)",
  adaptSeconds: 'time to adapt (s)',
  recoverSeconds: 'time to recover after the link heals (s)',
  cpuPercent: 'CPU per browser, median (% of one core)',
  cpuMax: 'CPU per browser, highest (% of one core)',
  sentKbps: 'sent per browser (kbit/s)',
  receivedKbps: 'received per browser (kbit/s)',
  sharedSeconds: 'seconds a Rust build ran beside the run',
  browsersBeside: 'seconds another browser test ran beside the run (5 s steps)',
  loadAtStart: 'load average (1 min) at the start',
};

const median = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};
const fmt = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '—');
const cell = (xs) => {
  const finite = xs.filter(Number.isFinite);
  const missing = xs.length - finite.length;
  if (finite.length === 0) return `— (never, ${xs.length} of ${xs.length})`;
  const spread = finite.length > 1 ? ` (${fmt(Math.min(...finite))}–${fmt(Math.max(...finite))})` : '';
  return `${fmt(median(finite))}${spread}${missing ? `, never in ${missing}` : ''}`;
};

const file = process.argv[2];
const rows = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const on = rows.filter((r) => r.adapt);
const off = rows.filter((r) => !r.adapt);
const keys = Object.keys((on[0] ?? off[0]).summary);
console.log(`${rows[0].scenario}: ${on.length} runs with the adaptation on, ${off.length} off\n`);
console.log('| figure | adaptation on | off (room size only) |');
console.log('|---|---|---|');
for (const key of keys) {
  console.log(`| ${LABELS[key] ?? key} | ${cell(on.map((r) => r.summary[key]))} | ${cell(off.map((r) => r.summary[key]))} |`);
}
for (const [mode, set] of [['on', on], ['off', off]]) {
  if (set.length === 0) continue;
  // The run whose worst concealment is the median one: a typical run, not the best.
  const sorted = [...set].sort((a, b) => (a.summary.worstConcealPoor ?? 0) - (b.summary.worstConcealPoor ?? 0));
  const typical = sorted[Math.floor((sorted.length - 1) / 2)];
  const w = Object.keys(typical.streams[0]).includes('adapted') ? 'adapted' : 'all';
  console.log(`\nPer stream, adaptation ${mode}, run ${typical.run} (${w} window; * = to or from p0):\n`);
  console.log('| receiver ← sender | conceal % | fps | height | freezes | kbit/s |');
  console.log('|---|---|---|---|---|---|');
  for (const s of typical.streams) {
    const x = s[w];
    console.log(`| ${s.receiver} ← ${s.sender}${s.poor ? ' *' : ''} | ${fmt(x.concealment, 2)} | ${fmt(x.fps)} | ${fmt(x.height, 0)} | ${x.freezes ?? '—'} | ${fmt(x.kbps, 0)} |`);
  }
}
