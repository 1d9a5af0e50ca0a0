// Per-peer send adaptation: what this page sends to one peer, decided from that link's own
// stats over time. In a full mesh every peer has its own RTCPeerConnection and its own
// congestion controller, so one poor link lowers only what goes over it. Chromium's controller
// already moves the bitrate; this policy adds what it does not do: a ladder of resolution and
// frame rate the encoder can actually hold, video that yields to audio and pauses when a link
// cannot carry both, probing back up with hysteresis, what the receiver asked for (audio only,
// hidden tile, speaker preference), and a plain quality level with its reason.
// Pure (samples carry their own time), so node tests it like ice-policy.js.

/**
 * One sample of a link's stats, flattened from an RTCStatsReport by peers.js. Counters are
 * cumulative, as getStats gives them; the policy takes the differences.
 * @typedef {{
 *   t: number,
 *   rtt: number | null,
 *   available: number | null,
 *   limitation: string | null,
 *   videoBytesSent: number,
 *   outLoss: number | null,
 *   outAudioLoss: number | null,
 *   outPacketsSent: number,
 *   outPacketsLost: number,
 *   inPacketsReceived: number,
 *   inPacketsLost: number,
 *   concealed: number,
 *   samplesReceived: number,
 *   inFramesDecoded: number,
 * }} LinkSample
 *   `t` ms; `rtt` seconds (the selected candidate pair); `available` the pair's
 *   availableOutgoingBitrate in bit/s; `limitation` the video outbound-rtp's
 *   qualityLimitationReason; `outLoss` / `outAudioLoss` the fraction the peer reports lost of our
 *   video / audio (remote-inbound-rtp fractionLost, 0..1: one report's, noisy when few packets
 *   went out); `outPacketsSent` / `outPacketsLost` the cumulative packets we sent (audio and
 *   video) and the peer reports lost of them, from which the policy takes the loss over several
 *   seconds; `in*` what the peer sends us.
 */

/**
 * What the peer asked us to send it: everything, a thumbnail (its page or our tile is not on
 * screen, or its downlink is choosing the speaker), or no video at all (audio-only mode).
 * @typedef {'full' | 'low' | 'none'} Wanted
 */

/**
 * @typedef {{ maxBitrate: number, height: number, frameRate: number }} Ceiling
 *   the room-size policy of bandwidth.js: the most any one copy may use.
 */

/**
 * What to set on the video sender towards one peer.
 * @typedef {{ active: boolean, maxBitrate: number, scaleResolutionDownBy: number, maxFramerate: number }} VideoEncoding
 */

/**
 * Rungs below the room-size ceiling, from the best. A rung whose bitrate is at or above the
 * ceiling is skipped; under the last rung video pauses.
 */
export const LADDER = Object.freeze([
  { maxBitrate: 300_000, height: 270, frameRate: 20 },
  { maxBitrate: 180_000, height: 180, frameRate: 15 },
  { maxBitrate: 90_000, height: 120, frameRate: 10 },
]);

/**
 * What one audio stream needs on the wire: Opus at about 32 kbit/s with RED doubling the
 * payload, plus RTP/UDP/IP headers at 50 packets a second (measured about 60 kbit/s).
 */
export const AUDIO_RESERVE = 64_000;
/** Below this much left for video beside the audio, video pauses. */
export const MIN_VIDEO = 40_000;
/**
 * Loss (over LOSS_WINDOW_MS) above which video steps down even when the estimate looks fine:
 * more than random loss explains, so the link's queue overflows.
 */
export const LOSS_DOWN = 0.12;
/** Loss under which a step up may be tried: random loss (Wi-Fi, a bad line) is not congestion. */
export const LOSS_UP = 0.08;
/**
 * Loss at or above which in every LOSS_WINDOW_MS of the last STEADY_MS (steady, not a burst),
 * with no queue building, the link is taken as randomly lossy: Chromium's estimate is then
 * loss-based and blind to the link's rate (5% random loss holds it near 150 kbit/s on a
 * 1 Mbit/s link). Video still takes the rung that estimate covers (Chromium's controller keeps
 * what is sent within it anyway), but the estimate alone no longer pauses it: only loss beyond
 * LOSS_DOWN, a queue, or an estimate that leaves less than MIN_VIDEO / 2 beside the audio.
 */
