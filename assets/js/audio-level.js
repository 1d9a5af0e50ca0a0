// Loudness: the lobby's microphone meter (Web Audio) and the active-speaker highlight (receiver stats).

/** @type {AudioContext | null} */
let shared = null;

function context() {
  if (!shared) {
    /** @type {typeof AudioContext | undefined} Safari before 14.1 has only the prefixed one */
    const Ctx = globalThis.AudioContext ?? /** @type {any} */ (globalThis).webkitAudioContext;
    if (!Ctx) return null;
    shared = new Ctx();
  }
  if (shared.state === 'suspended') shared.resume().catch(() => {});
  return shared;
}

const WINDOW = 16384;
const BLOCK = 512;

/**
 * The RMS of the loudest ~10 ms block in `samples`: a burst of speech counts in full instead of
 * being averaged away by the silence around it.
 * @param {Float32Array} samples
 */
export function loudestBlock(samples) {
  let loudest = 0;
  for (let start = 0; start + BLOCK <= samples.length; start += BLOCK) {
    let sum = 0;
    for (let i = start; i < start + BLOCK; i++) sum += samples[i] * samples[i];
    loudest = Math.max(loudest, sum / BLOCK);
  }
  return Math.sqrt(loudest);
}

/** Reads the loudness (0..1) of one stream's audio. */
export class Level {
  /** @param {MediaStream} stream */
  constructor(stream) {
    this.stream = stream;
    /** @type {AnalyserNode | null} */
    this.analyser = null;
    /** @type {MediaStreamAudioSourceNode | null} */
    this.source = null;
    /** @type {MediaStreamTrack | null} */
    this.track = null;
    this.buffer = new Float32Array(WINDOW);
  }

  /** 0..1; follows the stream's current audio track. */
  read() {
    const track = this.stream.getAudioTracks()[0] ?? null;
    if (!track || track.readyState !== 'live' || !track.enabled) return 0;
    if (track !== this.track) this.#connect(track);
    if (!this.analyser) return 0;
    this.analyser.getFloatTimeDomainData(this.buffer);
    return Math.min(1, loudestBlock(this.buffer) * 4);
  }

  /** @param {MediaStreamTrack} track */
  #connect(track) {
    this.dispose();
    const ctx = context();
    if (!ctx) return;
    this.track = track;
    this.source = ctx.createMediaStreamSource(new MediaStream([track]));
    this.analyser = ctx.createAnalyser();
    // The last ~340 ms (at 48 kHz): longer than the 100 ms between the lobby meter's reads, so a
    // short word or syllable between two reads is not missed.
    this.analyser.fftSize = WINDOW;
    this.buffer = new Float32Array(this.analyser.fftSize);
    this.source.connect(this.analyser);
  }

  dispose() {
    this.source?.disconnect();
    this.source = null;
    this.analyser = null;
    this.track = null;
  }
}

/**
 * A remote participant's loudness from the receiver's `totalAudioEnergy` counter: the RMS over
 * the whole time since the last sample, so no word between two samples is missed. It needs no
 * Web Audio graph per peer (cheaper, and Chromium feeds remote WebRTC audio to Web Audio
 * unreliably).
 */
export class EnergyLevel {
  constructor() {
    this.last = null;
  }

  /** @param {{ energy: number, duration: number } | null} sample  @returns {number} 0..1 */
  update(sample) {
    const previous = this.last;
    this.last = sample;
    if (!sample || !previous) return 0;
    const seconds = sample.duration - previous.duration;
    const energy = sample.energy - previous.energy;
    if (!(seconds > 0) || !(energy >= 0)) return 0;
    return Math.min(1, Math.sqrt(energy / seconds) * 4);
  }
}

/** The loudest of several streams, held for a moment so the highlight does not flicker. */
export function pickSpeaker(levels, previous, threshold = 0.08) {
  let best = null;
  let loudest = threshold;
  for (const [id, level] of levels) {
    if (level > loudest) {
      loudest = level;
      best = id;
    }
  }
  if (best === null && previous !== null && (levels.get(previous) ?? 0) > threshold / 2) return previous;
  return best;
}
