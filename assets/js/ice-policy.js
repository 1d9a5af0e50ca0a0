// When to restart ICE on a peer connection: 3 s after `disconnected` if it has not recovered, at
// once on `failed`, at most one restart in flight. Pure (timers are injected) so node tests it.

export const DISCONNECTED_GRACE_MS = 3000;
/** A connection that has not connected this long after it was made, or after a restart, gets one. */
export const STUCK_MS = 12000;
/** A restart that has not brought the connection back by then may be tried again. */
export const RESTART_TIMEOUT_MS = 10000;

export class IceRestartPolicy {
  /**
   * @param {{ restart: () => void, responsible: boolean,
   *           setTimer?: typeof setTimeout, clearTimer?: typeof clearTimeout, now?: () => number }} options
   *   `responsible`: whether this side drives restarts (the impolite side of perfect negotiation).
   */
  constructor({
    restart,
    responsible,
    // Wrapped: browsers throw "Illegal invocation" when setTimeout is called as a method of another object.
    setTimer = (fn, ms) => setTimeout(fn, ms),
    clearTimer = (id) => clearTimeout(id),
    now = () => Date.now(),
  }) {
    this.restart = restart;
    this.responsible = responsible;
    this.setTimer = setTimer;
    this.clearTimer = clearTimer;
    this.now = now;
    this.timer = null;
    this.stuckTimer = null;
    this.inFlightSince = null;
    this.restarts = 0;
    this.#watchStuck();
  }

  /** Setting up can stall under load (a lost candidate, a slow DTLS handshake): restart then. */
  #watchStuck() {
    if (!this.responsible || this.stuckTimer) return;
    this.stuckTimer = this.setTimer(() => {
      this.stuckTimer = null;
      this.inFlightSince = null;
      this.#fire();
      this.#watchStuck();
    }, STUCK_MS);
  }

  /** Feed every `connectionState` (or `iceConnectionState`) change here. */
  onState(state) {
    if (state === 'connected' || state === 'completed') {
      this.#cancel();
      this.#cancelStuck();
      this.inFlightSince = null;
      return;
    }
    if (state === 'closed') {
      this.#cancel();
      this.#cancelStuck();
      return;
    }
    if (!this.responsible) return;
    if (state === 'failed') {
      this.#cancel();
      this.#fire();
    } else if (state === 'disconnected' && !this.timer) {
      this.timer = this.setTimer(() => {
        this.timer = null;
        this.#fire();
      }, DISCONNECTED_GRACE_MS);
    }
  }

  #fire() {
    if (this.inFlightSince !== null && this.now() - this.inFlightSince < RESTART_TIMEOUT_MS) return;
    this.inFlightSince = this.now();
    this.restarts += 1;
    this.restart();
    // If this restart does not bring it back either, try again later.
    this.#watchStuck();
  }

  #cancel() {
    if (this.timer) this.clearTimer(this.timer);
    this.timer = null;
  }

  #cancelStuck() {
    if (this.stuckTimer) this.clearTimer(this.stuckTimer);
    this.stuckTimer = null;
  }

  dispose() {
    this.#cancel();
    this.#cancelStuck();
  }
}