export const LOSS_RANDOM = 0.02;
export const STEADY_MS = 4000;
/**
 * The loss of what we send is taken over this long, from the cumulative packet counters: one
 * report's fractionLost over the few packets of a small video stream reads 0% or 20% at 5%.
 */
export const LOSS_WINDOW_MS = 5000;
/** Fewer packets than this in LOSS_WINDOW_MS: fall back to the reports' fractionLost. */
export const MIN_LOSS_PACKETS = 50;
/**
 * Delay is judged by the round trip's floor, the least of the last DELAY_WINDOW_MS: a queue
 * raises every sample, a busy CPU (a late STUN answer) only some. In seconds: the floor above
 * RTT_DOWN, or QUEUE_DOWN above the least round trip of the last BASE_WINDOW_MS, is a queue.
 */
export const DELAY_WINDOW_MS = 5000;
export const BASE_WINDOW_MS = 30000;
export const RTT_DOWN = 0.6;
export const RTT_UP = 0.35;
export const QUEUE_DOWN = 0.25;
export const QUEUE_UP = 0.12;
/** Bad samples in a row before stepping down (samples come about once a second). */
export const DOWN_AFTER = 2;
/**
 * Good time before the first probe up; doubles after a probe that failed, up to MAX_HOLD_MS.
 * Sized for the target of recovering within 20 s of a link healing: at worst MAX_HOLD_MS to
 * the next probe, then one PROBE_WINDOW_MS per rung.
 */
export const UP_HOLD_MS = 3000;
export const MAX_HOLD_MS = 8000;
/**
 * After a step up, this long the step is judged by loss and delay alone: Chromium's estimate
 * lags what is sent (after a pause it starts from the audio's rate), so an estimate that has
 * not caught up yet is no sign of a link that cannot carry the rung. A step up that meets loss
 * or a queue this soon is a failed probe.
 */
export const PROBE_WINDOW_MS = 4000;
/**
 * An estimate below the rung is not starvation while it is still rising: more than RISING
 * times what it was RISING_MS ago.
 */
export const RISING = 1.1;
export const RISING_MS = 3000;
/** A rung fits the estimate if the estimate covers this share of it (encoders overshoot and undershoot). */
export const FITS = 0.85;
/** How much room above the next rung the estimate must show to step up at once. */
export const HEADROOM = 1.25;

/**
 * The rungs in effect under a ceiling: the ceiling itself, then every LADDER rung below it.
 * @param {Ceiling} ceiling
 */
export function rungs(ceiling) {
  const top = { maxBitrate: ceiling.maxBitrate, height: ceiling.height, frameRate: ceiling.frameRate };
  const below = LADDER.filter((r) => r.maxBitrate < ceiling.maxBitrate).map((r) => ({
    maxBitrate: r.maxBitrate,
    height: Math.min(r.height, ceiling.height),
    frameRate: Math.min(r.frameRate, ceiling.frameRate),
  }));
  return [top, ...below];
}

/**
 * The encoding for a rung. The camera delivers `captureHeight` (the ceiling's height unless the
 * camera gave less); a rung smaller than that scales down, one as big or bigger sends as captured.
 * @param {Ceiling} ceiling
 * @param {number} step index into rungs(ceiling)
 * @param {boolean} active
 * @param {number} [captureHeight]
 * @returns {VideoEncoding}
 */
export function encodingFor(ceiling, step, active, captureHeight = ceiling.height) {
  const all = rungs(ceiling);
  const rung = all[Math.min(step, all.length - 1)];
  const capture = captureHeight > 0 ? captureHeight : ceiling.height;
  return {
    active,
    maxBitrate: rung.maxBitrate,
    scaleResolutionDownBy: Math.max(1, Math.round((capture / rung.height) * 100) / 100),
    maxFramerate: rung.frameRate,
  };
}

/**
 * The rates between two samples of one link.
 * @param {LinkSample | null} prev
 * @param {LinkSample} cur
 */
