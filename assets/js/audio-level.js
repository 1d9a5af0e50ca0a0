// Microphone levels with Web Audio: the lobby's level meter and the active-speaker highlight.

let shared = null;

function context() {
  if (!shared) {
    const Ctx = globalThis.AudioContext ?? globalThis.webkitAudioContext;
    if (!Ctx) return null;
    shared = new Ctx();
  }
  if (shared.state === 'suspended') shared.resume().catch(() => {});
  return shared;
}

/** Reads the loudness (0..1) of one stream's audio. */
export class Level {
  /** @param {MediaStream} stream */
  constructor(stream) {
    this.stream = stream;
    this.analyser = null;
    this.source = null;
    this.track = null;
    this.buffer = null;
  }

  /** 0..1; follows the stream's current audio track. */
  read() {
    const track = this.stream.getAudioTracks()[0] ?? null;
    if (!track || track.readyState !== 'live' || !track.enabled) return 0;
    if (track !== this.track) this.#connect(track);
    if (!this.analyser) return 0;
    this.analyser.getFloatTimeDomainData(this.buffer);
    let sum = 0;
    for (const v of this.buffer) sum += v * v;
    return Math.min(1, Math.sqrt(sum / this.buffer.length) * 4);
  }

  #connect(track) {
    this.dispose();
    const ctx = context();
    if (!ctx) return;
    this.track = track;
    this.source = ctx.createMediaStreamSource(new MediaStream([track]));
    this.analyser = ctx.createAnalyser();
    this.analyser.fftSize = 512;
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
