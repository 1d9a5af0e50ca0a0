// A shaped-link rig: the real server in its own network namespace with a bridge, and each
// participant's Chromium in a namespace of its own, joined to the bridge by a veth pair. A
// participant's link is shaped with `tc tbf` on both ends of its veth (egress inside = its
// uplink, egress on the bridge side = its downlink) and lossy with nftables' `numgen random`
// dropping its UDP in the bridge, both ways (netem is not in this kernel). Everything made here
// is named with a per-run tag and removed on exit, signal or timeout. Needs root, `ip`, `tc`,
// `nft`.
import { execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
// playwright-core is installed once, for the browser tests.
const require = createRequire(path.resolve(here, '../../tests/browser/package.json'));
const { chromium } = require('playwright-core');

export const BIN = process.env.VIDEOMEET_BIN ?? path.resolve(here, '../../target/debug/videomeet');
// The same Chromium and flags as the browser tests.
const { CHROMIUM, CHROMIUM_ARGS } = await import(path.resolve(here, '../../tests/browser/e2e/harness.mjs'));
const PORT = 8080;
const SERVER_IP = '10.77.0.1';

function sh(cmd, args, { quiet = false } = {}) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    if (quiet) return '';
    throw new Error(`${cmd} ${args.join(' ')}: ${err.stderr || err.message}`);
  }
}

/** Fails loudly, with the reason, where namespaces cannot be made (not root, no tools). */
export function checkCapable() {
  if (process.getuid?.() !== 0) throw new Error('the shaped-link rig needs root (ip netns, tc, nft)');
  for (const tool of ['ip', 'tc', 'nft']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      throw new Error(`the shaped-link rig needs \`${tool}\` (apt-get install -y iproute2 nftables)`);
    }
  }
}

/**
 * A bit rate for tc: 1_000_000 → "1000kbit".
 * @param {number} bps
 */
const kbit = (bps) => `${Math.round(bps / 1000)}kbit`;

/** tbf arguments for a rate: a burst of ~20 ms of traffic (at least 4 KiB) and 50 ms of queue. */
function tbf(bps, queueMs = 50) {
  const burst = Math.max(4096, Math.round((bps / 8) * 0.02));
  return ['tbf', 'rate', kbit(bps), 'burst', String(burst), 'latency', `${queueMs}ms`];
}