export function rates(prev, cur) {
  const seconds = prev ? (cur.t - prev.t) / 1000 : 0;
  const d = (key) => (prev ? Math.max(0, cur[key] - prev[key]) : 0);
  const lost = d('inPacketsLost');
  const received = d('inPacketsReceived');
  const samples = d('samplesReceived');
  return {
    /** Fraction of the peer's packets that did not reach us. */
    inLoss: lost + received > 0 ? lost / (lost + received) : 0,
    /** Fraction of the peer's audio this page had to conceal. */
    concealment: samples > 0 ? d('concealed') / samples : 0,
    videoBitrate: seconds > 0 ? (8 * d('videoBytesSent')) / seconds : 0,
    inFps: seconds > 0 ? d('inFramesDecoded') / seconds : 0,
    /** What we send that the peer reports lost: the worse of audio and video. */
    outLoss: Math.max(cur.outLoss ?? 0, cur.outAudioLoss ?? 0),
  };
}

/**
 * A link's connection quality in three plain levels, with the main reason when not good.
 * @param {{ rtt: number | null, loss: number, available: number | null, videoPaused: boolean }} m
 *   rtt in seconds, loss 0..1 (the worse direction)
 * @returns {{ level: 'good' | 'fair' | 'poor', reason: 'loss' | 'delay' | 'bandwidth' | null }}
 */
export function classifyLink({ rtt, loss, available, videoPaused }) {
  if (loss > 0.08) return { level: 'poor', reason: 'loss' };
  if (rtt !== null && rtt > 0.4) return { level: 'poor', reason: 'delay' };
  if (videoPaused || (available !== null && available < AUDIO_RESERVE + MIN_VIDEO)) return { level: 'poor', reason: 'bandwidth' };
  if (loss > 0.02) return { level: 'fair', reason: 'loss' };
  if (rtt !== null && rtt > 0.2) return { level: 'fair', reason: 'delay' };
  if (available !== null && available < AUDIO_RESERVE + LADDER[0].maxBitrate) return { level: 'fair', reason: 'bandwidth' };
  return { level: 'good', reason: null };
}

/** Samples at a new level in a row before the shown level changes (no flapping, no chatter). */
export const LEVEL_AFTER = 2;

/**
 * The send policy and quality level of one link. Feed it a sample about once a second; it says
 * what the video sender towards that peer should carry and how the link is doing.
 */
export class LinkAdapter {
  /** @param {{ ceiling: Ceiling }} options */
  constructor({ ceiling }) {
    this.ceiling = ceiling;
    /** The rung the network allows (0 = the ceiling). */
    this.step = 0;
    /** Video paused because the link cannot carry it beside the audio. */
    this.paused = false;
    /** @type {Wanted} */
    this.wanted = 'full';
    /** @type {LinkSample | null} */
    this.prev = null;
    this.bad = 0;
    /** @type {number | null} since when the link has looked good enough to step up */
    this.goodSince = null;
    this.hold = UP_HOLD_MS;
    /** @type {number | null} when we last stepped up (a probe) */
    this.probeAt = null;
    /** The last probe was a resume from a pause (a failed one pauses again). */
    this.wasPaused = false;
    /** @type {{ level: 'good' | 'fair' | 'poor', reason: 'loss' | 'delay' | 'bandwidth' | null }} */
    this.quality = { level: 'good', reason: null };
    /** @type {typeof this.quality | null} */
    this.pendingQuality = null;
    this.pendingCount = 0;
    /** @type {ReturnType<typeof rates> | null} */
    this.last = null;
    /** @type {number | null} when we last stepped up, for a starvation that shows after PROBE_WINDOW_MS */
    this.upAt = null;
    /**
     * The samples of the last BASE_WINDOW_MS, as much as the policy needs of them.
     * @type {Array<{ t: number, rtt: number | null, available: number | null, sent: number | null, lost: number | null, loss: number }>}
     */
    this.history = [];
    /** @type {ReturnType<LinkAdapter['signals']> | null} */
    this.lastSignals = null;
  }

