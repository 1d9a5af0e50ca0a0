// Two Chromium participants with iceTransportPolicy "relay" (the room link's `?relay=1`) meet
// through the server's own TURN relay on loopback: nothing but relayed candidates, video decoded
// both ways, and the server counted the relayed bytes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, participant, waitFor, decodingAll, joinWithMedia } from './harness.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** The selected pair's local and remote candidate types, from the page's first live connection. */
function selectedPair() {
  const pc = window.__pcs.find((p) => p.connectionState === 'connected');
  if (!pc) return null;
  return pc.getStats().then((stats) => {
    let pair = null;
    stats.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
    });
    if (!pair) return null;
    return {
      local: stats.get(pair.localCandidateId)?.candidateType,
      remote: stats.get(pair.remoteCandidateId)?.candidateType,
      policy: pc.getConfiguration().iceTransportPolicy,
    };
  });
}

test('two browsers meet through the built-in TURN relay alone', async () => {
  const ada = await participant(browser);
  const bo = await participant(browser);
  try {
    await joinWithMedia(ada.page, server.url, 'relayed?relay=1', 'Ada');
    await joinWithMedia(bo.page, server.url, 'relayed?relay=1', 'Bo');
    for (const p of [ada, bo]) {
      await waitFor(p.page, decodingAll, 1, { what: 'remote video decoding through the relay' });
      const pair = await p.page.evaluate(selectedPair);
      assert.deepEqual(pair, { local: 'relay', remote: 'relay', policy: 'relay' });
    }
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const relayed = Number(/videomeet_turn_relayed_bytes_total (\d+)/.exec(metrics)?.[1]);
    assert.ok(relayed > 5_000, `the relay carried the media (${relayed} bytes)`);
    assert.ok(Number(/videomeet_turn_allocations (\d+)/.exec(metrics)?.[1]) >= 2);
  } finally {
    await ada.context.close();
    await bo.context.close();
  }
  // Both seats are gone: their allocations follow within a second or two.
  let held = -1;
  for (let i = 0; i < 40 && held !== 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    held = Number(/videomeet_turn_allocations (\d+)/.exec(metrics)?.[1]);
  }
  assert.equal(held, 0, 'allocations released when the seats went');
});
