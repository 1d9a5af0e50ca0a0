// An ICE restart recovers a connection whose packets were cut: UDP on loopback is dropped with
// iptables until the connection reports `disconnected`, then let through again. Needs root and
// iptables (.ci/run installs it); skipped with a reason otherwise.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startServer, launch, participant, waitFor, decodingAll, joinWithMedia } from './harness.mjs';

const RULE = ['INPUT', '-i', 'lo', '-p', 'udp', '-j', 'DROP'];
/** Runs the same rule change for IPv4 and IPv6: Chromium pairs host candidates over either. */
function iptables(...args) {
  execFileSync('iptables', args, { stdio: 'pipe' });
  execFileSync('ip6tables', args, { stdio: 'pipe' });
}
let usable = '';
try {
  iptables('-L', '-n');
} catch (err) {
  usable = `iptables unavailable: ${err.message.split('\n')[0]}`;
}

let browser;
let server;
after(async () => {
  for (const tool of ['iptables', 'ip6tables']) {
    try { execFileSync(tool, ['-D', ...RULE], { stdio: 'pipe' }); } catch { /* not inserted */ }
  }
  await browser?.close();
  await server?.stop();
});

function countRestarts() {
  window.__restarts = 0;
  const native = RTCPeerConnection.prototype.restartIce;
  RTCPeerConnection.prototype.restartIce = function () {
    window.__restarts += 1;
    return native.call(this);
  };
}

test('cut packets: disconnected, an ICE restart 3 s later, connected again', { skip: usable || false }, async () => {
  server = await startServer();
  browser = await launch();
  const ada = await participant(browser);
  const bo = await participant(browser);
  await ada.context.addInitScript(countRestarts);
  await bo.context.addInitScript(countRestarts);
  await joinWithMedia(ada.page, server.url, 'ice', 'Ada');
  await joinWithMedia(bo.page, server.url, 'ice', 'Bo');
  await waitFor(ada.page, decodingAll, 1, { what: 'decoding before the cut' });

  iptables('-I', ...RULE);
  let restored = false;
  try {
    await waitFor(ada.page, () => window.__pcs.some((pc) => pc.connectionState === 'disconnected' || pc.connectionState === 'failed'),
      undefined, { ms: 30000, what: 'the connection to notice the cut' });
    const cutSeen = Date.now();
    // The responsible (impolite) side restarts ICE about 3 s after `disconnected`.
    await waitFor(ada.page, async () => {
      const restarts = await Promise.resolve(window.__restarts);
      return restarts > 0 || 'no restart on this side';
    }, undefined, { ms: 8000, what: 'a restart' }).catch(async () => {
      await waitFor(bo.page, () => window.__restarts > 0, undefined, { ms: 8000, what: 'a restart on either side' });
    });
    const restartAfter = (Date.now() - cutSeen) / 1000;
    assert.ok(restartAfter >= 2, `restart came ${restartAfter} s after disconnected, not before the 3 s grace`);
    iptables('-D', ...RULE);
    restored = true;
    for (const p of [ada, bo]) await waitFor(p.page, decodingAll, 1, { ms: 30000, what: 'connected and decoding again' });
    const total = await ada.page.evaluate(() => window.__restarts) + await bo.page.evaluate(() => window.__restarts);
    assert.ok(total >= 1 && total <= 4, `${total} restarts: one in flight at a time`);
  } finally {
    if (!restored) iptables('-D', ...RULE);
    await ada.context.close();
    await bo.context.close();
  }
});
