// The local camera, microphone and screen. A track, once started, is never stopped by a toggle:
// turning the camera or microphone off only sets `track.enabled = false`, so peer connections and
// their senders stay exactly as they are (the old app's bug 1). A track stops only on leave, on a
// device change or a camera flip (the new one replaces it on every sender), or when screen
// sharing ends.

/** Capture asked for by default; bandwidth.js narrows it as the mesh grows. */
export const VIDEO_CONSTRAINTS = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 24, max: 30 } };
export const AUDIO_CONSTRAINTS = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
/**
 * @typedef {{ noiseSuppression: boolean, echoCancellation: boolean, autoGainControl: boolean }} Processing
 */
/** The microphone processing a first visit gets: all of the browser's own, on. @type {Readonly<Processing>} */
export const PROCESSING_ON = Object.freeze({ noiseSuppression: true, echoCancellation: true, autoGainControl: true });

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

/** Longest wait for the senders' replaceTrack before an old track is stopped anyway, in ms. */
export const REPLACE_TIMEOUT_MS = 5000;

/**
 * Events: `outgoing` {kind, track, waitUntil} when the track to send for a kind changed (peers
 * put it on their senders with replaceTrack, and hand `waitUntil` the promise of that, so the
 * old track stops only once the new one is on every sender); `change` when anything about the
 * local media changed.
 */
export class LocalMedia extends EventTarget {
  constructor(mediaDevices = globalThis.navigator?.mediaDevices) {
    super();
    this.mediaDevices = mediaDevices;
    /** What is sent and shown as the self view: the microphone and the camera or the screen. */
    this.stream = typeof MediaStream === 'function' ? new MediaStream() : null;
    /** @type {{ audio: MediaStreamTrack | null, video: MediaStreamTrack | null }} */
    this.tracks = { audio: null, video: null };
    /** @type {MediaStreamTrack | null} */
    this.screen = null;
    /** Chosen devices ('' for the system default). */
    this.devices = { audio: '', video: '' };
    /** Which way the camera faces, where the browser says. */
    this.facing = 'user';
    /** The browser's own microphone processing (prefs.js keeps the user's choice). @type {Processing} */
    this.processing = { ...PROCESSING_ON };
  }

  /**
   * Turns the microphone's noise suppression, echo cancellation and automatic gain on or off.
   * A running microphone gets them at once: by applyConstraints where the browser honours it,
   * else by a fresh capture that replaces it on every sender.
   * @param {Partial<Processing>} processing
   */
  async setProcessing(processing) {
    this.processing = { ...this.processing, ...processing };
    const current = this.tracks.audio;
    if (!current || current.readyState !== 'live') return;
    try {
      await current.applyConstraints?.({ ...current.getConstraints?.(), ...this.processing });
    } catch {
      // Some browsers refuse to change these on a live track: a fresh capture below.
    }
    const settings = current.getSettings?.() ?? {};
    const applied = Object.entries(this.processing).every(([key, on]) => !(key in settings) || settings[key] === on);
    if (applied) {
      this.#changed();
      return;
    }
    const track = await this.#captureReplacing('audio', this.devices.audio ? { deviceId: { exact: this.devices.audio } } : {}, current);
    track.enabled = current.enabled;
    await this.#install('audio', track);
  }

  /** @param {'audio' | 'video'} kind */
  track(kind) {
    return this.tracks[kind];
  }

  /** The track sent for a kind: for video, the screen while sharing. */
  outgoing(kind) {
    return kind === 'video' && this.screen ? this.screen : this.tracks[kind];
  }

  /** @param {'audio' | 'video'} kind */
  isOn(kind) {
    const track = this.tracks[kind];
    return Boolean(track && track.enabled && track.readyState === 'live');
  }

  get sharing() {
    return Boolean(this.screen && this.screen.readyState === 'live');
  }

  /**
   * Turns a kind on or off. Turning on the first time asks the browser for the device; after
   * that only `enabled` flips. Throws the getUserMedia error if the device cannot be had.
   * @param {'audio' | 'video'} kind
   * @param {boolean} on
   */
  async set(kind, on) {
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
    const track = await this.#capture(kind, this.devices[kind] ? { deviceId: { exact: this.devices[kind] } } : {});
    this.#install(kind, track);
  }

  /**
   * Uses another device for a kind. If that kind is running, the new track replaces the old on
   * every sender (replaceTrack, no renegotiation) and keeps its on/off state; the old one stops.
   * @param {'audio' | 'video'} kind
   * @param {string} deviceId '' for the system default
   */
  async useDevice(kind, deviceId) {
    this.devices[kind] = deviceId;
    const current = this.tracks[kind];
    if (!current || current.readyState !== 'live') return;
    const extra = deviceId ? { deviceId: { exact: deviceId } } : {};
    const track = await this.#captureReplacing(kind, extra, current);
    track.enabled = current.enabled;
    await this.#install(kind, track);
  }

