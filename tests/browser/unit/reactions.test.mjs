// The reaction rate, with a clock of the test's own.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { REACTION_RATE, ReactionLimiter } from '../../../assets/js/reactions.js';

test('reactions: a burst of four, then one a second; a pause refills it', () => {
  const limiter = new ReactionLimiter();
  const sent = Array.from({ length: 10 }, () => limiter.take(1000)).filter(Boolean).length;
  assert.equal(sent, REACTION_RATE.burst);
  assert.equal(limiter.take(1500), false, 'half a second is not enough');
  assert.equal(limiter.take(2000), true, 'one a second');
  assert.equal(limiter.take(2000), false);
  assert.equal(Array.from({ length: 10 }, () => limiter.take(60_000)).filter(Boolean).length, REACTION_RATE.burst, 'no more than the burst after a long pause');
});
