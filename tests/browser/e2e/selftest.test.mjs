// /selftest in real Chromium with a fake camera: against the built-in STUN/TURN every check
// passes, including a call through the relay; against a server without a relay the page says
// what is missing and how to add it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, participant } from './harness.mjs';

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

/** Runs the check and returns { status per check, summary }. */
async function runCheck(url) {
  const { context, page } = await participant(browser);
  try {
    await page.goto(`${url}/selftest`);
    await page.getByRole('button', { name: 'Run the check again' }).waitFor();
    await page.waitForFunction(() => !document.getElementById('again').disabled, null, { timeout: 60000 });
    const checks = await page.evaluate(() => Object.fromEntries(
      [...document.querySelectorAll('[data-check]')].map((li) => [li.dataset.check, [li.dataset.status, li.querySelector('.detail').textContent]]),
    ));
    const summary = await page.getByRole('status').textContent();
    return { checks, summary };
  } finally {
    await context.close();
  }
}

test('with the built-in relay every check passes, the call through the relay included', async () => {
  const server = await startServer();
  try {
    const { checks, summary } = await runCheck(server.url);
    for (const [name, [status, detail]] of Object.entries(checks)) {
      assert.equal(status, 'ok', `${name}: ${detail}`);
    }
    assert.match(checks.call[1], /ms round trip through the relay, video arrives/);
    assert.match(summary, /Everything works/);
  } finally {
    await server.stop();
  }
});

test('without a relay the page says so and how to turn it on', async () => {
  const server = await startServer(['--stun-listen', 'off']);
  try {
    const { checks, summary } = await runCheck(server.url);
    assert.equal(checks.media[0], 'ok');
    assert.equal(checks.server[0], 'ok');
    assert.equal(checks['relay-udp'][0], 'fail');
    assert.match(checks['relay-udp'][1], /--stun-listen/);
    assert.equal(checks.call[0], 'fail');
    assert.match(summary, /checks failed/);
  } finally {
    await server.stop();
  }
});