  /**
   * Switches to the next camera: the other `facingMode` on phones, else the next device. The
   * audio track is untouched, so nobody hears a gap.
   * @param {string[]} cameraIds every videoinput's deviceId, in order
   */
  async flipCamera(cameraIds) {
    const current = this.tracks.video;
    if (!current || current.readyState !== 'live') return;
    const settings = current.getSettings?.() ?? {};
    let extra;
    if (settings.facingMode) {
      this.facing = settings.facingMode === 'environment' ? 'user' : 'environment';
      extra = { facingMode: { exact: this.facing } };
    } else {
      const at = cameraIds.indexOf(settings.deviceId ?? this.devices.video);
      const next = cameraIds[(at + 1) % cameraIds.length];
      extra = { deviceId: { exact: next } };
      this.devices.video = next;
    }
    const track = await this.#captureReplacing('video', extra, current);
    track.enabled = current.enabled;
    await this.#install('video', track);
  }

  /** Starts sharing the screen in place of the camera. Throws if the user says no. */
  async startScreen() {
    if (!this.mediaDevices?.getDisplayMedia) {
      const err = new Error('This browser cannot share its screen.');
      err.name = 'NotSupportedError';
      throw err;
    }
    const stream = await this.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15, max: 30 } }, audio: false });
    const track = stream.getVideoTracks()[0];
    if (!track) return;
    track.contentHint = 'detail';
    // Stopping from the browser's own "Stop sharing" bar ends the track: go back to the camera.
    track.addEventListener('ended', () => {
      if (this.screen === track) this.stopScreen();
    });
    this.screen = track;
    this.#swapStreamVideo(track);
    this.#emitOutgoing('video');
  }

  stopScreen() {
    const track = this.screen;
    if (!track) return;
    this.screen = null;
    track.stop();
    this.#swapStreamVideo(this.tracks.video);
    this.#emitOutgoing('video');
  }

  async #capture(kind, extra) {
    if (!this.mediaDevices?.getUserMedia) {
      const err = new Error('This browser cannot use a camera or microphone here (it needs HTTPS or localhost).');
      err.name = 'NotFoundError';
      throw err;
    }
    const base = kind === 'video' ? VIDEO_CONSTRAINTS : { ...AUDIO_CONSTRAINTS, ...this.processing };
    const stream = await this.mediaDevices.getUserMedia({ [kind]: { ...base, ...extra } });
    const track = stream.getTracks().find((t) => t.kind === kind);
    if (!track) {
      const err = new Error(`no ${kind} track`);
      err.name = 'NotFoundError';
      throw err;
    }
    return track;
  }

  /**
   * Opens the new device while the old one still runs, so peers never see a gap; phones that
   * cannot run two cameras at once (NotReadableError, AbortError) get the old one stopped first
   * and a short gap instead.
   */
  async #captureReplacing(kind, extra, current) {
    try {
      return await this.#capture(kind, extra);
    } catch (/** @type {any} */ err) {
      if (err?.name !== 'NotReadableError' && err?.name !== 'AbortError') throw err;
      current.stop();
      return this.#capture(kind, extra);
    }
  }

  /**
   * Puts a new track in place of the old one, and stops the old one once the new one is on
   * every sender (ARCHITECTURE.md's invariant: peers never see a frozen or black frame). Resolves
   * when the old one is stopped.
   */
  async #install(kind, track) {
    const old = this.tracks[kind];
    this.tracks[kind] = track;
    track.addEventListener('ended', () => this.#changed());
    if (kind === 'audio') {
      if (this.stream) {
        if (old) this.stream.removeTrack(old);
        this.stream.addTrack(track);
      }
    } else if (!this.screen) {
      this.#swapStreamVideo(track);
    }
    const replaced = kind === 'audio' || !this.screen ? this.#emitOutgoing(kind) : Promise.resolve();
    this.#changed();
    // Already stopped on the stop-first path of #captureReplacing.
    if (!old || old === track || old.readyState === 'ended') return;
    // A sender whose replaceTrack never settles must not keep the old camera on forever.
    await Promise.race([replaced, new Promise((resolve) => { setTimeout(resolve, REPLACE_TIMEOUT_MS); })]);
    old.stop();
    this.#changed();
  }

  #swapStreamVideo(track) {
    if (!this.stream) return;
    for (const t of this.stream.getVideoTracks()) this.stream.removeTrack(t);
    if (track) this.stream.addTrack(track);
  }

  /** Tells every listener; resolves once what they handed `waitUntil` has settled. */
  #emitOutgoing(kind) {
    /** @type {Promise<unknown>[]} */
    const waits = [];
    /** @param {Promise<unknown>} promise */
    const waitUntil = (promise) => { waits.push(promise); };
    this.dispatchEvent(new CustomEvent('outgoing', { detail: { kind, track: this.outgoing(kind), waitUntil } }));
    this.#changed();
    return Promise.allSettled(waits);
  }

  #changed() {
    this.dispatchEvent(new Event('change'));
  }

  /** Stops every track: only on leave. */
  stopAll() {
    this.stopScreen();
    for (const kind of ['audio', 'video']) {
      const track = this.tracks[kind];
      if (!track) continue;
      track.stop();
      this.stream?.removeTrack(track);
      this.tracks[kind] = null;
    }
    this.#changed();
  }
}
