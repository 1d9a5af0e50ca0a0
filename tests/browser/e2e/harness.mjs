// Starts the real videomeet binary on a free loopback port and Debian's Chromium with a fake
// camera and microphone. Observes the page without test hooks: an init script wraps
// RTCPeerConnection and getUserMedia before the page's own code runs.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.VIDEOMEET_BIN ?? path.resolve(here, '../../../target/debug/videomeet');

/**
 * Starts the server with plain HTTP on `listen` and HTTPS (self-signed) on a free port, its
 * state in a fresh directory unless `args` names one; resolves with
 * { url, httpsUrl, stateDir, proc, stop(), logs }.
 */
export async function startServer(args = [], listen = '127.0.0.1:0') {
  const stateDir = mkdtempSync(path.join(tmpdir(), 'videomeet-e2e-'));
  // The built-in STUN/TURN server on its own free port, as in production (3478 there).
  const base = ['--listen', listen, '--tls-listen', '127.0.0.1:0', '--stun-listen', '127.0.0.1:0', '--state-dir', stateDir];
  const proc = spawn(BIN, [...base, ...args], {
    env: { ...process.env, RUST_LOG: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs = [];
  const { url, httpsUrl } = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${logs.join('')}`)), 15000);
    const onData = (chunk) => {
      logs.push(chunk.toString());
      const text = logs.join('');
      // The budget line comes after both "listening on" lines.
      if (!/ budget \d+ MiB/.test(text)) return;
      clearTimeout(timer);
      resolve({
        url: /listening on (http:\/\/[0-9.:]+)/.exec(text)?.[1],
        httpsUrl: /listening on (https:\/\/[0-9.:]+)/.exec(text)?.[1],
      });
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code) => reject(new Error(`server exited ${code}:\n${logs.join('')}`)));
  });
  return {
    url,
    httpsUrl,
    stateDir,
    proc,
    logs,
    async stop() {
      if (proc.exitCode !== null) return proc.exitCode;
      proc.kill('SIGTERM');
      return new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
    },
  };
}

/** The Chromium every test and bench launches, and its flags: fake devices, nothing in the background. */
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = Object.freeze([
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
]);

/** Chromium with fake devices; `extra` adds flags (e.g. --host-resolver-rules for a LAN name). */
export async function launch(extra = []) {
  return chromium.launch({ executablePath: CHROMIUM, args: [...extra, ...CHROMIUM_ARGS] });
}

/** An init script: the save picker answers with a file of the origin's private file system (OPFS). */
export function pickerToPrivateFiles() {
  window.showSaveFilePicker = async ({ suggestedName }) => {
    const root = await navigator.storage.getDirectory();
    return root.getFileHandle(suggestedName, { create: true });
  };
}

/** An init script: no File System Access save picker, as in Firefox and Safari. */
export function noFileSystemAccess() {
  delete window.showSaveFilePicker;
  delete Window.prototype.showSaveFilePicker;
}

/** Runs before the page's scripts: keeps every RTCPeerConnection and counts getUserMedia calls. */
function instrument() {
  window.__pcs = [];
  window.__gum = 0;
  window.__offers = 0;
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = function (...args) {
    const pc = new Native(...args);
    window.__pcs.push(pc);
    return pc;
  };
  window.RTCPeerConnection.prototype = Native.prototype;
  // Static members too (generateCertificate).
  Object.setPrototypeOf(window.RTCPeerConnection, Native);
  const setLocal = Native.prototype.setLocalDescription;
  Native.prototype.setLocalDescription = function (...args) {
    const result = setLocal.apply(this, args);
    result.then(() => { if (this.localDescription?.type === 'offer') window.__offers += 1; }).catch(() => {});
    return result;
  };
  const md = navigator.mediaDevices;
  if (md) {
    const gum = md.getUserMedia.bind(md);
    md.getUserMedia = (constraints) => {
      window.__gum += 1;
      return gum(constraints);
    };
  }
}

/**
 * Asks the fake camera for small video, as the E2E notes advise for many participants on 2 cores:
 * the product's own constraints are kept, only the size and rate are lowered.
 */
export function smallVideo() {
  const md = navigator.mediaDevices;
  const gum = md.getUserMedia.bind(md);
  md.getUserMedia = (constraints) => {
    if (constraints?.video) {
      const base = typeof constraints.video === 'object' ? constraints.video : {};
      constraints = { ...constraints, video: { ...base, width: { ideal: 320 }, height: { ideal: 240 }, frameRate: { ideal: 15, max: 15 } } };
    }
    return gum(constraints);
  };
}

/** A participant: its own browser context (cookies, storage) and page. */
export async function participant(browser, options = {}) {
  const context = await browser.newContext({ viewport: options.viewport ?? { width: 1000, height: 700 }, ...options.context });
  await context.addInitScript(instrument);
  const page = await context.newPage();
  page.on('pageerror', (err) => console.error('page error:', err.message, err.stack));
  return { context, page };
}

/** Polls `fn` in the page until it returns truthy; fails with `what` after `ms`. */
export async function waitFor(page, fn, arg, { ms = 15000, what = 'condition' } = {}) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    last = await page.evaluate(fn, arg).catch((e) => `error: ${e.message}`);
    if (last === true) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

/** True in the page when every open peer connection decodes remote video. */
export const decodingAll = async (expected) => {
  const pcs = window.__pcs.filter((pc) => pc.connectionState !== 'closed');
  if (pcs.length !== expected) return `pcs=${pcs.length}`;
  for (const pc of pcs) {
    if (pc.connectionState !== 'connected') {
      return `${pc.connectionState} sig=${pc.signalingState} ice=${pc.iceConnectionState}/${pc.iceGatheringState} remote=${pc.remoteDescription?.type ?? 'none'} local=${pc.localDescription?.type ?? 'none'}`;
    }
    const stats = await pc.getStats();
    let frames = 0;
    stats.forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded ?? 0; });
    if (frames === 0) return 'no frames';
  }
  return true;
};

/** Fills the lobby and joins with camera and microphone on. */
export async function joinWithMedia(page, url, room, name, { audio = true } = {}) {
  await page.goto(`${url}/r/${room}`);
  await page.getByLabel('Your name').fill(name);
  await page.getByRole('button', { name: 'Turn camera on' }).click();
  if (audio) await page.getByRole('button', { name: 'Turn microphone on' }).click();
  await page.getByRole('button', { name: 'Turn camera off' }).waitFor();
  await page.getByRole('button', { name: 'Join', exact: true }).click();
  await page.getByRole('button', { name: 'Leave' }).waitFor();
}
