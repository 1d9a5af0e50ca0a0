#!/usr/bin/env node
// Figures of docs/BENCHMARKS.md ("Files and recording in the browser"), from the real binary and
// Debian's Chromium with fake devices on loopback:
//
//   node bench/browser/files-recording.mjs throughput [--mib 128] [--runs 3]
//       a file from one page to another over the data channel, directly and over the built-in
//       TURN relay (?relay=1): MB/s from Accept to "arrived intact", and both pages' JS heap
//       before and after (it must not grow with the file).
//   node bench/browser/files-recording.mjs recording [--minutes 10] [--people 3]
//       one page records a call of N people for M minutes, written to a file as it goes (the
//       File System Access path, the save picker answered with a file of the origin's private
//       file system). The recorder runs in a browser of its own, so its whole process tree
//       (browser, renderer, GPU, utility processes) is what is measured: CPU (% of one core)
//       and memory (PSS, shared pages counted once) every 10 s, one minute in the call before
//       recording as the baseline.
//
// Needs a debug or release build (VIDEOMEET_BIN, default target/debug/videomeet) and
// `npm ci` in tests/browser. Prints one JSON line per run and a summary.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';

const here = path.dirname(fileURLToPath(import.meta.url));
const harness = await import(path.resolve(here, '../../tests/browser/e2e/harness.mjs'));
const { startServer, launch, participant, joinWithMedia, smallVideo, waitFor } = harness;
// playwright-core is installed once, for the browser tests.
const { chromium } = createRequire(path.resolve(here, '../../tests/browser/package.json'))('playwright-core');

const args = process.argv.slice(2);
const what = args[0];
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};

function pickerToPrivateFiles() {
  window.showSaveFilePicker = async ({ suggestedName }) => {
    const root = await navigator.storage.getDirectory();
    return root.getFileHandle(suggestedName, { create: true });
  };
}

const heap = (page) => page.evaluate(() => /** @type {any} */ (performance).memory?.usedJSHeapSize ?? null);

async function throughput() {
  const mib = opt('mib', 128);
  const runs = opt('runs', 3);
  const dir = mkdtempSync(path.join(tmpdir(), 'videomeet-bench-files-'));
  const file = path.join(dir, 'payload.bin');
  writeFileSync(file, randomBytes(mib * 1024 * 1024));
  const server = await startServer();
  const browser = await launch();
  const results = [];
  try {
    for (const relay of [false, true]) {
      for (let run = 0; run < runs; run++) {
        const room = `bench-files-${relay ? 'relay' : 'direct'}-${run}${relay ? '?relay=1' : ''}`;
        const ada = await participant(browser);
        const bo = await participant(browser);
        for (const p of [ada, bo]) await p.context.addInitScript(smallVideo);
        await bo.context.addInitScript(pickerToPrivateFiles);
        await joinWithMedia(ada.page, server.url, room, 'Ada', { audio: false });
        await joinWithMedia(bo.page, server.url, room, 'Bo', { audio: false });
        await waitFor(ada.page, () => window.__pcs.some((pc) => pc.sctp?.state === 'connected'), undefined, { what: 'channel', ms: 30000 });
        const before = { ada: await heap(ada.page), bo: await heap(bo.page) };
        const [chooser] = await Promise.all([ada.page.waitForEvent('filechooser'), ada.page.getByRole('button', { name: 'Send a file to Bo' }).click()]);
        await chooser.setFiles(file);
        const card = bo.page.locator('#transfers li', { hasText: 'payload.bin' });
        await card.getByRole('button', { name: 'Accept' }).click();
        const t0 = Date.now();
        let peakHeap = { ada: 0, bo: 0 };
        const sampler = setInterval(async () => {
          peakHeap = {
            ada: Math.max(peakHeap.ada, (await heap(ada.page).catch(() => 0)) ?? 0),
            bo: Math.max(peakHeap.bo, (await heap(bo.page).catch(() => 0)) ?? 0),
          };
        }, 250);
        await card.getByText('arrived intact').waitFor({ timeout: 600_000 });
        const seconds = (Date.now() - t0) / 1000;
        clearInterval(sampler);
        const result = {
          path: relay ? 'relay' : 'direct', mib, seconds, mbPerSecond: (mib * 1.048576) / seconds,
          heapBeforeMiB: { ada: before.ada / 2 ** 20, bo: before.bo / 2 ** 20 },
          heapPeakMiB: { ada: peakHeap.ada / 2 ** 20, bo: peakHeap.bo / 2 ** 20 },
        };
        console.log(JSON.stringify(result));
        results.push(result);
        await ada.context.close();
        await bo.context.close();
      }
    }
  } finally {
    await browser.close();
    await server.stop();
  }
  for (const p of ['direct', 'relay']) {
    const rates = results.filter((r) => r.path === p).map((r) => r.mbPerSecond).sort((a, b) => a - b);
    console.log(`${p}: ${mib} MiB, MB/s median ${rates[Math.floor(rates.length / 2)].toFixed(1)} (min ${rates[0].toFixed(1)}, max ${rates.at(-1).toFixed(1)})`);
  }
}