/** A qdisc's bytes, packets and drops so far (tc -s), in namespace `ns`. */
function qdiscCounters(ns, dev) {
  const out = sh('ip', ['netns', 'exec', ns, 'tc', '-s', 'qdisc', 'show', 'dev', dev], { quiet: true });
  const m = /Sent (\d+) bytes (\d+) pkt \(dropped (\d+)/.exec(out);
  return m ? { bytes: Number(m[1]), packets: Number(m[2]), dropped: Number(m[3]) } : { bytes: 0, packets: 0, dropped: 0 };
}

export class Rig {
  /** @param {{ participants: number, timeoutMs?: number, log?: (line: string) => void }} options */
  /**
   * @param {{ participants: number, timeoutMs?: number, log?: (line: string) => void, smallVideo?: boolean }} options
   *   `smallVideo`: cap every camera at 320x180, 15 fps (see `capCamera`).
   */
  constructor({ participants, timeoutMs = 180_000, log = () => {}, smallVideo = true }) {
    checkCapable();
    this.smallVideo = smallVideo;
    this.n = participants;
    this.tag = `vs${process.pid % 10000}`;
    this.srvNs = `${this.tag}-srv`;
    this.log = log;
    /** @type {string[]} namespaces made, to delete */
    this.namespaces = [];
    /** @type {import('node:child_process').ChildProcess | null} */
    this.server = null;
    /** @type {any[]} */
    this.browsers = [];
    this.dir = mkdtempSync(path.join(tmpdir(), 'videomeet-shaped-'));
    this.closed = false;
    this.onExit = () => this.cleanup();
    this.onSignal = (signal) => {
      this.cleanup();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    };
    process.on('exit', this.onExit);
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
    // Bounded in time whatever happens: a stuck run is ended and cleaned up.
    this.watchdog = setTimeout(() => {
      console.error(`shaped rig: over ${timeoutMs} ms, ending the run`);
      this.cleanup();
      process.exit(124);
    }, timeoutMs);
    this.watchdog.unref();
  }

  ns(i) { return `${this.tag}-p${i}`; }
  ip(i) { return `10.77.0.${11 + i}`; }
  hostDev(i) { return `${this.tag}h${i}`; }
  peerDev(i) { return `${this.tag}p${i}`; }
  get url() { return `http://${SERVER_IP}:${PORT}`; }

  /** Makes the namespaces, the bridge, the veth pairs, and starts the server. */
  async setup() {
    const srv = this.srvNs;
    sh('ip', ['netns', 'add', srv]);
    this.namespaces.push(srv);
    const inSrv = (...args) => sh('ip', ['netns', 'exec', srv, ...args]);
    inSrv('ip', 'link', 'set', 'lo', 'up');
    inSrv('ip', 'link', 'add', 'br0', 'type', 'bridge');
    inSrv('ip', 'addr', 'add', `${SERVER_IP}/24`, 'dev', 'br0');
    inSrv('ip', 'link', 'set', 'br0', 'up');
    for (let i = 0; i < this.n; i++) {
      const ns = this.ns(i);
      sh('ip', ['netns', 'add', ns]);
      this.namespaces.push(ns);
      sh('ip', ['link', 'add', this.hostDev(i), 'netns', srv, 'type', 'veth', 'peer', 'name', this.peerDev(i), 'netns', ns]);
      inSrv('ip', 'link', 'set', this.hostDev(i), 'master', 'br0');
      inSrv('ip', 'link', 'set', this.hostDev(i), 'up');
      const inNs = (...args) => sh('ip', ['netns', 'exec', ns, ...args]);
      inNs('ip', 'link', 'set', 'lo', 'up');
      inNs('ip', 'addr', 'add', `${this.ip(i)}/24`, 'dev', this.peerDev(i));
      inNs('ip', 'link', 'set', this.peerDev(i), 'up');
    }
    await this.#startServer();
  }

  async #startServer() {
    const args = ['netns', 'exec', this.srvNs, BIN, '--listen', `0.0.0.0:${PORT}`,
      '--tls-listen', 'off', '--stun-listen', 'off', '--state-dir', 'off'];
    const proc = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' } });
    this.server = proc;
    const logs = [];
    proc.stdout.on('data', (c) => logs.push(String(c)));
    proc.stderr.on('data', (c) => logs.push(String(c)));
    const deadline = Date.now() + 15000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`server exited: ${logs.join('')}`);
      const up = sh('ip', ['netns', 'exec', this.srvNs, 'sh', '-c', `ss -ltn | grep -q ':${PORT} ' && echo up`], { quiet: true });
      if (up.includes('up')) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`server did not listen: ${logs.join('')}`);
  }

  /**
   * Shapes participant i's link: `rate` bit/s each way (null: unshaped), `loss` 0..1 each way,
   * `queueMs` the longest a packet may wait in the link's queue before it is dropped (50 ms
   * unless said: a short home-router buffer; many buffer far more, trading delay for drops).
   * @param {number} i
   * @param {{ rate: number | null, loss?: number, queueMs?: number }} shape
   */
  shape(i, { rate, loss = 0, queueMs = 50 }) {
    const ns = this.ns(i);
    for (const [where, dev] of [[ns, this.peerDev(i)], [this.srvNs, this.hostDev(i)]]) {
      sh('ip', ['netns', 'exec', where, 'tc', 'qdisc', 'del', 'dev', dev, 'root'], { quiet: true });
      if (rate !== null) sh('ip', ['netns', 'exec', where, 'tc', 'qdisc', 'add', 'dev', dev, 'root', ...tbf(rate, queueMs)]);
    }
    // Loss is made on the way, in the bridge (nftables' bridge family), as a lossy access link
    // drops: not in the participant's own OUTPUT chain, where a dropped packet fails the
    // browser's send call with EPERM, which no real network does (the sender then knows which
    // packets were lost).
    const nft = (...args) => sh('ip', ['netns', 'exec', this.srvNs, 'nft', ...args], { quiet: true });
    const table = `loss${i}`;
    nft('delete', 'table', 'bridge', table);
    if (loss > 0) {
      nft('add', 'table', 'bridge', table);
      nft('add', 'chain', 'bridge', table, 'forward', '{ type filter hook forward priority 0; }');
      const perMille = String(Math.round(loss * 1000));
      for (const dir of ['iifname', 'oifname']) {
        nft('add', 'rule', 'bridge', table, 'forward', dir, this.hostDev(i), 'meta', 'l4proto', 'udp',
          'numgen', 'random', 'mod', '1000', '<', perMille, 'drop');
      }
      if (!nft('list', 'table', 'bridge', table).includes('drop')) throw new Error('nft did not take the loss rules');
    }
    this.log(`shape p${i}: ${rate === null ? 'unshaped' : kbit(rate)} loss ${Math.round(loss * 100)}%`);
  }

  /** Bytes and drops of participant i's uplink qdisc so far (tc -s). */
  uplinkCounters(i) {
    return qdiscCounters(this.ns(i), this.peerDev(i));
  }

  /** Bytes and drops of participant i's downlink qdisc so far (its veth's bridge end). */
  downlinkCounters(i) {
    return qdiscCounters(this.srvNs, this.hostDev(i));
  }

  /** Starts participant i's Chromium inside its namespace. */
  async launch(i) {
    const wrapper = path.join(this.dir, 'chromium-in-ns');
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec "$VIDEOMEET_NS" ${CHROMIUM} "$@"\n`);
    chmodSync(wrapper, 0o755);
    const browser = await chromium.launch({
      executablePath: wrapper,
      env: { ...process.env, VIDEOMEET_NS: this.ns(i) },
      args: [
        ...CHROMIUM_ARGS,
        // A plain-http origin that is not localhost is not a secure context: getUserMedia needs one.
        `--unsafely-treat-insecure-origin-as-secure=${this.url}`,
      ],
    });
    this.browsers[i] = browser;
    const context = await browser.newContext({ viewport: { width: 960, height: 640 } });
    await context.addInitScript(() => {
      // Keeps every RTCPeerConnection for the stats below; the page's own code is unchanged.
      window.__pcs = [];
      const Native = window.RTCPeerConnection;
      window.RTCPeerConnection = function (...args) {
        const pc = new Native(...args);
        window.__pcs.push(pc);
        return pc;
      };
      window.RTCPeerConnection.prototype = Native.prototype;
    });
    if (this.smallVideo) await context.addInitScript(capCamera);
    const page = await context.newPage();
    page.on('pageerror', (err) => console.error(`p${i} page error:`, err.message));
    return { browser, page, ns: this.ns(i) };
  }

  /** Joins participant i's page to `room` with camera and microphone on. */
  async join(page, room, name, { adapt = true } = {}) {
    // Once more from a fresh load if the lobby did not take the clicks (seen once on a machine
    // at load 12: the camera toggle never turned on).
    for (let attempt = 1; ; attempt++) {
      try {
        await page.goto(`${this.url}/r/${room}${adapt ? '' : '?adapt=0'}`);
        await page.getByLabel('Your name').fill(name);
        await page.getByRole('button', { name: 'Turn camera on' }).click();
        await page.getByRole('button', { name: 'Turn microphone on' }).click();
        await page.getByRole('button', { name: 'Turn camera off' }).waitFor({ timeout: 20000 });
        await page.getByRole('button', { name: 'Join', exact: true }).click();
        await page.getByRole('button', { name: 'Leave' }).waitFor({ timeout: 20000 });
        return;
      } catch (err) {
        if (attempt >= 2) throw err;
        this.log(`${name}: join failed (${err.message.split('\n')[0]}), once more`);
      }
    }
  }

  cleanup() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.watchdog);
    // What runs in our namespaces is what this rig started (browsers, the server): end it by pid.
    for (const ns of this.namespaces) {
      for (const pid of nsPids(ns)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    if (this.server?.pid) try { this.server.kill('SIGKILL'); } catch { /* gone */ }
    for (const ns of this.namespaces.reverse()) sh('ip', ['netns', 'del', ns], { quiet: true });
    this.namespaces = [];
    process.off('exit', this.onExit);
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }

  async close() {
    await Promise.all(this.browsers.map((b) => b?.close().catch(() => {})));
    this.cleanup();
  }
}

/**
 * Runs before the page: caps the fake camera at 320x180, 15 fps, whatever the page asks for
 * (getUserMedia and applyConstraints alike). Four to six Chromiums encoding and decoding VP8 in
 * software at the room-size policy's 480x270 saturate 2 cores before any link is shaped; this
 * keeps CPU out of what a run measures, for both policies alike.
 */
function capCamera() {
  const cap = (c) => (c && typeof c === 'object'
    ? { ...c, width: { ideal: 320, max: 320 }, height: { ideal: 180, max: 180 }, frameRate: { ideal: 15, max: 15 } }
    : c);
  const md = navigator.mediaDevices;
  const gum = md.getUserMedia.bind(md);
  md.getUserMedia = (constraints) => gum(constraints?.video ? { ...constraints, video: cap(typeof constraints.video === 'object' ? constraints.video : {}) } : constraints);
  const apply = MediaStreamTrack.prototype.applyConstraints;
  MediaStreamTrack.prototype.applyConstraints = function (c) {
    return apply.call(this, this.kind === 'video' ? cap(c ?? {}) : c);
  };
}

/**
 * Runs in a page: every open connection's cumulative counters, keyed by the peer's IP (the
 * selected pair's remote candidate), so the bench can name each stream sender → receiver.
 */
export async function pageStats() {
  const out = {};
  for (const pc of window.__pcs) {
    if (pc.connectionState === 'closed') continue;
    const report = await pc.getStats();
    let pairId = null;
    report.forEach((s) => { if (s.type === 'transport') pairId = s.selectedCandidatePairId; });
    const pair = pairId ? report.get(pairId) : null;
    const remote = pair ? report.get(pair.remoteCandidateId) : null;
    const ip = remote?.address ?? remote?.ip;
    if (!ip) continue;
    const row = {
      t: Date.now(), state: pc.connectionState, rtt: pair.currentRoundTripTime ?? null,
      available: pair.availableOutgoingBitrate ?? null,
      aIn: null, vIn: null, aOut: null, vOut: null, senders: [],
    };
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        row.aIn = { concealed: s.concealedSamples ?? 0, total: s.totalSamplesReceived ?? 0, lost: s.packetsLost ?? 0, received: s.packetsReceived ?? 0, bytes: s.bytesReceived ?? 0, jbDelay: s.jitterBufferDelay ?? 0, jbTarget: s.jitterBufferTargetDelay ?? 0, jbEmitted: s.jitterBufferEmittedCount ?? 0 };
      }
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        row.vIn = { frames: s.framesDecoded ?? 0, height: s.frameHeight ?? 0, width: s.frameWidth ?? 0, fps: s.framesPerSecond ?? 0, freezes: s.freezeCount ?? 0, freezeDur: s.totalFreezesDuration ?? 0, bytes: s.bytesReceived ?? 0 };
      }
      if (s.type === 'outbound-rtp' && s.kind === 'audio') {
        // Packets too: payload bytes per packet tell RED (each packet carries the one before:
        // about 125 B with the fake microphone) from plain Opus (about 60 B). The stats' codec
        // says audio/opus either way, since RED wraps the Opus payload type.
        row.aOut = { bytes: (s.bytesSent ?? 0) + (s.headerBytesSent ?? 0), payload: s.bytesSent ?? 0, packets: s.packetsSent ?? 0 };
      }
      if (s.type === 'outbound-rtp' && s.kind === 'video') {
        row.vOut = { bytes: (s.bytesSent ?? 0) + (s.headerBytesSent ?? 0), height: s.frameHeight ?? 0, fps: s.framesPerSecond ?? 0, limitation: s.qualityLimitationReason ?? '' };
      }
    });
    for (const sender of pc.getSenders()) {
      if (!sender.track) continue;
      const e = sender.getParameters().encodings?.[0] ?? {};
      row.senders.push({ kind: sender.track.kind, active: e.active !== false, maxBitrate: e.maxBitrate ?? null, scale: e.scaleResolutionDownBy ?? 1 });
    }
    out[ip] = row;
  }
  return out;
}

/** The processes in a namespace (`ip netns pids`). @param {string} ns */
export function nsPids(ns) {
  return sh('ip', ['netns', 'pids', ns], { quiet: true }).split('\n').filter(Boolean).map(Number);
}

/** CPU seconds used so far by every process in a namespace: one participant's whole browser. */
export function nsCpuSeconds(ns) {
  let total = 0;
  for (const pid of nsPids(ns)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / 100;
    } catch { /* exited */ }
  }
  return total;
}
