// The local camera, microphone and screen. A track, once started, is never stopped by a toggle:
// turning the camera or microphone off only sets `track.enabled = false`, so peer connections and
// their senders stay exactly as they are (the old app's bug 1). A track stops only on leave, on a
// device change or a camera flip (the new one replaces it on every sender), or when screen
// sharing ends.

/** Capture asked for by default; bandwidth.js narrows it as the mesh grows. */
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
 * Events: `outgoing` {kind, track} when the track to send for a kind changed (peers put it on
 * their senders with replaceTrack); `change` when anything about the local media changed.
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
    this.#install(kind, track);
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
    this.#install('video', track);
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
    const base = kind === 'video' ? VIDEO_CONSTRAINTS : AUDIO_CONSTRAINTS;
    const stream = await this.mediaDevices.getUserMedia({ [kind]: { ...base, ...extra } });
    const track = stream.getTracks().find((t) => t.kind === kind);
    if (!track) {
      const err = new Error(`no ${kind} track`);
      err.name = 'NotFoundError';
      throw err;
    }
    return track;
  }

  /** Opens the new device; phones that cannot run two cameras at once get the old one stopped first. */
  async #captureReplacing(kind, extra, current) {
    try {
      return await this.#capture(kind, extra);
    } catch (/** @type {any} */ err) {
      if (err?.name !== 'NotReadableError' && err?.name !== 'AbortError') throw err;
      current.stop();
      return this.#capture(kind, extra);
    }
  }

  /** Puts a new track in place of the old one and stops the old. */
  #install(kind, track) {
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
    if (kind === 'audio' || !this.screen) this.#emitOutgoing(kind);
    if (old && old !== track) old.stop();
    this.#changed();
  }

  #swapStreamVideo(track) {
    if (!this.stream) return;
    for (const t of this.stream.getVideoTracks()) this.stream.removeTrack(t);
    if (track) this.stream.addTrack(track);
  }

  #emitOutgoing(kind) {
    this.dispatchEvent(new CustomEvent('outgoing', { detail: { kind, track: this.outgoing(kind) } }));
    this.#changed();
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