/** Every process under `root` (itself included). */
function tree(root) {
  const parents = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parents.set(Number(entry), Number(fields[1]));
    } catch { /* gone */ }
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) {
    for (const [pid, ppid] of parents) if (ppid === out[i]) out.push(pid);
  }
  return out;
}

/**
 * CPU seconds and memory of a process tree: PSS (each shared page divided among the processes
 * that map it, so the sum counts it once), from smaps_rollup.
 */
function usage(root) {
  let ticks = 0;
  let rss = 0;
  for (const pid of tree(root)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
      const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
      rss += Number(/^Pss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0) * 1024;
    } catch { /* gone */ }
  }
  return { cpu: ticks / 100, rss };
}

async function recording() {
  const minutes = opt('minutes', 10);
  const people = opt('people', 3);
  const server = await startServer();
  const others = await launch();
  // The recorder's browser as a server of its own, for its process id (a launched Browser has none).
  const ownServer = await chromium.launchServer({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
  const own = await chromium.connect(ownServer.wsEndpoint());
  const pid = ownServer.process().pid;
  try {
    if (!pid) throw new Error('no browser pid');
    const recorderContext = await own.newContext({ viewport: { width: 1000, height: 700 } });
    await recorderContext.addInitScript(smallVideo);
    await recorderContext.addInitScript(pickerToPrivateFiles);
    const ada = { context: recorderContext, page: await recorderContext.newPage() };
    await joinWithMedia(ada.page, server.url, 'bench-recording', 'Ada');
    const rest = [];
    for (let i = 1; i < people; i++) {
      const p = await participant(others);
      await p.context.addInitScript(smallVideo);
      await joinWithMedia(p.page, server.url, 'bench-recording', `P${i}`);
      rest.push(p);
    }
    await ada.page.waitForTimeout(10_000);
    const samples = [];
    const sample = async (phase, last) => {
      const now = usage(pid);
      const t = Date.now();
      const jsHeap = await heap(ada.page).catch(() => null);
      const row = {
        phase, t, pssMiB: now.rss / 2 ** 20, jsHeapMiB: jsHeap === null ? null : jsHeap / 2 ** 20,
        cpuPercent: last ? ((now.cpu - last.cpu) / ((t - last.t) / 1000)) * 100 : null,
      };
      samples.push(row);
      console.log(JSON.stringify(row));
      return { ...now, t };
    };
    let last = await sample('call', null);
    for (let i = 0; i < 6; i++) {
      await ada.page.waitForTimeout(10_000);
      last = await sample('call', last);
    }
    await ada.page.getByRole('button', { name: 'Start recording' }).click();
    await ada.page.getByRole('button', { name: 'Stop recording' }).waitFor();
    const t0 = Date.now();
    while (Date.now() - t0 < minutes * 60_000) {
      await ada.page.waitForTimeout(10_000);
      last = await sample('recording', last);
    }
    await ada.page.getByRole('button', { name: 'Stop recording' }).click();
    await ada.page.getByText('Your recording is saved.').waitFor({ timeout: 60_000 });
    const size = await ada.page.evaluate(async () => {
      const root = await navigator.storage.getDirectory();
      for await (const [name, handle] of root.entries()) if (name.endsWith('.webm')) return (await handle.getFile()).size;
      return 0;
    });
    const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    for (const phase of ['call', 'recording']) {
      const rows = samples.filter((s) => s.phase === phase && s.cpuPercent !== null);
      const rss = rows.map((r) => r.pssMiB);
      console.log(`${phase}: CPU median ${median(rows.map((r) => r.cpuPercent)).toFixed(0)}% of a core, PSS ${Math.min(...rss).toFixed(0)}–${Math.max(...rss).toFixed(0)} MiB (first ${rss[0].toFixed(0)}, last ${rss.at(-1).toFixed(0)}), JS heap last ${rows.at(-1).jsHeapMiB?.toFixed(1)} MiB`);
    }
    console.log(`file: ${(size / 1e6).toFixed(1)} MB for ${minutes} min (${((size * 8) / (minutes * 60) / 1000).toFixed(0)} kbit/s)`);
    for (const p of rest) await p.context.close();
  } finally {
    await own.close();
    await ownServer.close();
    await others.close();
    await server.stop();
  }
}

if (what === 'throughput') await throughput();
else if (what === 'recording') await recording();
else {
  console.error('usage: files-recording.mjs throughput|recording [options]');
  process.exit(2);
}
