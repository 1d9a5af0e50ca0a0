// Two browsers in a room behind HAProxy (deploy/haproxy.cfg, as tests/scaling.rs runs it) and
// two instances; the room's instance is killed. The pages must find the room again on the other
// instance by themselves and decode each other there. Needs Debian's haproxy (.ci/run installs
// it).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, participant, waitFor, decodingAll, joinWithMedia } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const HAPROXY = ['haproxy', '/usr/sbin/haproxy'].find((bin) => !spawnSync(bin, ['-v']).error);

const freePort = () => new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const { port } = s.address();
    s.close(() => resolve(port));
  });
});

/** The instance that answers `url` through HAProxy (its X-Served-By header). */
const servedBy = (url) => new Promise((resolve, reject) => {
  http.get(url, (res) => { res.resume(); resolve(res.headers['x-served-by']); }).on('error', reject);
});

/** deploy/haproxy.cfg with the loopback frontend, peer port, stderr logs and these servers. */
function config(port, peerPort, servers) {
  let out = '';
  let wrote = false;
  for (const line of readFileSync(path.resolve(here, '../../../deploy/haproxy.cfg'), 'utf8').split('\n')) {
    const t = line.trimStart();
    if (t === 'bind :80') out += `    bind 127.0.0.1:${port}\n`;
    else if (t.startsWith('log /dev/log')) out += '    log stderr format raw local0\n';
    else if (t.startsWith('peer ')) out += `    peer ${t.split(/\s+/)[1]} 127.0.0.1:${peerPort}\n`;
    else if (t.startsWith('server ')) {
      if (!wrote) for (const [name, addr] of servers) out += `    server ${name} ${addr}\n`;
      wrote = true;
    } else out += `${line}\n`;
  }
  assert.ok(wrote, 'deploy/haproxy.cfg has server lines');
  return out;
}

let browser;
let haproxy;
const instances = [];
after(async () => {
  await browser?.close();
  haproxy?.kill('SIGKILL');
  for (const s of instances) await s.stop();
});

test('behind HAProxy, when the room\'s instance is killed both pages meet again on the other', async () => {
  assert.ok(HAPROXY, 'haproxy is not installed: apt-get install -y haproxy (Debian; .ci/run does)');
  const args = ['--trusted-proxies', '127.0.0.1', '--stun-listen', 'off'];
  instances.push(await startServer(args), await startServer(args));
  const servers = new Map([['vm1', instances[0]], ['vm2', instances[1]]]);
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'videomeet-haproxy-'));
  const addrs = [...servers].map(([name, s]) => [name, s.url.replace('http://', '')]);
  writeFileSync(path.join(dir, 'haproxy.cfg'), config(port, await freePort(), addrs));
  haproxy = spawn(HAPROXY, ['-f', path.join(dir, 'haproxy.cfg'), '-db'], { stdio: ['ignore', 'ignore', 'pipe'] });
  haproxy.stderr.on('data', () => {});
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 50; i++) {
    if (await servedBy(`${url}/healthz`).then(() => true, () => false)) break;
    await new Promise((r) => setTimeout(r, 100));
  }

  browser = await launch();
  const ada = await participant(browser);
  const bo = await participant(browser);
  const room = 'two-machines';
  const home = await servedBy(`${url}/r/${room}`);
  await joinWithMedia(ada.page, url, room, 'Ada');
  await joinWithMedia(bo.page, url, room, 'Bo');
  await waitFor(ada.page, decodingAll, 1, { what: 'decoding before' });
  const pcsBefore = await ada.page.evaluate(() => window.__pcs.length);

  const killedAt = Date.now();
  servers.get(home).proc.kill('SIGKILL');
  await ada.page.getByText('Connection to the server lost').waitFor();
  for (const p of [ada, bo]) {
    await waitFor(p.page, async () => {
      const banner = document.getElementById('banner');
      if (!banner.hidden) return 'banner still up';
      const pcs = window.__pcs.filter((pc) => pc.connectionState === 'connected');
      for (const pc of pcs) {
        let frames = 0;
        (await pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded; });
        if (frames > 0) return true;
      }
      return 'not decoding';
    }, undefined, { ms: 10000, what: 'back in the room on the other instance and decoding' });
  }
  const seconds = (Date.now() - killedAt) / 1000;
  assert.ok(seconds <= 10, `${seconds} s`);
  assert.notEqual(await servedBy(`${url}/r/${room}`), home, 'the room moved');
  for (const p of [ada, bo]) {
    assert.equal(await p.page.locator('figure.tile').count(), 2, 'no duplicate or stale tile');
  }
  assert.equal(
    await ada.page.locator('figure.tile .badge', { hasText: 'Host' }).count(), 1,
    'the room has one host again (whoever came back first)',
  );
  // The other instance gave new seats, so the pages built a fresh connection (PROTOCOL.md).
  assert.equal(await ada.page.evaluate(() => window.__pcs.length), pcsBefore + 1);
  await ada.context.close();
  await bo.context.close();
});
