#!/usr/bin/env node
// Calls on shaped links: the scenarios of docs/BENCHMARKS.md ("Weak networks"), each run with
// the per-peer adaptation on and off (`?adapt=0`, the room-size policy alone) in turn.
//
//   sudo node bench/shaped/run.mjs poor-1m [--adapt both|on|off] [--runs 3] [--json out.jsonl]
//
// Scenarios: poor-1m, poor-500k (4 people, p0 on 1 Mbit/s or 500 kbit/s each way with 5% UDP
// loss each way from 15 s in), poor-1m-deep (poor-1m behind a 200 ms queue, not 50 ms),
// dip-300k (4 people, p0 drops to 300 kbit/s for 20 s, then recovers), six (6 people on good
// links), ci (3 people, p0 on 300 kbit/s with 5% loss: the browser suite's short version,
// tight enough that the call cannot fit without adapting).
import { execFileSync } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import { Rig, nsCpuSeconds, nsPids, pageStats } from './rig.mjs';

/**
 * @typedef {{ people: number, shaped?: { rate: number, loss: number, queueMs?: number }, degradeAt?: number,
 *             healAt?: number, seconds: number }} Scenario
 */
/** @type {Record<string, Scenario>} times in seconds from when every stream decodes */
export const SCENARIOS = {
  'poor-1m': { people: 4, shaped: { rate: 1_000_000, loss: 0.05 }, degradeAt: 15, seconds: 55 },
  'poor-500k': { people: 4, shaped: { rate: 500_000, loss: 0.05 }, degradeAt: 15, seconds: 55 },
  // poor-1m behind a deeper buffer (200 ms, not 50): how much of its concealment is the
  // shallow queue overflowing in bursts.
  'poor-1m-deep': { people: 4, shaped: { rate: 1_000_000, loss: 0.05, queueMs: 200 }, degradeAt: 15, seconds: 55 },
  'dip-300k': { people: 4, shaped: { rate: 300_000, loss: 0 }, degradeAt: 15, healAt: 35, seconds: 65 },
  six: { people: 6, seconds: 30 },
  ci: { people: 3, shaped: { rate: 300_000, loss: 0.05 }, degradeAt: 8, seconds: 28 },
};

/** The "base" window (good links) starts this late: the first seconds are the calls ramping up. */
const WARMUP = 5;