  /** The room grew or shrank: a new ceiling, same rung position. @param {Ceiling} ceiling */
  setCeiling(ceiling) {
    this.ceiling = ceiling;
    this.step = Math.min(this.step, rungs(ceiling).length - 1);
  }

  /** @param {Wanted} wanted */
  setWanted(wanted) {
    this.wanted = wanted;
  }

  /** The rung actually sent: the network's, or lower if the peer asked for a thumbnail. */
  get effectiveStep() {
    const last = rungs(this.ceiling).length - 1;
    return this.wanted === 'low' ? last : this.step;
  }

  /**
   * What the video sender towards this peer carries now.
   * @param {number} [captureHeight] what the camera delivers, if known
   * @returns {VideoEncoding}
   */
  encoding(captureHeight) {
    const active = !this.paused && this.wanted !== 'none';
    return encodingFor(this.ceiling, this.effectiveStep, active, captureHeight);
  }

  /**
   * What the last samples say about the link, beyond one sample: the loss of what we send over
   * LOSS_WINDOW_MS (from the packet counters), the round trip's floor over DELAY_WINDOW_MS and
   * its least over BASE_WINDOW_MS, and whether the estimate is rising.
   * @param {LinkSample} sample
   * @param {ReturnType<typeof rates>} r
   */
  signals(sample, r) {
    const h = this.history;
    const sentNow = sample.outPacketsSent ?? null;
    const lostNow = sample.outPacketsLost ?? null;
    h.push({ t: sample.t, rtt: sample.rtt, available: sample.available, sent: sentNow, lost: lostNow, loss: 0 });
    while (h.length > 1 && h[0].t < sample.t - BASE_WINDOW_MS) h.shift();
    /** @param {number} ms the newest entry at least `ms` old, else the oldest */
    const ago = (ms) => {
      let pick = h[0];
      for (const e of h) if (e.t <= sample.t - ms) pick = e;
      return pick;
    };
    const then = ago(LOSS_WINDOW_MS);
    const sent = then.sent === null || sample.outPacketsSent === undefined ? 0 : sample.outPacketsSent - then.sent;
    const lost = then.lost === null || sample.outPacketsLost === undefined ? 0 : sample.outPacketsLost - then.lost;
    const loss = sent >= MIN_LOSS_PACKETS ? Math.min(1, Math.max(0, lost / sent)) : r.outLoss;
    h[h.length - 1].loss = loss;
    // Random loss is steady: every LOSS_WINDOW_MS of the last STEADY_MS loses, the least of them
    // too. Congestion loses in bursts (a queue overflows, the estimate backs off), with clean
    // spans around them.
    const spanned = sample.t - h[0].t >= STEADY_MS;
    const steadyLoss = spanned ? Math.min(...h.filter((e) => e.t >= sample.t - STEADY_MS).map((e) => e.loss)) : null;
    const rtts = (/** @type {number} */ ms) => h.filter((e) => e.t > sample.t - ms && e.rtt !== null).map((e) => /** @type {number} */ (e.rtt));
    const recent = rtts(DELAY_WINDOW_MS);
    // A floor needs DELAY_WINDOW_MS of samples: one late answer at the start is not a queue.
    const spans = h.length > 0 && sample.t - h[0].t >= DELAY_WINDOW_MS - 1000;
    const floor = spans && recent.length > 0 ? Math.min(...recent) : null;
    const all = rtts(BASE_WINDOW_MS);
    const base = all.length > 0 ? Math.min(...all) : null;
    const past = ago(RISING_MS);
    const rising = past !== h.at(-1) && past.available !== null && sample.available !== null
      && sample.available > RISING * past.available;
    return { loss, steadyLoss, floor, base, rising };
  }

