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
//       page's own path where no save picker is offered: a file of the origin's private file
//       system). The recorder runs in a browser of its own with a profile on disk (a
//       Playwright context is off the record, and Chromium keeps an off-the-record profile's
//       private file system in memory: the recording would be measured as memory), so its
//       whole process tree (browser, renderer, GPU, utility processes) is what is measured:
//       CPU (% of one core) and memory (PSS, shared pages counted once) every 10 s, one minute
//       in the call before recording as the baseline.
//
// Needs a debug or release build (VIDEOMEET_BIN, default target/debug/videomeet) and
// `npm ci` in tests/browser. Prints one JSON line per run and a summary.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';

const here = path.dirname(fileURLToPath(import.meta.url));
const harness = await import(path.resolve(here, '../../tests/browser/e2e/harness.mjs'));
const {
  startServer, launch, participant, joinWithMedia, smallVideo, waitFor, pickerToPrivateFiles, noFileSystemAccess,
  CHROMIUM, CHROMIUM_ARGS,
} = harness;
// playwright-core is installed once, for the browser tests.
const { chromium } = createRequire(path.resolve(here, '../../tests/browser/package.json'))('playwright-core');

const args = process.argv.slice(2);
const what = args[0];
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};

/** The browser process (no --type=) whose command line names this profile. @param {string} profile */
function browserPid(profile) {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (cmd.some((a) => a === `--user-data-dir=${profile}`) && !cmd.some((a) => a.startsWith('--type='))) return Number(entry);
    } catch { /* gone */ }
  }
  return null;
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
  /** PSS in MiB by process kind (browser, renderer, gpu-process, utility:audio, …): where it goes. */
  const byKind = {};
  for (const pid of tree(root)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
      const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
      const pss = Number(/^Pss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0) * 1024;
      rss += pss;
      // (Chromium's children rewrite their title: one string with spaces, not NUL-separated.)
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const type = /--type=(\S+)/.exec(cmd)?.[1].replace(/\0.*/, '') ?? 'browser';
      const sub = /--utility-sub-type=([^\s\0]+)/.exec(cmd)?.[1].split('.').at(-1);
      const kind = sub ? `${type}:${sub}` : type;
      byKind[kind] = Math.round(((byKind[kind] ?? 0) + pss / 2 ** 20) * 10) / 10;
    } catch { /* gone */ }
  }
  return { cpu: ticks / 100, rss, byKind };
}

async function recording() {
  const minutes = opt('minutes', 10);
  const people = opt('people', 3);
  const server = await startServer();
  const others = await launch();
  // The recorder's browser on a profile of its own on disk, found by that profile's path.
  const profile = mkdtempSync(path.join(tmpdir(), 'videomeet-bench-recorder-'));
  const recorderContext = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, viewport: { width: 1000, height: 700 }, args: [...CHROMIUM_ARGS],
  });
  const pid = browserPid(profile);
  try {
    if (!pid) throw new Error('no browser pid');
    await recorderContext.addInitScript(smallVideo);
    // No save picker (as in Firefox): the page writes to its private file system itself.
    await recorderContext.addInitScript(noFileSystemAccess);
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
        phase, t, pssMiB: now.rss / 2 ** 20, jsHeapMiB: jsHeap === null ? null : jsHeap / 2 ** 20, byKind: now.byKind,
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
    await ada.page.getByRole('button', { name: 'Save recording' }).waitFor({ timeout: 60_000 });
    const size = await ada.page.evaluate(async () => {
      const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('recordings');
      for await (const [name, handle] of dir.entries()) if (name.endsWith('.webm')) return (await handle.getFile()).size;
      return 0;
    });
    const onDisk = execFileSync('du', ['-sm', profile], { encoding: 'utf8' }).split('\t')[0];
    console.log(`profile on disk after the recording: ${onDisk} MiB`);
    const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    for (const phase of ['call', 'recording']) {
      const rows = samples.filter((s) => s.phase === phase && s.cpuPercent !== null);
      const rss = rows.map((r) => r.pssMiB);
      console.log(`${phase}: CPU median ${median(rows.map((r) => r.cpuPercent)).toFixed(0)}% of a core, PSS ${Math.min(...rss).toFixed(0)}–${Math.max(...rss).toFixed(0)} MiB (first ${rss[0].toFixed(0)}, last ${rss.at(-1).toFixed(0)}), JS heap last ${rows.at(-1).jsHeapMiB?.toFixed(1)} MiB`);
    }
    console.log(`file: ${(size / 1e6).toFixed(1)} MB for ${minutes} min (${((size * 8) / (minutes * 60) / 1000).toFixed(0)} kbit/s)`);
    for (const p of rest) await p.context.close();
  } finally {
    await recorderContext.close();
    rmSync(profile, { recursive: true, force: true });
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
