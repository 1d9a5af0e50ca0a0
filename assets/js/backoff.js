// Reconnect delays: jittered exponential backoff from about 0.5 s up to 5 s. Pure, so node tests it.
// Which close codes reconnect at all is the protocol's to say: `shouldReconnect` in protocol.js.

/** @typedef {{ base: number, max: number, factor: number, jitter: number }} BackoffPolicy */

/** @type {BackoffPolicy} */
export const DEFAULT_BACKOFF = { base: 500, max: 5000, factor: 2, jitter: 0.3 };

/**
 * Delay in ms before reconnect attempt `attempt` (0 for the first).
 * @param {number} attempt
 * @param {() => number} [random] a source of numbers in [0, 1)
 * @param {BackoffPolicy} [policy]
 */
export function backoffDelay(attempt, random = Math.random, policy = DEFAULT_BACKOFF) {
  const raw = Math.min(policy.max, policy.base * policy.factor ** Math.max(0, attempt));
  // Spread clients that lost the server at the same instant, so they do not return together.
  const spread = raw * policy.jitter * (random() * 2 - 1);
  return Math.round(Math.min(policy.max, Math.max(policy.base * (1 - policy.jitter), raw + spread)));
}