  /**
   * Takes one sample; returns whether the encoding changed.
   * @param {LinkSample} sample
   * @param {{ adapt?: boolean }} [options] `adapt: false` only rates the link (the room-size
   *   policy alone, `?adapt=0`, the benchmark's comparison): the encoding never changes.
   */
  update(sample, { adapt = true } = {}) {
    const before = JSON.stringify(this.encoding());
    const r = rates(this.prev, sample);
    this.prev = sample;
    const sig = this.signals(sample, r);
    // The loss the level shows is the windowed one too: one report is too noisy to say "poor".
    r.outLoss = sig.loss;
    this.last = r;
    this.lastSignals = sig;
    if (!adapt) {
      this.#classify(sample, r);
      return false;
    }
    const all = rungs(this.ceiling);
    const lastStep = all.length - 1;
    const budget = sample.available === null ? null : sample.available - AUDIO_RESERVE;
    const current = all[this.step].maxBitrate;
    const inProbe = this.probeAt !== null && sample.t - this.probeAt < PROBE_WINDOW_MS;
    // Congestion is told from random loss by loss and delay: a queue that builds (the round
    // trip's floor rises) or loss beyond what random loss explains. Random loss alone (a few
    // percent, no queue) leaves Chromium's estimate low whatever the link carries: that
    // estimate is not followed down, and Chromium's controller keeps the rate within it anyway.
    const queued = sig.floor !== null && (sig.floor > RTT_DOWN || (sig.base !== null && sig.floor - sig.base > QUEUE_DOWN));
    const lossy = sig.loss > LOSS_DOWN;
    const randomLoss = sig.steadyLoss !== null && sig.steadyLoss >= LOSS_RANDOM && !queued;
    // Starved: the estimate no longer covers the rung, the encoder says bandwidth holds it
    // back, and the estimate is not still climbing. Not while a step up is being judged (the
    // estimate lags it), nor while paused (only audio flows, and the estimate follows what is
    // sent: it reads low however good the link is). On the last rung of a randomly lossy link
    // the estimate is loss-based, not the link's rate: it pauses video only when it leaves
    // next to nothing (MIN_VIDEO / 2) beside the audio.
    const lastRandom = randomLoss && this.step === lastStep;
    const minVideo = randomLoss ? MIN_VIDEO / 2 : MIN_VIDEO;
    const starved = !this.paused && !inProbe && !sig.rising && budget !== null
      && (lastRandom
        ? budget < MIN_VIDEO / 2
        : budget < current * FITS && (sample.limitation === 'bandwidth' || budget < current * 0.5));
    const congested = starved || lossy || queued;

    if (congested) {
      this.goodSince = null;
      this.bad += 1;
      // A step up that met loss or a queue, or congestion of any kind soon after it (the
      // estimate, once it had had its time to catch up, still not carrying it): back to the
      // rung that held, and wait longer.
      const probeFailed = (inProbe && (lossy || queued))
        || (this.upAt !== null && sample.t - this.upAt < 2 * PROBE_WINDOW_MS);
      if (this.bad >= DOWN_AFTER || (inProbe && (lossy || queued))) {
        this.bad = 0;
        this.probeAt = null;
        if (probeFailed) {
          this.upAt = null;
          this.hold = Math.min(MAX_HOLD_MS, this.hold * 2);
          if (this.step === lastStep && this.wasPaused) this.paused = true;
          else if (this.step === lastStep) this.#stepDown(budget, lastStep, all, minVideo);
          else this.step += 1;
        } else {
          this.#stepDown(budget, lastStep, all, minVideo);
        }
      }
    } else {
      this.bad = 0;
      const clean = sig.loss < LOSS_UP && (sig.floor === null
        || (sig.floor < RTT_UP && (sig.base === null || sig.floor - sig.base < QUEUE_UP)));
      if (this.probeAt !== null && sample.t - this.probeAt >= PROBE_WINDOW_MS) {
        // The last step up held: the next may come as soon as the link allows.
        this.probeAt = null;
        this.hold = UP_HOLD_MS;
      }
      if (!clean) {
        this.goodSince = null;
      } else {
        this.goodSince ??= sample.t;
        const target = this.paused ? all[lastStep] : all[Math.max(0, this.step - 1)];
        const roomy = budget !== null && budget >= target.maxBitrate * HEADROOM;
        const waited = sample.t - this.goodSince >= (roomy ? Math.min(this.hold, UP_HOLD_MS / 2) : this.hold);
        // Up from a rung only once the estimate carries it (unless random loss blinds it): a
        // rung still being caught up with is no base for the next.
        const carried = this.paused || budget === null || budget >= current * FITS;
        // A rung is probed only by sending it: not while the peer asked for less.
        const probing = this.wanted === 'full';
        if ((this.paused || this.step > 0) && waited && carried && probing && this.probeAt === null) this.#stepUp(sample.t);
      }
    }
    this.#classify(sample, r);
    return JSON.stringify(this.encoding()) !== before;
  }