function rustcRunning() {
  try {
    execFileSync('pgrep', ['-x', 'rustc'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Chromium processes that are not this run's (its browsers run in its namespaces): another
 * browser test sharing the machine.
 * @param {Set<number>} ours
 */
function foreignBrowsers(ours = new Set()) {
  try {
    const pids = execFileSync('pgrep', ['-x', 'chromium'], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
    return pids.filter((p) => !ours.has(p)).length;
  } catch {
    return 0;
  }
}

/** The 1-minute load average. */
const load1 = () => Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);

/**
 * Waits (up to 90 s) until no Rust build and no other browser has run for 10 s; a run that
 * shares the machine says so in its figures.
 */
async function quietMachine(log) {
  const deadline = Date.now() + 90_000;
  let quietSince = Date.now();
  while (Date.now() < deadline) {
    if (rustcRunning() || foreignBrowsers() > 0) quietSince = Date.now();
    else if (Date.now() - quietSince >= 10_000) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
  log('a Rust build or another browser kept running: this run shares the machine');
}

/** After the link degrades, figures of the "adapted" window start this much later (the target's 10 s). */
const SETTLE = 10;

const median = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};

/**
 * Runs one scenario once; returns its time series and figures.
 * @param {string} name
 * @param {{ adapt: boolean, log?: (line: string) => void }} options
 */
export async function runScenario(name, { adapt, log = console.log }) {
  const sc = SCENARIOS[name];
  if (!sc) throw new Error(`unknown scenario ${name}; one of ${Object.keys(SCENARIOS).join(', ')}`);
  await quietMachine(log);
  const rig = new Rig({ participants: sc.people, timeoutMs: (sc.seconds + 180) * 1000, log, smallVideo: true });
  try {
    await rig.setup();
    const room = `shaped-${name}-${Date.now() % 100000}`;
    const people = [];
    for (let i = 0; i < sc.people; i++) people.push(await rig.launch(i));
    for (let i = 0; i < sc.people; i++) await rig.join(people[i].page, room, `p${i}`, { adapt });
    const ipName = new Map(people.map((_, i) => [rig.ip(i), `p${i}`]));
    // Every stream decoding before the clock starts.
    const deadline = Date.now() + 40_000;
    for (;;) {
      const all = await Promise.all(people.map((p) => p.page.evaluate(pageStats)));
      const ready = all.every((s) => Object.keys(s).length === sc.people - 1
        && Object.values(s).every((r) => r.state === 'connected' && (r.vIn?.frames ?? 0) > 0 && (r.aIn?.total ?? 0) > 0));
      if (ready) break;
      if (Date.now() > deadline) throw new Error(`not every stream decoded in 40 s: ${JSON.stringify(all.map((s) => Object.keys(s).length))}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    const t0 = Date.now();
    /** @type {Array<{ t: number, stats: any[], cpu: number[], up: any }>} */
    const series = [];
    let degraded = false;
    /** Seconds in which a Rust build was running beside the run: the machine was shared. */
    let shared = 0;
    /** Seconds in which another browser (not this run's) was running beside it. */
    let browsersBeside = 0;
    const loadAtStart = load1();
    let healed = false;
    /** When the link actually changed (a loaded machine samples late), in seconds from t0. */
    const marks = {};
    // Sampled once a second by the wall clock; on a loaded machine a sample may come late, and
    // every figure uses the samples' own times.
    for (let second = 0; (Date.now() - t0) / 1000 <= sc.seconds; second++) {
      const at = t0 + second * 1000;
      await new Promise((r) => setTimeout(r, Math.max(0, at - Date.now())));
      const now = (Date.now() - t0) / 1000;
      if (sc.shaped && !degraded && now >= (sc.degradeAt ?? 0)) {
        rig.shape(0, sc.shaped);
        degraded = true;
        marks.degradeAt = now;
      }
      if (sc.healAt !== undefined && !healed && now >= sc.healAt) {
        rig.shape(0, { rate: null });
        healed = true;
        marks.healAt = now;
      }
      const stats = await Promise.all(people.map((p) => p.page.evaluate(pageStats).catch(() => ({}))));
      series.push({ t: (Date.now() - t0) / 1000, stats, cpu: people.map((p) => nsCpuSeconds(p.ns)), up: rig.uplinkCounters(0), down: rig.downlinkCounters(0) });
      if (rustcRunning()) shared += 1;
      if (second % 5 === 0 && foreignBrowsers(new Set(people.flatMap((p) => nsPids(p.ns)))) > 0) browsersBeside += 5;
    }
    return {
      name, adapt, scenario: { ...sc, ...marks }, names: people.map((_, i) => `p${i}`), ipName, series,
      sharedSeconds: shared, browsersBeside, loadAtStart,
    };
  } finally {
    await rig.close();
  }
}

/** Counter difference of stream (receiver r, sender ip) between two samples. */
function streamDelta(series, a, b, r, ip, pick) {
  const x = series[a]?.stats[r]?.[ip];
  const y = series[b]?.stats[r]?.[ip];
  if (!x || !y) return null;
  return pick(y) - pick(x);
}

/** Index of the first sample at or after time `t`. */
const at = (series, t) => {
  const i = series.findIndex((s) => s.t >= t);
  return i < 0 ? series.length - 1 : i;
};

/**
 * Figures of one run: per stream (receiver x sender) in each window, and the scenario's times.
 * @param {Awaited<ReturnType<typeof runScenario>>} run
 */
export function figures(run) {
  const { series, scenario: sc, names } = run;
  const ipOf = new Map([...run.ipName].map(([ip, n]) => [n, ip]));
  const end = series.at(-1).t;
  const windows = sc.shaped
    ? {
      base: [Math.min(WARMUP, sc.degradeAt - 2), sc.degradeAt],
      adapted: [sc.degradeAt + SETTLE, sc.healAt ?? end],
      ...(sc.healAt !== undefined ? { healed: [sc.healAt + 20, end] } : {}),
    }
    : { all: [WARMUP, end] };
  const streams = [];
  for (let r = 0; r < names.length; r++) {
    for (let s = 0; s < names.length; s++) {
      if (r === s) continue;
      const ip = ipOf.get(names[s]);
      // The sender's audio payload bytes per packet towards this receiver over the run: about
      // twice plain Opus's with RED in effect (see pageStats).
      const rIp = ipOf.get(names[r]);
      const lastOut = series.at(-1).stats[s]?.[rIp]?.aOut;
      const audioBytesPerPacket = lastOut?.packets ? lastOut.payload / lastOut.packets : NaN;
      const row = { receiver: names[r], sender: names[s], poor: Boolean(sc.shaped) && (r === 0 || s === 0), audioBytesPerPacket };
      for (const [w, [from, to]] of Object.entries(windows)) {
        const a = at(series, from);
        const b = at(series, to);
        const dt = series[b].t - series[a].t;
        const total = streamDelta(series, a, b, r, ip, (x) => x.aIn?.total ?? 0);
        const concealed = streamDelta(series, a, b, r, ip, (x) => x.aIn?.concealed ?? 0);
        const frames = streamDelta(series, a, b, r, ip, (x) => x.vIn?.frames ?? 0);
        const heights = [];
        for (let i = a; i <= b; i++) heights.push(series[i].stats[r]?.[ip]?.vIn?.height ?? NaN);
        row[w] = {
          concealment: total ? (100 * (concealed ?? 0)) / total : NaN,
          fps: frames !== null && dt > 0 ? frames / dt : NaN,
          height: median(heights),
          freezes: streamDelta(series, a, b, r, ip, (x) => x.vIn?.freezes ?? 0),
          freezeSeconds: streamDelta(series, a, b, r, ip, (x) => x.vIn?.freezeDur ?? 0),
          // The receiver's mean audio playout delay (ms) and the packets lost on the way (%):
          // whether RED's copy of a lost packet can arrive before the packet is due.
          jitterMs: 1000 * (streamDelta(series, a, b, r, ip, (x) => x.aIn?.jbDelay ?? 0) ?? 0)
            / (streamDelta(series, a, b, r, ip, (x) => x.aIn?.jbEmitted ?? 0) || NaN),
          lossPct: (() => {
            const lost = streamDelta(series, a, b, r, ip, (x) => x.aIn?.lost ?? 0) ?? 0;
            const got = streamDelta(series, a, b, r, ip, (x) => x.aIn?.received ?? 0) ?? 0;
            return lost + got > 0 ? (100 * lost) / (lost + got) : NaN;
          })(),
          kbps: dt > 0 ? (8 * ((streamDelta(series, a, b, r, ip, (x) => (x.vIn?.bytes ?? 0) + (x.aIn?.bytes ?? 0)) ?? 0))) / dt / 1000 : NaN,
        };
      }
      streams.push(row);
    }
  }
  const out = { streams, windows };
  // Per browser: CPU and what it sends and receives, over the whole run.
  const a = 1;
  const b = series.length - 1;
  const dt = series[b].t - series[a].t;
  out.browsers = names.map((n, i) => {
    const sum = (k, pick) => Object.keys(series[b].stats[i] ?? {}).reduce((acc, ip) => acc + (streamDelta(series, a, b, i, ip, pick) ?? 0), 0);
    return {
      name: n,
      cpuPercent: (100 * (series[b].cpu[i] - series[a].cpu[i])) / dt,
      sentKbps: (8 * sum('out', (x) => (x.aOut?.bytes ?? 0) + (x.vOut?.bytes ?? 0))) / dt / 1000,
      receivedKbps: (8 * sum('in', (x) => (x.aIn?.bytes ?? 0) + (x.vIn?.bytes ?? 0))) / dt / 1000,
    };
  });
  if (!sc.shaped) return out;

  // The constrained participant's uplink, second by second: what its RTP senders sent (with
  // headers) and what its link's queue dropped.
  // Each connection's bytes over the time between its own two getStats calls (the page stamps
  // them): on a loaded machine a page may answer late, and dividing by the bench's clock put
  // two seconds of bytes into one.
  const uplink = [];
  for (let i = 1; i < series.length; i++) {
    const d = series[i].t - series[i - 1].t;
    let kbps = 0;
    for (const ip of Object.keys(series[i].stats[0] ?? {})) {
      const x = series[i - 1].stats[0]?.[ip];
      const y = series[i].stats[0]?.[ip];
      if (!x || !y || y.t <= x.t) continue;
      const bytes = (y.aOut?.bytes ?? 0) + (y.vOut?.bytes ?? 0) - (x.aOut?.bytes ?? 0) - (x.vOut?.bytes ?? 0);
      kbps += (8 * bytes) / (y.t - x.t);
    }
    uplink.push({ t: series[i].t, kbps, drops: (series[i].up.dropped - series[i - 1].up.dropped) / d });
  }
  const inAdapted = (u) => u.t >= windows.adapted[0] && u.t <= windows.adapted[1];
  out.uplinkKbps = median(uplink.filter(inAdapted).map((u) => u.kbps));
  out.uplinkMaxKbps = Math.max(...uplink.filter(inAdapted).map((u) => u.kbps));
  out.dropsPerSecond = median(uplink.filter(inAdapted).map((u) => u.drops));
  // Every packet the link's queues dropped in the adapted window, each way: a queue that
  // overflows drops packets in a burst (audio's among them), which the random loss does not.
  {
    const a = at(series, windows.adapted[0]);
    const b = at(series, windows.adapted[1]);
    out.uplinkQueueDrops = series[b].up.dropped - series[a].up.dropped;
    out.downlinkQueueDrops = (series[b].down?.dropped ?? 0) - (series[a].down?.dropped ?? 0);
    // How often p0 stepped a video sender up (a higher maxBitrate, or resumed) in that window:
    // each step up is a probe, and a probe sends more than the rung that held.
    const video = (row) => row?.senders?.find((x) => x.kind === 'video');
    let ups = 0;
    for (let i = a + 1; i <= b; i++) {
      for (const ip of Object.keys(series[i].stats[0] ?? {})) {
        const x = video(series[i - 1].stats[0]?.[ip]);
        const y = video(series[i].stats[0]?.[ip]);
        if (x && y && ((y.active && !x.active) || (y.active && (y.maxBitrate ?? Infinity) > (x.maxBitrate ?? Infinity)))) ups += 1;
      }
    }
    out.p0StepsUp = ups;
  }
  out.linkKbps = sc.shaped.rate / 1000;

  // Time to adapt: from the degradation until the constrained uplink stays within the link and
  // every stream to or from the constrained participant conceals under 2% (3 s windows), until
  // the link heals or the run ends.
  const limitEnd = sc.healAt ?? end;
  const poorStreams = [];
  for (let r = 0; r < names.length; r++) {
    for (let s = 0; s < names.length; s++) if (r !== s && (r === 0 || s === 0)) poorStreams.push([r, ipOf.get(names[s])]);
  }
  const okAt = (i) => {
    const j = Math.max(0, i - 3);
    const up = uplink.filter((u) => u.t > series[j].t && u.t <= series[i].t);
    if (up.some((u) => u.kbps > out.linkKbps)) return false;
    return poorStreams.every(([r, ip]) => {
      const tot = streamDelta(series, j, i, r, ip, (x) => x.aIn?.total ?? 0);
      const con = streamDelta(series, j, i, r, ip, (x) => x.aIn?.concealed ?? 0);
      return tot && (con ?? 0) / tot < 0.02;
    });
  };
  const first = at(series, sc.degradeAt + 3);
  const last = at(series, limitEnd);
  out.adaptSeconds = NaN;
  for (let i = first; i <= last; i++) {
    let holds = true;
    for (let k = i; k <= last && holds; k++) holds = okAt(k);
    if (holds) {
      out.adaptSeconds = Math.max(0, series[i].t - 3 - sc.degradeAt);
      break;
    }
  }
  // Time to recover: from the heal until every stream to or from the constrained participant is
  // back to its pre-degradation height and at least 80% of its frame rate, for 3 s.
  if (sc.healAt !== undefined) {
    const h = at(series, sc.healAt);
    let worst = 0;
    for (const [r, ip] of poorStreams) {
      const base = streams.find((st) => st.receiver === names[r] && st.sender === run.ipName.get(ip)).base;
      let found = NaN;
      for (let i = h + 3; i < series.length; i++) {
        const fps = (streamDelta(series, i - 3, i, r, ip, (x) => x.vIn?.frames ?? 0) ?? 0) / (series[i].t - series[i - 3].t);
        const heights = [series[i - 2], series[i - 1], series[i]].map((x) => x.stats[r]?.[ip]?.vIn?.height ?? 0);
        if (Math.min(...heights) >= base.height && fps >= 0.8 * base.fps) {
          found = series[i - 3].t - sc.healAt;
          break;
        }
      }
      worst = Number.isNaN(found) || Number.isNaN(worst) ? NaN : Math.max(worst, found);
    }
    out.recoverSeconds = worst;
  }
  return out;
}

/** The few numbers a run is judged by, for the median-and-spread table. */
export function summary(run, f) {
  const w = run.scenario.shaped ? 'adapted' : 'all';
  const pick = (pred, key) => f.streams.filter(pred).map((s) => s[w][key]);
  const poor = (s) => s.poor;
  const good = (s) => !s.poor;
  const fromPoor = (s) => s.sender === 'p0' && s.poor;
  const toPoor = (s) => s.receiver === 'p0' && s.poor;
  const out = {
    worstConcealPoor: Math.max(...pick(poor, 'concealment')),
    worstConcealGood: Math.max(...pick(good, 'concealment')),
    goodFps: median(pick(good, 'fps')),
    goodHeight: median(pick(good, 'height')),
    fromPoorFps: median(pick(fromPoor, 'fps')),
    fromPoorHeight: median(pick(fromPoor, 'height')),
    toPoorFps: median(pick(toPoor, 'fps')),
    toPoorHeight: median(pick(toPoor, 'height')),
    freezesPoor: pick(poor, 'freezes').reduce((a, b) => a + (b ?? 0), 0),
    freezesGood: pick(good, 'freezes').reduce((a, b) => a + (b ?? 0), 0),
  };
  out.sharedSeconds = run.sharedSeconds;
  out.browsersBeside = run.browsersBeside;
  out.loadAtStart = run.loadAtStart;
  if (run.scenario.shaped) {
    Object.assign(out, {
      // Before any shaping: what the machine itself conceals (a busy CPU starves audio threads).
      baseWorstConceal: Math.max(...f.streams.map((s) => s.base.concealment)),
      baseGoodFps: median(f.streams.filter(good).map((s) => s.base.fps)),
      baseGoodHeight: median(f.streams.filter(good).map((s) => s.base.height)),
      uplinkKbps: f.uplinkKbps, uplinkMaxKbps: f.uplinkMaxKbps, dropsPerSecond: f.dropsPerSecond,
      uplinkQueueDrops: f.uplinkQueueDrops, downlinkQueueDrops: f.downlinkQueueDrops, p0StepsUp: f.p0StepsUp,
      adaptSeconds: f.adaptSeconds,
    });
    if (f.recoverSeconds !== undefined) out.recoverSeconds = f.recoverSeconds;
  } else {
    out.cpuPercent = median(f.browsers.map((b) => b.cpuPercent));
    out.cpuMax = Math.max(...f.browsers.map((b) => b.cpuPercent));
    out.sentKbps = median(f.browsers.map((b) => b.sentKbps));
    out.receivedKbps = median(f.browsers.map((b) => b.receivedKbps));
  }
  return out;
}

const fmt = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '—');

export function printRun(run, f, print = console.log) {
  print(`\n== ${run.name}, adaptation ${run.adapt ? 'on' : 'off'}${run.sharedSeconds ? ` (a Rust build ran beside it for ${run.sharedSeconds} s)` : ''}`);
  const ws = Object.keys(f.windows);
  print(`windows (s): ${ws.map((w) => `${w} ${f.windows[w].map((x) => fmt(x, 0)).join('-')}`).join(', ')}`);
  print(['receiver<-sender audio B/packet', ...ws.map((w) => `${w}: conceal% loss% jitter-ms fps height freezes kbit/s`)].join(' | '));
  for (const s of f.streams) {
    print([`${s.receiver}<-${s.sender}${s.poor ? ' *' : '  '} ${fmt(s.audioBytesPerPacket, 0).padStart(4)}`, ...ws.map((w) => {
      const x = s[w];
      return `${fmt(x.concealment, 2).padStart(6)} ${fmt(x.lossPct, 1).padStart(4)} ${fmt(x.jitterMs, 0).padStart(4)} ${fmt(x.fps).padStart(5)} ${fmt(x.height, 0).padStart(4)}p ${String(x.freezes ?? '—').padStart(3)} ${fmt(x.kbps, 0).padStart(5)}`;
    })].join(' | '));
  }
  print('browser: cpu% sent kbit/s received kbit/s');
  for (const b of f.browsers) print(`${b.name}: ${fmt(b.cpuPercent, 0)} ${fmt(b.sentKbps, 0)} ${fmt(b.receivedKbps, 0)}`);
  if (f.linkKbps) {
    print(`p0 uplink (adapted window): median ${fmt(f.uplinkKbps, 0)} kbit/s, max ${fmt(f.uplinkMaxKbps, 0)}, link ${f.linkKbps}; queue drops ${fmt(f.dropsPerSecond)} /s (median second); packets the queues dropped: up ${f.uplinkQueueDrops}, down ${f.downlinkQueueDrops}`);
    print(`time to adapt: ${fmt(f.adaptSeconds, 0)} s${f.recoverSeconds !== undefined ? `; time to recover: ${fmt(f.recoverSeconds, 0)} s` : ''}`);
  }
}

async function main() {
  const args = process.argv.slice(2);
  const name = args[0];
  const opt = (flag, fallback) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : fallback;
  };
  const modes = { both: [true, false], on: [true], off: [false] }[opt('--adapt', 'both')];
  const runs = Number(opt('--runs', '1'));
  const json = opt('--json', null);
  if (!SCENARIOS[name] || !modes) {
    console.error(`usage: node bench/shaped/run.mjs <${Object.keys(SCENARIOS).join('|')}> [--adapt both|on|off] [--runs N] [--json file]`);
    process.exit(2);
  }
  /** @type {Map<boolean, any[]>} */
  const summaries = new Map(modes.map((m) => [m, []]));
  for (let k = 0; k < runs; k++) {
    // Alternate the order, so neither mode always runs on a warmer machine.
    for (const adapt of k % 2 ? [...modes].reverse() : modes) {
      let run;
      try {
        run = await runScenario(name, { adapt, log: (line) => console.error(line) });
      } catch (err) {
        // One failed setup (a join that timed out on a loaded machine) is tried again, once.
        console.error(`run failed, once more: ${err.message.split('\n')[0]}`);
        run = await runScenario(name, { adapt, log: (line) => console.error(line) });
      }
      const f = figures(run);
      printRun(run, f);
      const s = summary(run, f);
      summaries.get(adapt).push(s);
      if (json) appendFileSync(json, `${JSON.stringify({ scenario: name, adapt, run: k, summary: s, streams: f.streams, browsers: f.browsers })}\n`);
    }
  }
  console.log(`\n== ${name}: median (min-max) over ${runs} run(s)`);
  const keys = Object.keys(summaries.get(modes[0])[0]);
  console.log(['figure', ...modes.map((m) => `adapt ${m ? 'on' : 'off'}`)].join(' | '));
  for (const key of keys) {
    console.log([key, ...modes.map((m) => {
      const xs = summaries.get(m).map((s) => s[key]);
      return `${fmt(median(xs))} (${fmt(Math.min(...xs))}-${fmt(Math.max(...xs))})`;
    })].join(' | '));
  }
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
