// The local camera and microphone. A track, once started, is never stopped by a toggle: turning
// the camera or microphone off only sets `track.enabled = false`, so peer connections and their
// senders stay exactly as they are (the old app's bug 1). Tracks stop only on leave.

/** Capture asked for by default: enough for a 6-person mesh on a home uplink. */
export const VIDEO_CONSTRAINTS = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 24, max: 30 } };
export const AUDIO_CONSTRAINTS = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

/**
 * Maps a getUserMedia failure to a message key of i18n.js.
 * @param {{ name?: string }} err
 */
export function mediaErrorKey(err) {
  switch (err?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'errPermission';
    case 'NotFoundError':
    case 'OverconstrainedError':
    case 'TypeError':
      return 'errNoDevice';
    case 'NotReadableError':
    case 'AbortError':
      return 'errBusy';
    default:
      return 'errMedia';
  }
}

/**
 * Events: `track` {kind, track} when a new local track exists (peers attach it);
 * `change` when anything about the local media changed.
 */
export class LocalMedia extends EventTarget {
  constructor(mediaDevices = globalThis.navigator?.mediaDevices) {
    super();
    this.mediaDevices = mediaDevices;
    /** One stream holding the current tracks: what the self-view shows and senders are tied to. */
    this.stream = typeof MediaStream === 'function' ? new MediaStream() : null;
    /** @type {{ audio: MediaStreamTrack | null, video: MediaStreamTrack | null }} */
    this.tracks = { audio: null, video: null };
  }

  /** @param {'audio' | 'video'} kind */
  track(kind) {
    return this.tracks[kind];
  }

  /** @param {'audio' | 'video'} kind */
  isOn(kind) {
    const track = this.tracks[kind];
    return Boolean(track && track.enabled && track.readyState === 'live');
  }

  /**
   * Turns a kind on or off. Turning on the first time asks the browser for the device; after
   * that only `enabled` flips. Throws the getUserMedia error if the device cannot be had.
   * @param {'audio' | 'video'} kind
   * @param {boolean} on
   * @param {string} [deviceId]
   */
  async set(kind, on, deviceId) {
    const current = this.tracks[kind];
    if (!on) {
      if (current) current.enabled = false;
      this.#changed();
      return;
    }
    if (current && current.readyState === 'live') {
      current.enabled = true;
      this.#changed();
      return;
    }
    await this.#acquire(kind, deviceId);
  }

  async #acquire(kind, deviceId) {
    if (!this.mediaDevices?.getUserMedia) {
      const err = new Error('This browser cannot use a camera or microphone here (it needs HTTPS or localhost).');
      err.name = 'NotFoundError';
      throw err;
    }
    const base = kind === 'video' ? VIDEO_CONSTRAINTS : AUDIO_CONSTRAINTS;
    const constraints = { [kind]: deviceId ? { ...base, deviceId: { exact: deviceId } } : base };
    const stream = await this.mediaDevices.getUserMedia(constraints);
    const track = stream.getTracks().find((t) => t.kind === kind);
    if (!track) return;
    this.#install(kind, track);
  }

  /** Puts a new track in place of the old one (first start, or a device change), and stops the old. */
  #install(kind, track) {
    const old = this.tracks[kind];
    this.tracks[kind] = track;
    if (this.stream) {
      if (old) this.stream.removeTrack(old);
      this.stream.addTrack(track);
    }
    track.addEventListener('ended', () => this.#changed());
    this.dispatchEvent(new CustomEvent('track', { detail: { kind, track, old } }));
    if (old) old.stop();
    this.#changed();
  }

  #changed() {
    this.dispatchEvent(new Event('change'));
  }

  /** Stops every track: only on leave. */
  stopAll() {
    for (const kind of ['audio', 'video']) {
      this.tracks[kind]?.stop();
      if (this.tracks[kind] && this.stream) this.stream.removeTrack(this.tracks[kind]);
      this.tracks[kind] = null;
    }
    this.#changed();
  }
}