  /**
   * @param {number | null} budget
   * @param {number} lastStep
   * @param {ReturnType<typeof rungs>} all
   * @param {number} minVideo below this budget video pauses rather than take the last rung
   */
  #stepDown(budget, lastStep, all, minVideo) {
    if (this.paused) return;
    // Straight to the rung the estimate covers, at least one down; from the last rung, pause.
    let next = this.step + 1;
    if (budget !== null) {
      while (next < lastStep && all[next].maxBitrate * FITS > budget) next += 1;
    }
    if (next > lastStep || (budget !== null && budget < minVideo)) {
      this.paused = true;
      this.step = lastStep;
    } else {
      this.step = next;
    }
  }

  #stepUp(t) {
    this.wasPaused = this.paused;
    if (this.paused) this.paused = false;
    else this.step -= 1;
    this.probeAt = t;
    this.upAt = t;
    this.goodSince = t;
  }

  #classify(sample, r) {
    const next = classifyLink({
      rtt: sample.rtt,
      loss: Math.max(r.inLoss, r.outLoss),
      available: sample.available,
      videoPaused: this.paused,
    });
    if (next.level === this.quality.level) {
      this.quality = next;
      this.pendingQuality = null;
      this.pendingCount = 0;
      return;
    }
    if (this.pendingQuality?.level === next.level) this.pendingCount += 1;
    else {
      this.pendingQuality = next;
      this.pendingCount = 1;
    }
    if (this.pendingCount >= LEVEL_AFTER) {
      this.quality = next;
      this.pendingQuality = null;
      this.pendingCount = 0;
    }
  }
}

/**
 * My own link's quality from every link's: if even the best link is poor, the trouble is most
 * likely here, not at the peers. With one peer the two cannot be told apart.
 * @param {Array<{ level: 'good' | 'fair' | 'poor', reason: string | null }>} links
 */
export function ownQuality(links) {
  const order = { good: 0, fair: 1, poor: 2 };
  /** @type {{ level: 'good' | 'fair' | 'poor', reason: string | null } | null} */
  let best = null;
  for (const q of links) if (!best || order[q.level] < order[best.level]) best = q;
  return best;
}

/**
 * What to ask one peer to send me.
 * @param {{ audioOnly: boolean, pageHidden: boolean, tileShown: boolean,
 *           ownPoor: boolean, speaker: string | null, peer: string }} view
 *   `ownPoor`: my own link is poor, so my downlink must choose: the active speaker stays full.
 * @returns {Wanted}
 */
export function wantedFrom({ audioOnly, pageHidden, tileShown, ownPoor, speaker, peer }) {
  if (audioOnly) return 'none';
  if (pageHidden || !tileShown) return 'low';
  if (ownPoor && speaker !== null && speaker !== peer) return 'low';
  return 'full';
}

/**
 * What to ask each peer for now, and which of those asks are news: the peers whose ask differs
 * from the one last sent (a peer never asked counts as 'full', what a fresh link starts at).
 * @param {string[]} peers
 * @param {{ audioOnly: boolean, pageHidden: boolean, shown: (id: string) => boolean,
 *           ownPoor: boolean, speaker: string | null }} view
 * @param {Map<string, string>} sent what each peer was last asked for
 * @returns {Array<[string, Wanted]>} the asks to send, in the order of `peers`
 */
export function wantedChanges(peers, view, sent) {
  /** @type {Array<[string, Wanted]>} */
  const out = [];
  for (const peer of peers) {
    const wanted = wantedFrom({ ...view, tileShown: view.shown(peer), peer });
    if ((sent.get(peer) ?? 'full') !== wanted) out.push([peer, wanted]);
  }
  return out;
}

/** Milliseconds of poor own link before the page suggests Audio only. */
export const SUGGEST_AFTER_MS = 10000;
