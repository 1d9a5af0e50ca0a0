// How often this page may send a reaction: a few at once, then one a second, well inside the
// server's room-message rate (8, then 2 a second), so a held-down click never meets slow_down.
// Pure: node tests drive it with their own clock.

/** A few at once, then one a second. */
export const REACTION_RATE = Object.freeze({ burst: 4, perSec: 1 });

/** How long a reaction floats over its tile, in ms. */
export const REACTION_MS = 4000;

/** A token bucket (like src/core/bucket.rs): `burst` at once, then `perSec`. */
export class ReactionLimiter {
  /** @param {{ burst: number, perSec: number }} [rate] */
  constructor(rate = REACTION_RATE) {
    this.rate = rate;
    this.tokens = rate.burst;
    /** @type {number | null} */
    this.at = null;
  }

  /** Takes one if there is one. @param {number} nowMs */
  take(nowMs) {
    if (this.at !== null) {
      this.tokens = Math.min(this.rate.burst, this.tokens + ((nowMs - this.at) / 1000) * this.rate.perSec);
    }
    this.at = nowMs;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
