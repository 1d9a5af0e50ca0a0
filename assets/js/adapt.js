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
 *   inPacketsReceived: number,
 *   inPacketsLost: number,
 *   concealed: number,
 *   samplesReceived: number,
 *   inFramesDecoded: number,
 * }} LinkSample
 *   `t` ms; `rtt` seconds (the selected candidate pair); `available` the pair's
 *   availableOutgoingBitrate in bit/s; `limitation` the video outbound-rtp's
 *   qualityLimitationReason; `outLoss` / `outAudioLoss` the fraction the peer reports lost of our
 *   video / audio (remote-inbound-rtp fractionLost, 0..1); `in*` what the peer sends us.
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
/** Loss the peer reports above which video steps down even when the estimate looks fine. */
export const LOSS_DOWN = 0.12;
/** Loss under which a step up may be tried: random loss (Wi-Fi, a bad line) is not congestion. */
export const LOSS_UP = 0.08;
/** Round trip above which video steps down (a queue is building up on the link), in seconds. */
export const RTT_DOWN = 0.6;
export const RTT_UP = 0.35;
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
 * A step up that meets loss or a queue this soon counts as a failed probe at once; one the
 * estimate does not carry, after DOWN_AFTER samples like any other starvation.
 */
export const PROBE_WINDOW_MS = 4000;
/**
 * An estimate below the rung is not starvation while it is still climbing: up by RISING or
 * more from each sample to the next over the last RISING_SAMPLES samples. Chromium's estimate
 * lags what is sent (after a pause it starts from the audio's rate and ramps up, by about 8% a
 * second), so an estimate that has not caught up with a step up yet is no sign that the link
 * cannot carry it; a single jump followed by a flat estimate is a link that found its limit.
 */
export const RISING = 1.03;
export const RISING_SAMPLES = 2;
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
    /** @type {number | null} when we last stepped up, for a probe the estimate never caught up with */
    this.upAt = null;
    /** @type {Array<number | null>} the estimates of the last RISING_SAMPLES + 1 samples */
    this.estimates = [];
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
   * Takes one sample; returns whether the encoding changed.
   * @param {LinkSample} sample
   * @param {{ adapt?: boolean }} [options] `adapt: false` only rates the link (the room-size
   *   policy alone, `?adapt=0`, the benchmark's comparison): the encoding never changes.
   */
  update(sample, { adapt = true } = {}) {
    const before = JSON.stringify(this.encoding());
    const r = rates(this.prev, sample);
    this.prev = sample;
    this.last = r;
    if (!adapt) {
      this.#classify(sample, r);
      return false;
    }
    const all = rungs(this.ceiling);
    const lastStep = all.length - 1;
    const budget = sample.available === null ? null : sample.available - AUDIO_RESERVE;
    const current = all[this.step].maxBitrate;
    // Congested: the estimate no longer covers the rung and the encoder says bandwidth holds it
    // back, or the peer loses more than random loss explains, or a queue is building.
    // While video is paused only audio flows, and the estimate follows what is sent: it reads
    // low however good the link is, so a paused link is judged by loss and delay alone.
    // An estimate still climbing is not starving (RISING).
    const inProbe = this.probeAt !== null && sample.t - this.probeAt < PROBE_WINDOW_MS;
    const rising = this.#rising(sample);
    const starved = !this.paused && !rising && budget !== null && budget < current * FITS
      && (sample.limitation === 'bandwidth' || budget < current * 0.5);
    const lossy = r.outLoss > LOSS_DOWN;
    const queued = sample.rtt !== null && sample.rtt > RTT_DOWN;
    const congested = starved || lossy || queued;

    if (congested) {
      this.goodSince = null;
      this.bad += 1;
      // A step up that met loss or a queue while being judged failed: no waiting for a second
      // sample. One that the estimate, given its time to catch up, still does not carry failed
      // too, once it is found out.
      const recentUp = this.upAt !== null && sample.t - this.upAt < 2 * PROBE_WINDOW_MS;
      if (this.bad >= DOWN_AFTER || (inProbe && (lossy || queued))) {
        const probeFailed = inProbe || recentUp;
        this.bad = 0;
        this.probeAt = null;
        this.upAt = null;
        if (probeFailed) {
          // Back to the rung that held, and wait longer before the next try.
          this.hold = Math.min(MAX_HOLD_MS, this.hold * 2);
          if (this.step === lastStep && this.wasPaused) this.paused = true;
          else this.step = Math.min(lastStep, this.step + 1);
        } else {
          this.#stepDown(budget, lastStep, all);
        }
      }
    } else {
      this.bad = 0;
      const clean = r.outLoss < LOSS_UP && (sample.rtt === null || sample.rtt < RTT_UP);
      if (this.probeAt !== null && !inProbe) {
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
        // Up from a rung only once the estimate carries it: a rung still being caught up with
        // is no base for the next (and the next would be judged by an estimate that lags twice).
        const carried = this.paused || budget === null || budget >= current * FITS;
        // A rung is probed only by sending it: not while the peer asked for less.
        const probing = this.wanted === 'full';
        if ((this.paused || this.step > 0) && waited && carried && probing && this.probeAt === null) this.#stepUp(sample.t);
      }
    }
    this.#classify(sample, r);
    return JSON.stringify(this.encoding()) !== before;
  }

  /** Whether the estimate climbed by RISING at each of the last RISING_SAMPLES samples. @param {LinkSample} sample */
  #rising(sample) {
    const h = this.estimates;
    h.push(sample.available);
    if (h.length > RISING_SAMPLES + 1) h.shift();
    if (h.length <= RISING_SAMPLES) return false;
    for (let i = 1; i < h.length; i++) {
      const before = h[i - 1];
      const now = h[i];
      if (before === null || now === null || now < RISING * before) return false;
    }
    return true;
  }

  #stepDown(budget, lastStep, all) {
    if (this.paused) return;
    // Straight to the rung the estimate covers, at least one down.
    let next = this.step + 1;
    if (budget !== null) {
      while (next < lastStep && all[next].maxBitrate * FITS > budget) next += 1;
    }
    if (next > lastStep || (budget !== null && budget < MIN_VIDEO)) {
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

/** Milliseconds of poor own link before the page suggests Audio only. */
export const SUGGEST_AFTER_MS = 10000;
