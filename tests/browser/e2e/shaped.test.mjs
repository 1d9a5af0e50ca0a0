// The short version of the weak-network benchmark (bench/shaped/, docs/BENCHMARKS.md): three
// people, each Chromium in its own network namespace; one of them drops to 300 kbit/s each way
// with 5% UDP loss each way. The adaptation must lower what the others send to it (their
// encodings towards it, and only those) and what it sends, and audio must stay continuous.
// Why 300 and not 500 kbit/s: the rig's 180p camera needs ~190 kbit/s per stream, so p0's two
// video streams and their audio (~400 kbit/s) fit in 500; on a fast CI machine Chromium's
// estimate then stayed high, nothing needed lowering, and the assertion below failed on a call
// that was fine. At 300 kbit/s the call does not fit without adapting, on any machine.
// Needs root and network namespaces: where they cannot be made, this fails, it does not skip.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { SCENARIOS, figures, printRun, runScenario } from '../../../bench/shaped/run.mjs';

test('shaped link: one participant on 300 kbit/s with 5% loss; the others adapt to it alone, audio stays continuous', { timeout: 150_000 }, async () => {
  const run = await runScenario('ci', { adapt: true, log: () => {} });
  const f = figures(run);
  printRun(run, f, (line) => console.log(line));
  const last = run.series.at(-1).stats;
  const ipOf = (name) => [...run.ipName].find(([, n]) => n === name)[0];

  // The good participants' senders towards p0 were lowered below the room-size ceiling (or
  // paused), their senders towards each other were not.
  const ceiling = 600_000; // bandwidth.js sendPolicy(2)
  for (const sender of [1, 2]) {
    const toPoor = last[sender][ipOf('p0')].senders.find((s) => s.kind === 'video');
    assert.ok(!toPoor.active || toPoor.maxBitrate < ceiling, `p${sender} -> p0 lowered: ${JSON.stringify(toPoor)}`);
    const other = sender === 1 ? 'p2' : 'p1';
    const toGood = last[sender][ipOf(other)].senders.find((s) => s.kind === 'video');
    assert.ok(toGood.active && toGood.maxBitrate === ceiling, `p${sender} -> ${other} untouched: ${JSON.stringify(toGood)}`);
  }
  // p0's own uplink: lowered to fit, and within its link.
  const mine = Object.values(last[0]).map((r) => r.senders.find((s) => s.kind === 'video'));
  assert.ok(mine.some((s) => !s.active || s.maxBitrate < ceiling), `p0 lowered what it sends: ${JSON.stringify(mine)}`);
  assert.ok(f.uplinkKbps <= SCENARIOS.ci.shaped.rate / 1000, `p0 uplink ${f.uplinkKbps} kbit/s`);

  // Audio continuous once adapted, on every stream, the shaped ones included.
  for (const s of f.streams) {
    assert.ok(s.adapted.concealment < 3, `${s.receiver}<-${s.sender} concealed ${s.adapted.concealment.toFixed(2)}%`);
  }
  // The two good participants still see each other at full rate.
  for (const s of f.streams.filter((x) => !x.poor)) {
    assert.ok(s.adapted.fps >= 12, `${s.receiver}<-${s.sender} at ${s.adapted.fps.toFixed(1)} fps`);
  }
});
